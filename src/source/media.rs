//! Where a recording's media files are read from: entries of a ZIP, or files in a folder
//! (the edge that opens media).
//!
//! Either way a file is asked for by the plain name the platform's metadata gives. A folder
//! only serves regular files directly inside it: names with a path in them, and links that
//! lead out of the folder, are refused like a ZIP's unsafe entry names.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::archive::Archive;
use crate::error::{Error, Result};

/// The media of one recording.
pub enum MediaStore {
    /// Entries of an OpenTok archive, read in place.
    Zip(Box<Archive>),
    /// Files in a folder.
    Folder(Folder),
}

impl std::fmt::Debug for MediaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MediaStore::Zip(a) => a.fmt(f),
            MediaStore::Folder(d) => d.fmt(f),
        }
    }
}

impl MediaStore {
    /// A reader over a media file's bytes.
    pub fn open(&mut self, name: &str) -> Result<Box<dyn Read + '_>> {
        match self {
            MediaStore::Zip(archive) => Ok(Box::new(archive.open_entry(name)?)),
            MediaStore::Folder(folder) => {
                let path = folder.path(name)?;
                let file = File::open(path).map_err(|source| Error::Open {
                    path: path.to_path_buf(),
                    source,
                })?;
                Ok(Box::new(BufReader::with_capacity(1 << 16, file)))
            }
        }
    }

    /// The file's size in bytes, when it is known.
    pub fn size(&self, name: &str) -> Option<u64> {
        match self {
            MediaStore::Zip(archive) => archive.entry(name).map(|e| e.size),
            MediaStore::Folder(folder) => folder.files.get(name).map(|f| f.1),
        }
    }

    /// Where a file lies on disk, when it can be read in place: a folder's file whole, a
    /// ZIP's stored entry as `(zip, offset, length)`; `None` for a compressed entry.
    pub fn disk_range(&mut self, name: &str) -> Option<(PathBuf, Option<(u64, u64)>)> {
        match self {
            MediaStore::Zip(archive) => {
                let range = archive.stored_range(name)?;
                Some((archive.path().to_path_buf(), Some(range)))
            }
            MediaStore::Folder(folder) => Some((folder.path(name).ok()?.to_path_buf(), None)),
        }
    }

    /// The file on disk, when it is one (a folder's files need no extraction).
    pub fn disk_path(&self, name: &str) -> Option<&Path> {
        match self {
            MediaStore::Zip(_) => None,
            MediaStore::Folder(folder) => folder.path(name).ok(),
        }
    }
}

/// Media files in one folder, each checked when it was added.
#[derive(Debug, Clone)]
pub struct Folder {
    root: PathBuf,
    /// Plain name -> (path, size).
    files: BTreeMap<String, (PathBuf, u64)>,
}

impl Folder {
    pub fn new(root: impl Into<PathBuf>) -> Folder {
        Folder {
            root: root.into(),
            files: BTreeMap::new(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Adds the file `name` of the folder: it must be a plain name, exist, be a regular
    /// file inside the folder (also after following links) and not be empty.
    pub fn add(&mut self, name: &str) -> Result<()> {
        if self.files.contains_key(name) {
            return Ok(());
        }
        if let Some(reason) = unsafe_plain_name(name) {
            return Err(Error::UnsafeEntryName {
                name: name.to_owned(),
                reason,
            });
        }
        let path = self.root.join(name);
        let meta = std::fs::metadata(&path).map_err(|_| Error::MissingFile {
            filename: name.to_owned(),
        })?;
        if !meta.is_file() {
            return Err(Error::MissingFile {
                filename: name.to_owned(),
            });
        }
        let real = path.canonicalize().map_err(|source| Error::Open {
            path: path.clone(),
            source,
        })?;
        let root = self.root.canonicalize().map_err(|source| Error::Open {
            path: self.root.clone(),
            source,
        })?;
        if !real.starts_with(&root) {
            return Err(Error::UnsafeEntryName {
                name: name.to_owned(),
                reason: "is a link that leads out of the folder",
            });
        }
        if meta.len() == 0 {
            return Err(Error::EmptyMedia {
                filename: name.to_owned(),
            });
        }
        self.files.insert(name.to_owned(), (path, meta.len()));
        Ok(())
    }

    fn path(&self, name: &str) -> Result<&Path> {
        self.files
            .get(name)
            .map(|(p, _)| p.as_path())
            .ok_or_else(|| Error::MissingFile {
                filename: name.to_owned(),
            })
    }
}

/// Why `name` is not a plain file name (no folders, no `..`), if it is not.
pub fn unsafe_plain_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("empty name")
    } else if name.contains(['/', '\\']) {
        Some("contains a path separator")
    } else if name == "." || name == ".." {
        Some("is not a file name")
    } else if name.contains('\0') {
        Some("contains a NUL byte")
    } else {
        None
    }
}

/// The last component of a path as any platform writes it (`C:\\rec\\a-0.mka`,
/// `/rec/a-0.mka`, a URL's path), without a URL's query or fragment, percent-decoded.
pub fn base_name(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let last = path.rsplit(['/', '\\']).next().unwrap_or(path);
    percent_decode(last)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_names() {
        assert_eq!(
            base_name("C:\\Users\\U\\Temp\\f073c3dd-0.mka"),
            "f073c3dd-0.mka"
        );
        assert_eq!(base_name("/rec/a-0.mkv"), "a-0.mkv");
        assert_eq!(
            base_name("https://h/rec/app/ch/1351.mka?AWSAccessKeyId=k&Sig=%2F"),
            "1351.mka"
        );
        assert_eq!(base_name("http://FQDN/path/my%20file.webm"), "my file.webm");
        assert_eq!(base_name("http://FQDN/path/..%2F..%2Fetc"), "../../etc");
        assert!(unsafe_plain_name(&base_name("http://FQDN/path/..%2Fetc")).is_some());
        assert_eq!(base_name("plain.mkv"), "plain.mkv");
    }
}
