//! Where a run keeps its temporary work, and how a crashed run's litter is swept.
//!
//! Each process works in one folder, `$TMPDIR/mosaic-run-<pid>`: extracted media, GStreamer's
//! temporary files, intermediate files of repair. Everything in it is removed when its work
//! ends (each piece is a [`tempfile::TempDir`] or a temporary file), and the folder itself
//! by [`finish`] when the program exits, also after SIGINT, SIGTERM or SIGHUP. A run killed
//! outright (SIGKILL, power loss) leaves its folder and its hidden partial outputs
//! (`.<name>.partial-<pid>`); the next run sweeps both, for every process id that is gone.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::error::{Error, Result};

const RUN_PREFIX: &str = "mosaic-run-";

static RUN_DIR: OnceLock<PathBuf> = OnceLock::new();

/// This process's work folder, created (and stale ones swept) on first use.
pub fn run_dir() -> Result<&'static Path> {
    if let Some(dir) = RUN_DIR.get() {
        return Ok(dir);
    }
    let temp = std::env::temp_dir();
    sweep_runs(&temp);
    let dir = temp.join(format!("{RUN_PREFIX}{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|source| Error::Write {
        path: dir.clone(),
        source,
    })?;
    Ok(RUN_DIR.get_or_init(|| dir))
}

/// A private folder for one piece of work, inside the run's folder; removed when dropped.
pub fn tempdir(prefix: &str) -> Result<tempfile::TempDir> {
    let parent = run_dir()?;
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(parent)
        .map_err(|source| Error::Write {
            path: parent.to_path_buf(),
            source,
        })
}

/// A temporary file inside the run's folder; removed when dropped.
pub fn tempfile(prefix: &str, suffix: &str) -> Result<tempfile::NamedTempFile> {
    let parent = run_dir()?;
    tempfile::Builder::new()
        .prefix(prefix)
        .suffix(suffix)
        .tempfile_in(parent)
        .map_err(|source| Error::Write {
            path: parent.to_path_buf(),
            source,
        })
}

/// Removes this process's work folder (at exit; what is still in it is litter).
pub fn finish() {
    if let Some(dir) = RUN_DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Whether process `pid` still runs. Where that cannot be told (no `/proc`), it is taken to
/// run, so nothing of a live process is ever swept.
pub fn alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}

/// The process id in a name ending `<sep><pid>`, when it has one.
fn pid_after(name: &str, sep: &str) -> Option<u32> {
    let (_, pid) = name.rsplit_once(sep)?;
    pid.parse().ok()
}

/// Removes the work folders of runs whose process is gone from `temp`.
fn sweep_runs(temp: &Path) {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(RUN_PREFIX)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !alive(pid) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Removes hidden partial outputs (`.<name>.partial-<pid>`, files or folders) of runs whose
/// process is gone from `dir`.
pub fn sweep_partials(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            continue;
        }
        let Some(pid) = pid_after(&name, ".partial-") else {
            continue;
        };
        if pid != std::process::id() && !alive(pid) {
            let path = e.path();
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_only_what_dead_processes_left() {
        let dir = tempfile::TempDir::new().unwrap();
        let me = std::process::id();
        // A pid that cannot be running: beyond Linux's pid_max.
        let dead = 4_194_304 + 17;
        for name in [
            format!(".call.mp4.partial-{dead}"),
            format!(".call.mp4.partial-{me}"),
            "call.mp4".to_string(),
            format!(".notes.partial-x{dead}"),
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join(format!(".tracks.partial-{dead}"))).unwrap();
        sweep_partials(dir.path());
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                format!(".call.mp4.partial-{me}"),
                format!(".notes.partial-x{dead}"),
                "call.mp4".to_string()
            ]
        );
        std::fs::create_dir(dir.path().join(format!("{RUN_PREFIX}{dead}"))).unwrap();
        std::fs::create_dir(dir.path().join(format!("{RUN_PREFIX}{me}"))).unwrap();
        sweep_runs(dir.path());
        assert!(!dir.path().join(format!("{RUN_PREFIX}{dead}")).exists());
        assert!(dir.path().join(format!("{RUN_PREFIX}{me}")).exists());
    }
}
