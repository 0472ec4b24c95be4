//! The library's error type.
//!
//! Every failure mosaic reports is one [`Error`] variant. Each variant belongs to one
//! [`ErrorClass`], which tells a caller (and the CLI's exit code) whether the *input* was bad
//! (nothing to retry: fix or replace the archive) or something failed on our side (an I/O
//! error writing output, a missing GStreamer element: worth retrying after fixing the machine).

use std::path::PathBuf;

/// Whether an error is the input's fault or ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The archive, manifest or media is malformed, hostile or inconsistent.
    BadInput,
    /// The input file could not be found or opened.
    NoInput,
    /// Something failed while producing output (I/O, GStreamer, environment).
    Internal,
}

/// Everything that can go wrong in mosaic's library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("not a readable ZIP archive: {0}")]
    InvalidZip(String),

    #[error("ZIP entry {name:?} is unsafe: {reason}")]
    UnsafeEntryName { name: String, reason: &'static str },

    #[error("ZIP entry {name:?} is encrypted; encrypted archives are not supported")]
    EncryptedEntry { name: String },

    #[error("archive has {count} entries, more than the limit of {limit}")]
    TooManyEntries { count: usize, limit: usize },

    #[error("archive would expand to {size} bytes, more than the limit of {limit} (zip bomb?)")]
    TooLarge { size: u64, limit: u64 },

    #[error(
        "ZIP entry {name:?} expands {ratio:.0}x ({compressed} -> {size} bytes), more than the limit of {limit}x (zip bomb?)"
    )]
    CompressionRatio {
        name: String,
        compressed: u64,
        size: u64,
        ratio: f64,
        limit: u32,
    },

    #[error("ZIP entry {name:?} is damaged: {reason}")]
    DamagedEntry { name: String, reason: String },

    #[error("archive has no manifest (a .json file at its root describing the streams)")]
    NoManifest,

    #[error("manifest {name:?} is not valid: {reason}")]
    InvalidManifest { name: String, reason: String },

    #[error("{filename:?} is named by the recording's metadata but is not in the input")]
    MissingFile { filename: String },

    #[error("{path}: not a recording mosaic reads: {reason}")]
    UnknownInput { path: PathBuf, reason: String },

    #[error("{name}: {field}: {reason}")]
    InvalidEvent {
        /// The log, event or notification file.
        name: String,
        /// The field at fault, as a path (`[2].timestamp`, `connectionRecordings[0].hasAudio`).
        field: String,
        reason: String,
    },

    #[error("{name}: {field}: {reason}")]
    ImplausibleTime {
        /// The manifest, log or event (or media file) that gives the time.
        name: String,
        /// The field, as a path (`files[2].stopTimeOffset`).
        field: String,
        reason: String,
    },

    #[error("{path} holds {count} recordings ({keys}); choose one with --channel, or compose each")]
    SeveralRecordings {
        path: PathBuf,
        count: usize,
        keys: String,
    },

    #[error("media file {filename:?} is empty (0 bytes)")]
    EmptyMedia { filename: String },

    #[error("{filename}: not a Matroska/WebM file: {reason}")]
    NotMatroska { filename: String, reason: String },

    #[error("{filename}: unsupported codec {codec:?} in track {track}")]
    UnsupportedCodec {
        filename: String,
        track: u64,
        codec: String,
    },

    #[error("{filename}: corrupt media: {reason}")]
    CorruptMedia { filename: String, reason: String },

    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("GStreamer: {0}")]
    Gstreamer(String),

    #[error("invalid sample description: {0}")]
    InvalidSpec(String),

    #[error("invalid option: {0}")]
    InvalidOption(String),

    #[error("{name:?} is not a plain name to write under the output folder")]
    UnsafeOutputName { name: String },

    #[error("{0} (--strict refuses a recording placed by a fallback)")]
    Fallback(String),

    #[error("stopped by a signal before it was done; nothing was written")]
    Cancelled,
}

impl Error {
    /// Which side is at fault; the CLI maps this to its exit code.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Open { .. } => ErrorClass::NoInput,
            Error::Write { .. } | Error::Gstreamer(_) | Error::Cancelled => ErrorClass::Internal,
            _ => ErrorClass::BadInput,
        }
    }
}

/// Result with mosaic's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
