//! LiveSwitch recordings: each connection's audio (`.mka`, Opus) and video (`.mkv`, VP8 or
//! H.264) recorded separately, described by a log beside them (`<connectionId>-<n>.json`,
//! what the LiveSwitch Mux CLI reads) or by a webhook event (`connection.recordings.ready`).
//!
//! [`log`] and [`event`] parse those (pure), [`session`] groups recordings into sessions and
//! lays out their timeline (pure); this module is the edge that reads the folder.

pub mod event;
pub mod log;
pub mod session;

use std::path::{Path, PathBuf};

use super::media::{Folder, MediaStore};
use super::{
    GivenTime, Recording, SourceKind, SourceOptions, check_span, display_name, read_small,
};
use crate::error::{Error, Result};
use event::FileKind;
use session::Session;

/// One connection's recording, from a log or an event.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionRecording {
    pub application_id: String,
    pub channel_id: String,
    /// The participant: a client's successive connections are one stream.
    pub client_id: String,
    pub connection_id: String,
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    /// Unix ms.
    pub start_ms: i64,
    pub stop_ms: i64,
    pub audio: Option<MediaTrack>,
    pub video: Option<MediaTrack>,
    /// How much later than its timestamps the video really is (`videoDelay`), in ms.
    pub video_delay_ms: i64,
    /// A screen share (`videoContent: "screen"`, or a connection tag that says screen).
    pub screen: bool,
    pub tag: Option<String>,
    /// Where this came from (the log file, the event's field), for messages.
    pub origin: String,
}

/// One of a connection's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaTrack {
    /// The file's plain name in the media folder.
    pub file: String,
    /// Unix ms of its first and last frames, when known.
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
    /// The size the event declares.
    pub size: Option<u64>,
}

/// Whether a connection is a screen share.
fn is_screen(content: Option<&str>, tag: Option<&str>) -> bool {
    content.is_some_and(|c| c.eq_ignore_ascii_case("screen"))
        || tag.is_some_and(|t| t.to_ascii_lowercase().contains("screen"))
}

/// True when `dir` holds at least one recording log.
pub fn folder_has_logs(dir: &Path) -> bool {
    log_files(dir).is_ok_and(|logs| !logs.is_empty())
}

/// The `.json` files of `dir` that are logs (JSON arrays), sorted by name.
fn log_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let read = std::fs::read_dir(dir).map_err(|source| Error::Open {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out: Vec<PathBuf> = read
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        })
        .filter(|p| {
            read_small(p).is_ok_and(|bytes| {
                bytes
                    .iter()
                    .find(|b| !b.is_ascii_whitespace())
                    .is_some_and(|&b| b == b'[')
            })
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Every session of a recordings folder (or only those of `opts.channel`).
pub fn open_folder(dir: &Path, opts: &SourceOptions) -> Result<Vec<Recording>> {
    let mut connections = Vec::new();
    let mut warnings = Vec::new();
    let logs = log_files(dir)?;
    for path in &logs {
        let parsed = log::parse(&display_name(path), &read_small(path)?)?;
        warnings.extend(parsed.warnings);
        connections.push(parsed.recording);
    }
    let all = session::sessions(connections);
    let channels: Vec<String> = all.iter().map(|s| s.channel_id.clone()).collect();
    let chosen: Vec<Session> = all
        .into_iter()
        .filter(|s| opts.channel.as_ref().is_none_or(|c| *c == s.channel_id))
        .collect();
    if chosen.is_empty() {
        return Err(Error::UnknownInput {
            path: dir.to_path_buf(),
            reason: format!(
                "no session of channel {:?}; the logs have {}",
                opts.channel.as_deref().unwrap_or_default(),
                channels.join(", ")
            ),
        });
    }
    let described_by = format!("{} recording logs", logs.len());
    chosen
        .into_iter()
        .map(|s| recording(s, dir, &described_by, warnings.clone(), opts))
        .collect()
}

/// The session a webhook event describes, with its files from the event's folder or
/// `opts.media_dir`.
pub fn open_event(path: &Path, opts: &SourceOptions) -> Result<Vec<Recording>> {
    let media_dir = opts.media_dir.clone().unwrap_or_else(|| {
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    });
    let name = display_name(path);
    let bytes = read_small(path)?;
    let mut find = |connection: &str, kind: FileKind| find_file(&media_dir, connection, kind);
    let event = event::parse(&name, &bytes, &mut find)?;
    if let Some(c) = opts
        .channel
        .as_ref()
        .filter(|c| **c != event.channel.channel_id)
    {
        return Err(Error::UnknownInput {
            path: path.to_path_buf(),
            reason: format!(
                "the event is for channel {:?}, not {c:?}",
                event.channel.channel_id
            ),
        });
    }
    let session = Session::of_channel(
        event.connections,
        Some((event.channel.start_ms, event.channel.stop_ms)),
        event.channel.id,
        event.channel.application_id,
        event.channel.channel_id,
    );
    Ok(vec![recording(
        session,
        &media_dir,
        &name,
        Vec::new(),
        opts,
    )?])
}

/// Every time the session's logs or event give, relative to the session's start.
fn given_times(session: &Session) -> Vec<GivenTime> {
    let mut out = Vec::new();
    for c in &session.connections {
        let mut put = |field: &str, unix_ms: Option<i64>| {
            if let Some(t) = unix_ms {
                out.push(GivenTime {
                    name: c.origin.clone(),
                    field: field.to_owned(),
                    ms: t.saturating_sub(session.start_ms),
                });
            }
        };
        put("startTimestamp", Some(c.start_ms));
        put("stopTimestamp", Some(c.stop_ms));
        for (kind, track) in [("audio", &c.audio), ("video", &c.video)] {
            if let Some(t) = track {
                put(&format!("{kind}FirstFrameTimestamp"), t.first_ms);
                put(&format!("{kind}LastFrameTimestamp"), t.last_ms);
            }
        }
    }
    out
}

/// A connection's file when the event names none: `<connectionId>.<ext>` or
/// `<connectionId>-<n>.<ext>` in the media folder, which must be exactly one.
fn find_file(dir: &Path, connection: &str, kind: FileKind) -> Result<String> {
    let ext = kind.extension();
    let read = std::fs::read_dir(dir).map_err(|source| Error::Open {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut found: Vec<String> = read
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| {
            let Some(stem) = n.strip_suffix(ext).and_then(|s| s.strip_suffix('.')) else {
                return false;
            };
            stem == connection
                || stem
                    .strip_prefix(connection)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(Error::MissingFile {
            filename: format!("{connection}-<n>.{ext}"),
        }),
        _ => Err(Error::UnknownInput {
            path: dir.to_path_buf(),
            reason: format!(
                "several files could be connection {connection}'s: {}; name them in the event",
                found.join(", ")
            ),
        }),
    }
}

fn recording(
    session: Session,
    dir: &Path,
    described_by: &str,
    warnings: Vec<String>,
    opts: &SourceOptions,
) -> Result<Recording> {
    check_span(&given_times(&session), opts.max_span())?;
    let mut folder = Folder::new(dir);
    for c in &session.connections {
        for t in [&c.audio, &c.video].into_iter().flatten() {
            folder.add(&t.file)?;
        }
    }
    let labels = |ids: &[&str]| ids.iter().find_map(|id| opts.labels.get(*id).cloned());
    let timeline = session.timeline(&labels);
    Ok(Recording {
        kind: SourceKind::Liveswitch,
        described_by: described_by.to_owned(),
        key: session.key(),
        timeline,
        media: MediaStore::Folder(folder),
        warnings,
    })
}
