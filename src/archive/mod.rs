//! Reading an individual-stream archive: the ZIP, its manifest, and its media entries.
//!
//! Nothing is extracted to disk: entries are read by name, straight out of the ZIP, through
//! a reader bounded by the entry's declared size. Hostile archives are refused before any
//! entry is read: unsafe names (absolute, `..`, backslashes), too many entries, too much
//! data once expanded or an entry that expands too much (zip bombs), encryption.

pub mod manifest;

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use manifest::{Manifest, is_media_name};

/// Limits that keep a hostile archive from exhausting the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// At most this many entries (an archive holds at most 50 streams, each in a few segments).
    pub max_entries: usize,
    /// At most this many bytes in all, once expanded.
    pub max_total_size: u64,
    /// An entry larger than [`Self::ratio_floor`] may expand at most this many times.
    pub max_ratio: u32,
    /// Entries smaller than this are not ratio-checked (small JSON compresses very well).
    pub ratio_floor: u64,
    /// The manifest may be at most this large.
    pub max_manifest_size: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        ArchiveLimits {
            max_entries: 4_096,
            max_total_size: 256 << 30,
            max_ratio: 100,
            ratio_floor: 1 << 20,
            max_manifest_size: 16 << 20,
        }
    }
}

/// One entry of the ZIP, as listed in its central directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub index: usize,
    pub name: String,
    pub size: u64,
    pub compressed_size: u64,
    pub is_dir: bool,
}

/// An opened, validated archive.
pub struct Archive {
    path: PathBuf,
    zip: zip::ZipArchive<BufReader<File>>,
    entries: Vec<Entry>,
    manifest_name: String,
    manifest: Manifest,
    warnings: Vec<String>,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive")
            .field("path", &self.path)
            .field("manifest_name", &self.manifest_name)
            .field("entries", &self.entries.len())
            .finish()
    }
}

impl Archive {
    /// Opens `path` with the default [`ArchiveLimits`].
    pub fn open(path: impl AsRef<Path>) -> Result<Archive> {
        Archive::open_with_limits(path, ArchiveLimits::default())
    }

    /// Opens and validates an archive: its entries against `limits`, then its manifest
    /// against its entries.
    pub fn open_with_limits(path: impl AsRef<Path>, limits: ArchiveLimits) -> Result<Archive> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|source| Error::Open {
            path: path.clone(),
            source,
        })?;
        let mut zip = zip::ZipArchive::new(BufReader::new(file))
            .map_err(|e| Error::InvalidZip(e.to_string()))?;
        let entries = list_entries(&mut zip, &limits)?;
        let (manifest_name, manifest) = find_manifest(&entries, &limits, |entry| {
            let mut bytes = Vec::new();
            zip.by_index(entry.index)
                .map_err(|e| damaged(&entry.name, e.to_string()))?
                .take(limits.max_manifest_size)
                .read_to_end(&mut bytes)
                .map_err(|e| damaged(&entry.name, e.to_string()))?;
            Ok(bytes)
        })?;
        let warnings = check_files(&manifest, &entries)?;
        Ok(Archive {
            path,
            zip,
            entries,
            manifest_name,
            manifest,
            warnings,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The manifest's entry name inside the ZIP.
    pub fn manifest_name(&self) -> &str {
        &self.manifest_name
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Warnings found while validating (unlisted media, size mismatches).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// A reader over the entry's bytes, straight out of the ZIP. Reading fails with an I/O
    /// error if the entry is damaged (bad checksum, truncated).
    pub fn open_entry(&mut self, name: &str) -> Result<impl Read + '_> {
        let entry = self.entry(name).ok_or_else(|| Error::MissingFile {
            filename: name.to_owned(),
        })?;
        let (index, size) = (entry.index, entry.size);
        let file = self
            .zip
            .by_index(index)
            .map_err(|e| damaged(name, e.to_string()))?;
        Ok(file.take(size))
    }

    /// Where a stored (not compressed, not encrypted) entry's bytes lie in the ZIP file:
    /// `(offset, length)`, so it can be read in place; `None` for a compressed entry.
    pub fn stored_range(&mut self, name: &str) -> Option<(u64, u64)> {
        let (index, size) = self.entry(name).map(|e| (e.index, e.size))?;
        let file = self.zip.by_index_raw(index).ok()?;
        let plain = file.compression() == zip::CompressionMethod::Stored && !file.encrypted();
        (plain && file.compressed_size() == size).then_some(())?;
        Some((file.data_start()?, size))
    }

    /// Reads a whole entry into memory (for small entries; media is read as a stream).
    pub fn read_entry(&mut self, name: &str) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.open_entry(name)?
            .read_to_end(&mut buf)
            .map_err(|e| damaged(name, e.to_string()))?;
        Ok(buf)
    }
}

fn damaged(name: &str, reason: String) -> Error {
    Error::DamagedEntry {
        name: name.to_owned(),
        reason,
    }
}

/// Lists the central directory and refuses anything hostile in it.
fn list_entries<R: Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    limits: &ArchiveLimits,
) -> Result<Vec<Entry>> {
    if zip.len() > limits.max_entries {
        return Err(Error::TooManyEntries {
            count: zip.len(),
            limit: limits.max_entries,
        });
    }
    let mut entries = Vec::with_capacity(zip.len());
    let mut total: u64 = 0;
    for index in 0..zip.len() {
        let file = zip
            .by_index_raw(index)
            .map_err(|e| Error::InvalidZip(format!("entry #{index}: {e}")))?;
        let name = file
            .name()
            .map_err(|_| Error::UnsafeEntryName {
                name: format!("#{index}"),
                reason: "name is not valid UTF-8",
            })?
            .into_owned();
        if let Some(reason) = unsafe_entry_name(&name) {
            return Err(Error::UnsafeEntryName { name, reason });
        }
        if file.encrypted() {
            return Err(Error::EncryptedEntry { name });
        }
        let (size, compressed_size) = (file.size(), file.compressed_size());
        if size > limits.ratio_floor {
            let ratio = size as f64 / compressed_size.max(1) as f64;
            if ratio > f64::from(limits.max_ratio) {
                return Err(Error::CompressionRatio {
                    name,
                    compressed: compressed_size,
                    size,
                    ratio,
                    limit: limits.max_ratio,
                });
            }
        }
        total = total.saturating_add(size);
        if total > limits.max_total_size {
            return Err(Error::TooLarge {
                size: total,
                limit: limits.max_total_size,
            });
        }
        entries.push(Entry {
            index,
            is_dir: file.is_dir(),
            name,
            size,
            compressed_size,
        });
    }
    Ok(entries)
}

/// Why an entry name could not be trusted, if it cannot.
fn unsafe_entry_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("empty name");
    }
    if name.contains('\0') {
        return Some("contains a NUL byte");
    }
    if name.contains('\\') {
        return Some("contains a backslash");
    }
    if name.starts_with('/') {
        return Some("absolute path");
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic() {
        return Some("drive-letter path");
    }
    if name.split('/').any(|part| part == "..") {
        return Some("contains '..'");
    }
    None
}

/// Finds the manifest: the root `.json` entry that parses as one. `read` gives an entry's
/// bytes (from the ZIP, or from a folder).
pub(crate) fn find_manifest(
    entries: &[Entry],
    limits: &ArchiveLimits,
    mut read: impl FnMut(&Entry) -> Result<Vec<u8>>,
) -> Result<(String, Manifest)> {
    let mut first_error = None;
    let mut found: Vec<(String, Manifest)> = Vec::new();
    let candidates = entries
        .iter()
        .filter(|e| !e.is_dir && !e.name.contains('/'))
        .filter(|e| e.name.to_ascii_lowercase().ends_with(".json"));
    for entry in candidates {
        if entry.size > limits.max_manifest_size {
            first_error.get_or_insert(Error::InvalidManifest {
                name: entry.name.clone(),
                reason: format!(
                    "{} bytes, more than the limit of {}",
                    entry.size, limits.max_manifest_size
                ),
            });
            continue;
        }
        let bytes = read(entry)?;
        match Manifest::parse(&entry.name, &bytes) {
            Ok(m) => found.push((entry.name.clone(), m)),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    // Prefer `<id>.json` when several parse.
    let pick = found
        .iter()
        .position(|(name, m)| *name == format!("{}.json", m.id))
        .unwrap_or(0);
    if found.is_empty() {
        return Err(first_error.unwrap_or(Error::NoManifest));
    }
    Ok(found.swap_remove(pick))
}

/// Checks the manifest against the entries: every listed file must be present and non-empty;
/// unlisted media and size mismatches are warnings.
pub(crate) fn check_files(manifest: &Manifest, entries: &[Entry]) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    for f in &manifest.files {
        let Some(entry) = entries.iter().find(|e| e.name == f.filename && !e.is_dir) else {
            return Err(Error::MissingFile {
                filename: f.filename.clone(),
            });
        };
        if entry.size == 0 {
            return Err(Error::EmptyMedia {
                filename: f.filename.clone(),
            });
        }
        if let Some(declared) = f.size.filter(|&d| d != entry.size) {
            warnings.push(format!(
                "{}: the manifest says {declared} bytes, the file has {}",
                f.filename, entry.size
            ));
        }
    }
    for e in entries
        .iter()
        .filter(|e| !e.is_dir && is_media_name(&e.name))
    {
        if !manifest.files.iter().any(|f| f.filename == e.name) {
            warnings.push(format!(
                "{}: a media file the manifest does not list; ignored",
                e.name
            ));
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names() {
        for bad in [
            "/etc/passwd",
            "../x.webm",
            "a/../../x",
            "a\\..\\x",
            "C:/x",
            "",
            "a\0b",
        ] {
            assert!(unsafe_entry_name(bad).is_some(), "{bad:?}");
        }
        for ok in ["a.webm", "dir/a.webm", "a..b.webm", "..a.webm"] {
            assert_eq!(unsafe_entry_name(ok), None, "{ok:?}");
        }
    }
}
