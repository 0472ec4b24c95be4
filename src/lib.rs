//! mosaic turns the raw per-stream recordings of Vonage/OpenTok individual-stream archives
//! into something people can watch.
//!
//! The data's path through the crate:
//!
//! - [`source`]: each platform's recordings (an OpenTok ZIP or folder, a LiveSwitch
//!   recordings folder or webhook event, an EnableX notification) turned into one
//!   timeline and a way to read each media file (edge; the parsing and layout are pure);
//! - [`archive`]: the OpenTok ZIP and its manifest, read safely (edge: ZIP I/O; the
//!   manifest is pure);
//! - [`timeline`]: who is present when, whatever the platform (pure);
//! - [`inspect`]: what each container really holds: tracks, timestamps, gaps (edge: reads
//!   containers; the per-track accounting is pure);
//! - [`compose`] and [`repair`]: one watchable file, or one playable file per participant;
//! - [`speech`]: who spoke when, from each participant's own sound (edge: decodes; the
//!   detector is pure);
//! - [`opusdec`]: the Opus decoder both register with GStreamer (edge: libopus);
//! - [`batch`]: many inputs, in parallel, isolated, resumable;
//! - [`sample`]: deterministic test archives encoded with GStreamer (edge);
//! - [`names`]: the one gate from identifiers that came from an input to file names;
//! - [`output`]: files written under a temporary name and renamed only when complete;
//! - [`workdir`]: each run's temporary folder, and sweeping what killed runs left;
//! - [`alloc`]: the allocator tuned for long runs (flat memory over a batch);
//! - [`service`]: `mosaic serve` and `mosaic worker`, recordings processed from webhooks.

pub mod alloc;
pub mod archive;
pub mod batch;
pub mod compose;
pub mod error;
pub mod inspect;
pub mod layout;
pub mod names;
pub mod opusdec;
pub mod output;
pub mod repair;
pub mod sample;
#[cfg(feature = "service")]
pub mod service;
pub mod source;
pub mod speech;
pub mod timeline;
pub mod workdir;

pub use error::{Error, ErrorClass, Result};
