//! Sources: what each platform writes, turned into one [`Timeline`] and a way to read each
//! media file. This is the only place that knows a platform; inspect, compose, repair and
//! batch work on a [`Recording`] whatever it came from.
//!
//! | input | platform | module |
//! | --- | --- | --- |
//! | a `.zip` with a manifest | OpenTok / Vonage individual-stream archive | [`opentok`] |
//! | a folder holding that manifest and the files | the same, unzipped | [`opentok`] |
//! | a folder of `<connectionId>-<n>.json` logs, `.mka` and `.mkv` files | LiveSwitch recordings | [`liveswitch`] |
//! | a `connection.recordings.ready` (or `connection.recording.*.ready`) event `.json` | LiveSwitch webhook | [`liveswitch`] |
//! | a `recording` notification `.json` | EnableX webhook | [`enablex`] |
//!
//! The input's kind is told from what the path is; `SourceOptions::kind` forces one.

pub mod enablex;
mod fields;
pub mod liveswitch;
pub mod media;
pub mod opentok;
pub mod time;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::timeline::{Stream, Timeline};
pub use media::MediaStore;

/// The platform a recording comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Vonage/OpenTok individual-stream archive (a ZIP, or its files in a folder).
    Opentok,
    /// LiveSwitch per-connection recordings (a recordings folder, or a webhook event).
    Liveswitch,
    /// EnableX recording files (with their `recording` notification).
    Enablex,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Opentok => "opentok",
            SourceKind::Liveswitch => "liveswitch",
            SourceKind::Enablex => "enablex",
        }
    }
}

/// How to read an input.
#[derive(Debug, Clone, Default)]
pub struct SourceOptions {
    /// Force the platform instead of telling it from the path.
    pub kind: Option<SourceKind>,
    /// Where an event's or notification's media files are (default: the event's folder).
    pub media_dir: Option<PathBuf>,
    /// LiveSwitch: only the sessions of this channel.
    pub channel: Option<String>,
    /// Labels for participants, by any id the platform gives (stream id; LiveSwitch client,
    /// user, device or connection id; EnableX file name).
    pub labels: BTreeMap<String, String>,
    /// The longest a recording may span; `None`: [`DEFAULT_MAX_SPAN_MS`]. A time further
    /// from the recording's start cannot be true and is refused before any work.
    pub max_span_ms: Option<i64>,
}

/// 24 hours: no call recording is longer; a time beyond it is a broken manifest or event.
pub const DEFAULT_MAX_SPAN_MS: i64 = 24 * 3_600_000;

/// One time a platform gives, relative to the recording's origin, for [`check_span`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GivenTime {
    /// The file that gives it (manifest, log, event, or the media file itself).
    pub name: String,
    /// Its field, as a path.
    pub field: String,
    pub ms: i64,
}

/// Refuses a recording whose times spread over more than `max_span_ms`: the time furthest
/// from the earliest is named (pure).
pub fn check_span(times: &[GivenTime], max_span_ms: i64) -> Result<()> {
    let Some(first) = times.iter().map(|t| t.ms).min() else {
        return Ok(());
    };
    let Some(worst) = times.iter().max_by_key(|t| t.ms) else {
        return Ok(());
    };
    let span = i128::from(worst.ms) - i128::from(first);
    if span <= i128::from(max_span_ms) {
        return Ok(());
    }
    Err(Error::ImplausibleTime {
        name: worst.name.clone(),
        field: worst.field.clone(),
        reason: format!(
            "{} ms puts the recording's span at {}, over the limit of {} (--max-span raises it)",
            worst.ms,
            human_duration(span),
            human_duration(i128::from(max_span_ms))
        ),
    })
}

/// `36 h`, `90 min`, `12 s`, or years for the absurd.
fn human_duration(ms: i128) -> String {
    const H: i128 = 3_600_000;
    match ms {
        ms if ms >= 24 * H * 365 * 10 => format!("{} years", ms / (24 * H * 365)),
        ms if ms >= 2 * H => format!("{} h", ms / H),
        ms if ms >= 120_000 => format!("{} min", ms / 60_000),
        ms => format!("{} s", ms / 1000),
    }
}

impl SourceOptions {
    /// The span limit in force.
    pub fn max_span(&self) -> i64 {
        self.max_span_ms.unwrap_or(DEFAULT_MAX_SPAN_MS)
    }

    /// Gives each stream the label of the first of its ids (`ids`) that the labels map has.
    pub fn relabel(&self, timeline: &mut Timeline, ids: impl Fn(&Stream) -> Vec<String>) {
        if self.labels.is_empty() {
            return;
        }
        for stream in &mut timeline.streams {
            if let Some(label) = ids(stream).iter().find_map(|id| self.labels.get(id)) {
                stream.label = label.clone();
            }
        }
    }

    /// Reads a labels file: a JSON object of id -> label.
    pub fn read_labels(path: &Path) -> Result<BTreeMap<String, String>> {
        let bytes = std::fs::read(path).map_err(|source| Error::Open {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::InvalidOption(format!(
                "{}: not a JSON object of id -> label: {e}",
                path.display()
            ))
        })
    }
}

/// One recording, ready for inspection: its timeline and its media.
#[derive(Debug)]
pub struct Recording {
    pub kind: SourceKind,
    /// What the timeline was read from (the manifest's entry name, the logs, the event).
    pub described_by: String,
    /// A short name for the recording, unique within its input: the OpenTok archive id,
    /// `<channelId>-<sessionStart>` for LiveSwitch, `<room_id>-<conf_num>` for EnableX.
    pub key: String,
    pub timeline: Timeline,
    pub media: MediaStore,
    /// What the adapter noticed that does not stop processing.
    pub warnings: Vec<String>,
}

/// Every recording of an input (a LiveSwitch folder may hold several sessions).
pub fn open(path: &Path, opts: &SourceOptions) -> Result<Vec<Recording>> {
    match detect(path, opts.kind)? {
        Detected::OpentokZip => Ok(vec![opentok::open_zip(path, opts)?]),
        Detected::OpentokFolder(dir) => Ok(vec![opentok::open_folder(&dir, opts)?]),
        Detected::LiveswitchFolder => liveswitch::open_folder(path, opts),
        Detected::LiveswitchEvent => liveswitch::open_event(path, opts),
        Detected::EnablexNotification => Ok(vec![enablex::open(path, opts)?]),
    }
}

/// The one recording of an input; an input holding several is an error that lists them.
pub fn open_one(path: &Path, opts: &SourceOptions) -> Result<Recording> {
    let mut all = open(path, opts)?;
    if all.len() == 1 {
        return Ok(all.remove(0));
    }
    Err(Error::SeveralRecordings {
        path: path.to_path_buf(),
        count: all.len(),
        keys: all
            .iter()
            .map(|r| r.key.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// True when `path` is an input mosaic reads (whatever its platform).
pub fn is_input(path: &Path) -> bool {
    detect(path, None).is_ok()
}

/// What an input path is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Detected {
    OpentokZip,
    /// A folder with a manifest (the folder itself, or the folder of a manifest given as
    /// the path).
    OpentokFolder(PathBuf),
    LiveswitchFolder,
    LiveswitchEvent,
    EnablexNotification,
}

const EXPECTED: &str = "expected an OpenTok archive (.zip, or a folder with its manifest), a \
     LiveSwitch recordings folder (<connectionId>-<n>.json logs with .mka/.mkv files), a \
     LiveSwitch connection.recordings.ready event (.json) or an EnableX recording \
     notification (.json)";

fn detect(path: &Path, forced: Option<SourceKind>) -> Result<Detected> {
    let meta = std::fs::metadata(path).map_err(|source| Error::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let unknown = |reason: String| Error::UnknownInput {
        path: path.to_path_buf(),
        reason,
    };
    if meta.is_dir() {
        let manifest = opentok::folder_has_manifest(path);
        let logs = liveswitch::folder_has_logs(path);
        return match (forced, manifest, logs) {
            (Some(SourceKind::Opentok), _, _) | (None, true, false) => {
                Ok(Detected::OpentokFolder(path.to_path_buf()))
            }
            (Some(SourceKind::Liveswitch), _, _) | (None, false, true) => {
                Ok(Detected::LiveswitchFolder)
            }
            (None, true, true) => Err(unknown(
                "the folder holds both an OpenTok manifest and LiveSwitch logs; say which \
                 with --source"
                    .into(),
            )),
            (Some(SourceKind::Enablex), _, _) => Err(unknown(
                "an EnableX input is its recording notification (.json), not a folder".into(),
            )),
            (None, false, false) => Err(unknown(format!(
                "a folder with neither an OpenTok manifest nor LiveSwitch logs; {EXPECTED}"
            ))),
        };
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match (forced, ext.as_deref()) {
        (None | Some(SourceKind::Opentok), Some("zip")) => return Ok(Detected::OpentokZip),
        (_, Some("json")) => {}
        (Some(SourceKind::Opentok), _) => return Ok(Detected::OpentokZip),
        _ => return Err(unknown(EXPECTED.into())),
    }
    // A JSON file: told apart by what it holds.
    let bytes = read_small(path)?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| unknown(format!("not valid JSON ({e}); {EXPECTED}")))?;
    let kind = value.get("type").and_then(serde_json::Value::as_str);
    let looks = if value.get("files").is_some() && value.get("createdAt").is_some() {
        Some(SourceKind::Opentok)
    } else if kind.is_some_and(|t| t.starts_with("connection.recording")) {
        Some(SourceKind::Liveswitch)
    } else if value.get("room_id").is_some() || value.get("conf_num").is_some() {
        Some(SourceKind::Enablex)
    } else if value.is_array() {
        Some(SourceKind::Liveswitch)
    } else {
        None
    };
    let folder = || path.parent().map(Path::to_path_buf).unwrap_or_default();
    match forced.or(looks) {
        Some(SourceKind::Opentok) => Ok(Detected::OpentokFolder(folder())),
        Some(SourceKind::Liveswitch) if value.is_array() => Err(unknown(
            "a LiveSwitch recording log; give the folder that holds the logs and their \
             .mka/.mkv files"
                .into(),
        )),
        Some(SourceKind::Liveswitch) => Ok(Detected::LiveswitchEvent),
        Some(SourceKind::Enablex) => Ok(Detected::EnablexNotification),
        None => Err(unknown(format!(
            "a JSON file that is no manifest, event or notification mosaic knows (type {}); \
             {EXPECTED}",
            kind.map_or("missing".into(), |t| format!("{t:?}"))
        ))),
    }
}

/// Events, logs and notifications are small; a larger file is refused before parsing.
pub const MAX_METADATA_SIZE: u64 = 16 << 20;

/// Reads a metadata file (event, log, notification) of at most [`MAX_METADATA_SIZE`].
pub(crate) fn read_small(path: &Path) -> Result<Vec<u8>> {
    let open_err = |source| Error::Open {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(open_err)?.len();
    if len > MAX_METADATA_SIZE {
        return Err(Error::InvalidEvent {
            name: display_name(path),
            field: "(file)".into(),
            reason: format!("{len} bytes, more than the limit of {MAX_METADATA_SIZE}"),
        });
    }
    std::fs::read(path).map_err(open_err)
}

/// A file's name for messages.
pub(crate) fn display_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
