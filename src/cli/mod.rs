//! One module per subcommand; shared flags and terminal output beside them.

pub mod batch;
pub mod compose;
pub mod flags;
pub mod inspect;
pub mod progress;
pub mod repair;
pub mod sample;
#[cfg(feature = "service")]
pub mod serve;

use std::path::{Path, PathBuf};

/// The long help's closing text: the inputs mosaic reads, then the exit codes.
pub fn after_help() -> String {
    format!("{}\n\n{}", crate::INPUTS, crate::EXIT_CODES)
}

/// Where one of several recordings of an input goes: `path` with `-<key>` before its
/// extension, the key through the identifier gate ([`mosaic::names`]).
pub fn with_key(path: &Path, key: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let key = mosaic::names::plain_name(key);
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{key}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{key}"),
    };
    path.with_file_name(name)
}

/// Prints the reports as JSON on stdout: the one report, or an array when an input held
/// several recordings.
pub fn print_json<T: serde::Serialize>(reports: &[T]) -> anyhow::Result<()> {
    let text = match reports {
        [one] => serde_json::to_string_pretty(one)?,
        all => serde_json::to_string_pretty(all)?,
    };
    println!("{text}");
    Ok(())
}
