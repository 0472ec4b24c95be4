//! Output files that never look finished before they are.
//!
//! An [`AtomicFile`] writes to a hidden temporary name beside its destination and is renamed
//! onto it only by [`AtomicFile::commit`]. Dropped without a commit (an error, a panic), it
//! removes the temporary file, so a failed run leaves nothing that looks like output.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A file being written; see the module docs.
#[derive(Debug)]
pub struct AtomicFile {
    dest: PathBuf,
    temp: PathBuf,
    writer: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Starts writing `dest`; the parent folder must exist. Partial outputs that runs
    /// killed outright left beside it are swept first.
    pub fn create(dest: impl AsRef<Path>) -> Result<AtomicFile> {
        let dest = dest.as_ref().to_path_buf();
        if let Some(parent) = dest.parent() {
            crate::workdir::sweep_partials(if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            });
        }
        let temp = temp_path(&dest);
        let file = File::create(&temp).map_err(|source| Error::Write {
            path: dest.clone(),
            source,
        })?;
        Ok(AtomicFile {
            dest,
            temp,
            writer: Some(BufWriter::new(file)),
        })
    }

    /// The temporary path being written (for tools that want a path, not a writer).
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Flushes, syncs and renames onto the destination.
    pub fn commit(mut self) -> Result<PathBuf> {
        let write_err = |source| Error::Write {
            path: self.dest.clone(),
            source,
        };
        if let Some(writer) = self.writer.take() {
            let file = writer.into_inner().map_err(|e| write_err(e.into_error()))?;
            file.sync_all().map_err(write_err)?;
        }
        std::fs::rename(&self.temp, &self.dest).map_err(write_err)?;
        Ok(std::mem::take(&mut self.dest))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.writer {
            Some(w) => w.write(buf),
            None => Err(io::Error::other("file already committed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.writer {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

impl io::Seek for AtomicFile {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        match &mut self.writer {
            Some(w) => w.seek(pos),
            None => Err(io::Error::other("file already committed")),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.dest.as_os_str().is_empty() {
            self.writer = None;
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// `dir/.name.partial-PID` beside `dest`: hidden, and never mistaken for the output.
fn temp_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    dest.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

/// Writes `bytes` to `dest` atomically.
pub fn write_atomic(dest: impl AsRef<Path>, bytes: &[u8]) -> Result<PathBuf> {
    let mut file = AtomicFile::create(&dest)?;
    file.write_all(bytes).map_err(|source| Error::Write {
        path: dest.as_ref().to_path_buf(),
        source,
    })?;
    file.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_renames_and_drop_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.svg");
        {
            let mut f = AtomicFile::create(&dest).unwrap();
            f.write_all(b"half").unwrap();
            assert!(!dest.exists());
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        write_atomic(&dest, b"whole").unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"whole");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
