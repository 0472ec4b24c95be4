//! What a job is: everything a worker needs to fetch, open, process and deliver one
//! recording, decided at intake and stored in the queue as JSON (pure).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::config::{ComposeConfig, Product};
use crate::source::SourceKind;

/// The platform (or caller) a job came from; also the output's folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Opentok,
    Liveswitch,
    Enablex,
    Api,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Opentok => "opentok",
            Origin::Liveswitch => "liveswitch",
            Origin::Enablex => "enablex",
            Origin::Api => "api",
        }
    }

    /// The platform whose recording the job's input is: decided by the webhook (or API
    /// call) that made the job, never by what the download holds. The API takes OpenTok
    /// archives.
    pub fn source_kind(self) -> SourceKind {
        match self {
            Origin::Opentok | Origin::Api => SourceKind::Opentok,
            Origin::Liveswitch => SourceKind::Liveswitch,
            Origin::Enablex => SourceKind::Enablex,
        }
    }
}

/// One file to download into the job's work folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fetch {
    /// An `http(s)://` URL, or an object-store URL under a configured store.
    pub from: String,
    /// The plain file name it gets in the work folder.
    pub to: String,
    /// The size the sender announced, checked after the download.
    pub size: Option<u64>,
    /// A URL that expires (OpenTok's pre-signed ones): a 403 or 404 is final.
    pub expires: bool,
}

/// A LiveSwitch file whose URL comes from a per-connection event (`.audio.ready`,
/// `.video.ready`) received for the same channel recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingUrl {
    pub connection_id: String,
    /// `audio` or `video`.
    pub kind: String,
    pub to: String,
}

/// Everything a worker needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub origin: Origin,
    /// A short description for people (archive id, channel, room).
    pub summary: String,
    pub fetch: Vec<Fetch>,
    /// Files whose URLs are looked up among the events received for `events_key`.
    #[serde(default)]
    pub pending: Vec<PendingUrl>,
    #[serde(default)]
    pub events_key: Option<String>,
    /// A JSON file written into the work folder (a LiveSwitch event naming the downloaded
    /// files, an EnableX notification).
    #[serde(default)]
    pub descriptor: Option<(String, Value)>,
    /// The work-folder entry opened as the input.
    pub open: String,
    /// What to produce, when not the configuration's `produce`.
    #[serde(default)]
    pub produce: Option<Vec<Product>>,
    /// Compose options, when not the configuration's `[compose]`.
    #[serde(default)]
    pub compose: Option<ComposeConfig>,
    /// Where the outputs go in the output store, decided at intake from the identifiers the
    /// verified webhook gave, each through the gate ([`crate::names`]): `opentok/<archive>`,
    /// `liveswitch/<application>/<channel recording>`, `enablex/<room>-<conference>`,
    /// `api/<key or job>`. A composite is `<output>.<ext>`, repaired files `<output>/<name>`.
    /// (Jobs stored before it existed: `<origin>/<job id>`.)
    #[serde(default)]
    pub output: Option<String>,
    /// A chunk job of a chunked compose (its parent is the job it belongs to): compose this
    /// window's picture and store it for the parent's stitch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk: Option<ChunkPart>,
}

/// One window of a chunked compose, on the archive timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkPart {
    pub index: usize,
    pub from_ms: i64,
    pub to_ms: i64,
}

/// One delivered output, as the API and the notification give it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivered {
    pub url: String,
    pub bytes: u64,
    pub duration_ms: i64,
    /// An HLS chunk job's segment: its name and place, for the job's playlist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<SegmentPlace>,
}

/// A segment of a fanned-out HLS output: its name beside the playlist and its span on the
/// output's timeline (ns).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentPlace {
    pub name: String,
    pub start_ns: u64,
    pub end_ns: u64,
}

/// A notification waiting to be delivered (a queue entry of its own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifySpec {
    /// Index into the configuration's `[[notify]]`.
    pub target: usize,
    pub url: String,
    /// The webhook id, the same on every try.
    pub message_id: String,
    pub body: String,
}
