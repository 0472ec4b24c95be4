//! EnableX recordings: a `recording` notification (`type`, `trans_date`, `app_id`, `room_id`,
//! `conf_num`, `recording: [urls]`) and the files it lists, downloaded into a folder (each
//! matched by its URL's last path segment). Each file is one participant.
//!
//! The notification says nothing about when each file starts, so the files say it: a file
//! starts at its Matroska `DateUTC`, on a timeline whose origin is the earliest of them.
//! A file without one starts at 0, with a warning.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::fields::Fields;
use super::media::{Folder, MediaStore, base_name};
use super::{
    GivenTime, Recording, SourceKind, SourceOptions, check_span, display_name, read_small,
};
use crate::error::{Error, Result};
use crate::inspect::{InspectOptions, inspect_container};
use crate::timeline::{ArchiveMs, Segment, Source, Stream, Timeline, TimelineWarning, VideoType};

/// A parsed `recording` notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub app_id: Option<String>,
    pub room_id: String,
    pub conf_num: String,
    /// Unix ms, when given.
    pub trans_date_ms: Option<i64>,
    /// The files' plain names, in the notification's order.
    pub files: Vec<String>,
}

/// The notification types EnableX sends; only `recording` lists recording files.
const TYPES: [&str; 4] = ["recording", "roomdrop", "transcoded", "file-transfer"];

/// Parses a notification (pure).
pub fn parse(file: &str, bytes: &[u8]) -> Result<Notification> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| Error::InvalidEvent {
        name: file.to_owned(),
        field: "(file)".into(),
        reason: format!("not valid JSON: {e}"),
    })?;
    let root = Fields::root(file, &value)?;
    let kind = root.required_str("type")?;
    if kind != "recording" {
        let why = if TYPES.contains(&kind) {
            format!("a {kind:?} notification lists no recording files; mosaic reads \"recording\"")
        } else {
            format!("unknown notification type {kind:?}; mosaic reads \"recording\"")
        };
        return Err(root.error("type", why));
    }
    let list = match root.obj.get("recording") {
        Some(Value::Array(list)) if !list.is_empty() => list,
        Some(Value::Array(_)) => return Err(root.error("recording", "lists no files")),
        Some(_) => return Err(root.error("recording", "is not an array of URLs")),
        None => return Err(root.error("recording", "is missing")),
    };
    let mut files: Vec<String> = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let field = format!("recording[{i}]");
        let url = item
            .as_str()
            .ok_or_else(|| root.error(&field, "is not a URL string"))?;
        let name = base_name(url);
        if let Some(reason) = super::media::unsafe_plain_name(&name) {
            return Err(root.error(&field, format!("its file name {name:?} {reason}")));
        }
        if files.contains(&name) {
            return Err(root.error(&field, format!("{name:?} is listed twice")));
        }
        files.push(name);
    }
    Ok(Notification {
        app_id: root.text("app_id")?,
        room_id: root
            .text("room_id")?
            .ok_or_else(|| root.error("room_id", "is missing"))?,
        conf_num: root
            .text("conf_num")?
            .ok_or_else(|| root.error("conf_num", "is missing"))?,
        trans_date_ms: trans_date(&root)?,
        files,
    })
}

/// `trans_date`: Unix seconds (or ms) as a number or a string, or an ISO-8601 time.
fn trans_date(root: &Fields<'_>) -> Result<Option<i64>> {
    let Some(text) = root.text("trans_date")? else {
        return Ok(None);
    };
    if let Ok(n) = text.trim().parse::<f64>() {
        let ms = if n.abs() >= 1e11 { n } else { n * 1000.0 };
        return Ok(Some(ms.round() as i64));
    }
    super::time::parse_iso_ms(&text)
        .map(Some)
        .map_err(|reason| root.error("trans_date", reason))
}

/// What a file itself says: when it was recorded, and where its last frame ends (container
/// ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileFacts {
    pub date_utc_ms: Option<i64>,
    pub end_ms: i64,
}

/// The timeline of the notification's files (pure), with a fallback warning when files
/// carry no start time.
pub fn timeline(n: &Notification, facts: &[FileFacts]) -> Timeline {
    let origin = facts.iter().filter_map(|f| f.date_utc_ms).min();
    let mut warnings = Vec::new();
    let undated: Vec<&str> = n
        .files
        .iter()
        .zip(facts)
        .filter(|(_, f)| f.date_utc_ms.is_none())
        .map(|(name, _)| name.as_str())
        .collect();
    if !undated.is_empty() {
        warnings.push(TimelineWarning::Fallback {
            what: format!(
                "{} carry no start time (no DateUTC): placed at 0 by a fallback, they may be \
                 out of step",
                undated.join(", ")
            ),
        });
    }
    let streams = n
        .files
        .iter()
        .zip(facts)
        .map(|(name, f)| {
            let start = match (f.date_utc_ms, origin) {
                (Some(d), Some(o)) => d - o,
                _ => 0,
            };
            let stem = name.rsplit_once('.').map_or(name.as_str(), |(s, _)| s);
            Stream {
                id: stem.to_owned(),
                label: stem.to_owned(),
                video_type: VideoType::Camera,
                segments: vec![Segment {
                    index: 1,
                    file_index: None,
                    start: ArchiveMs(start),
                    stop: ArchiveMs(start + f.end_ms.max(1)),
                    sources: vec![Source::whole(name.clone(), ArchiveMs(start), None)],
                }],
            }
        })
        .collect();
    let mut timeline = Timeline {
        archive_id: format!("{}-{}", n.room_id, n.conf_num),
        archive_name: n.app_id.clone(),
        created_at_ms: origin.or(n.trans_date_ms).unwrap_or(0),
        streams,
        warnings,
    };
    timeline.sort_streams();
    timeline
}

/// Opens a notification and its files (from its folder, or `opts.media_dir`).
pub fn open(path: &Path, opts: &SourceOptions) -> Result<Recording> {
    let name = display_name(path);
    let n = parse(&name, &read_small(path)?)?;
    let dir = opts.media_dir.clone().unwrap_or_else(|| {
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    });
    let mut folder = Folder::new(&dir);
    for file in &n.files {
        folder.add(file)?;
    }
    let mut media = MediaStore::Folder(folder);
    let mut media_facts = Vec::with_capacity(n.files.len());
    for file in &n.files {
        let report = inspect_container(media.open(file)?, file, &InspectOptions::default())?;
        let end_ms = report
            .tracks
            .iter()
            .filter_map(|t| {
                let last = t.last_ms?;
                let first = t.first_ms.unwrap_or(last);
                // One more frame: the last one lasts as long as the average frame.
                let step = if t.frames > 1 {
                    (last - first) / (t.frames as i64 - 1)
                } else {
                    20
                };
                Some(last + step)
            })
            .max()
            .unwrap_or(0);
        media_facts.push(FileFacts {
            date_utc_ms: report.date_utc_ms,
            end_ms,
        });
    }
    let origin = media_facts
        .iter()
        .filter_map(|f| f.date_utc_ms)
        .min()
        .unwrap_or(0);
    let times: Vec<GivenTime> = n
        .files
        .iter()
        .zip(&media_facts)
        .flat_map(|(file, f)| {
            let start = f.date_utc_ms.map_or(0, |d| d.saturating_sub(origin));
            [
                GivenTime {
                    name: file.clone(),
                    field: "DateUTC".into(),
                    ms: start,
                },
                GivenTime {
                    name: file.clone(),
                    field: "last frame".into(),
                    ms: start.saturating_add(f.end_ms),
                },
            ]
        })
        .collect();
    check_span(&times, opts.max_span())?;
    let mut timeline = timeline(&n, &media_facts);
    opts.relabel(&mut timeline, |s| vec![s.id.clone(), s.label.clone()]);
    Ok(Recording {
        kind: SourceKind::Enablex,
        described_by: name,
        key: timeline.archive_id.clone(),
        timeline,
        media,
        warnings: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_seed_shape() {
        let json = r#"{ "type": "recording", "trans_date": "1700000000", "app_id": "app",
            "room_id": "room1", "conf_num": 42,
            "recording": ["http://FQDN/path/a.mkv", "https://h/x/b%20c.webm?sig=1"] }"#;
        let n = parse("n.json", json.as_bytes()).unwrap();
        assert_eq!(n.files, ["a.mkv", "b c.webm"]);
        assert_eq!(n.conf_num, "42");
        assert_eq!(n.trans_date_ms, Some(1_700_000_000_000));
    }

    #[test]
    fn refuses_what_lists_no_files() {
        for (json, field) in [
            (
                r#"{"type":"roomdrop","room_id":"r","conf_num":"1"}"#,
                "type",
            ),
            (r#"{"type":"party","room_id":"r","conf_num":"1"}"#, "type"),
            (
                r#"{"type":"recording","room_id":"r","conf_num":"1","recording":[]}"#,
                "recording",
            ),
            (
                r#"{"type":"recording","conf_num":"1","recording":["http://h/a.mkv"]}"#,
                "room_id",
            ),
            (
                r#"{"type":"recording","room_id":"r","conf_num":"1","recording":["http://h/..%2Fa"]}"#,
                "recording[0]",
            ),
            (
                r#"{"type":"recording","room_id":"r","conf_num":"1","recording":["http://h/a","http://i/a"]}"#,
                "recording[1]",
            ),
        ] {
            match parse("n.json", json.as_bytes()) {
                Err(Error::InvalidEvent { field: f, .. }) => assert_eq!(f, field, "{json}"),
                other => panic!("{json}: {other:?}"),
            }
        }
    }

    #[test]
    fn files_start_at_their_date_or_at_zero_with_a_warning() {
        let n = Notification {
            app_id: None,
            room_id: "r".into(),
            conf_num: "7".into(),
            trans_date_ms: None,
            files: vec!["a.mkv".into(), "b.mkv".into(), "c.mkv".into()],
        };
        let facts = [
            FileFacts {
                date_utc_ms: Some(10_500),
                end_ms: 4_000,
            },
            FileFacts {
                date_utc_ms: Some(10_000),
                end_ms: 5_000,
            },
            FileFacts {
                date_utc_ms: None,
                end_ms: 3_000,
            },
        ];
        let t = timeline(&n, &facts);
        let warnings: Vec<String> = t.warnings.iter().map(ToString::to_string).collect();
        let starts: Vec<(String, i64, i64)> = t
            .streams
            .iter()
            .map(|s| (s.id.clone(), s.start().0, s.stop().0))
            .collect();
        assert_eq!(
            starts,
            [
                ("b".into(), 0, 5_000),
                ("c".into(), 0, 3_000),
                ("a".into(), 500, 4_500)
            ]
        );
        assert_eq!(t.archive_id, "r-7");
        assert_eq!(t.created_at_ms, 10_000);
        assert!(warnings[0].contains("c.mkv"), "{warnings:?}");
    }
}
