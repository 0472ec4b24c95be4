//! mosaic turns the raw per-stream recordings of Vonage/OpenTok individual-stream archives
//! into something people can watch.
//!
//! The data's path through the crate:
//!
//! - [`archive`]: the ZIP and its manifest, read safely (edge: ZIP I/O; the manifest is pure);
//! - [`timeline`]: who is present when, from the manifest alone (pure);
//! - [`inspect`]: what each container really holds: tracks, timestamps, gaps (edge: reads
//!   containers; the per-track accounting is pure);
//! - [`sample`]: deterministic test archives encoded with GStreamer (edge);
//! - [`output`]: files written under a temporary name and renamed only when complete.

pub mod archive;
pub mod batch;
pub mod compose;
pub mod error;
pub mod inspect;
pub mod layout;
pub mod output;
pub mod repair;
pub mod sample;
pub mod timeline;

pub use error::{Error, ErrorClass, Result};
