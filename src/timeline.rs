//! The archive timeline: who is present when, built from the manifest alone (pure, no I/O).
//!
//! Time here is [`ArchiveMs`]: milliseconds from the manifest's `createdAt`. A stream is one
//! participant's published stream; it may be interrupted and resumed, which gives several
//! segments (`<streamId>_1.webm`, `<streamId>_2.webm`). A segment's media may come from one
//! file holding audio and video (OpenTok) or from separate audio and video files with their
//! own start times (LiveSwitch records `.mka` and `.mkv` per connection): each file is a
//! [`Source`] of the segment.

use std::cmp::Ordering;
use std::fmt;

use serde::Serialize;

use crate::archive::manifest::{Manifest, ManifestFile};

/// Milliseconds on the archive timeline (0 = the manifest's `createdAt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ArchiveMs(pub i64);

impl fmt::Display for ArchiveMs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        let sign = if ms < 0 { "-" } else { "" };
        let ms = ms.unsigned_abs();
        write!(
            f,
            "{sign}{}:{:02}.{:03}",
            ms / 60_000,
            (ms / 1000) % 60,
            ms % 1000
        )
    }
}

/// A half-open interval `[start, stop)` on the archive timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Interval {
    pub start: ArchiveMs,
    pub stop: ArchiveMs,
}

impl Interval {
    pub fn duration_ms(&self) -> i64 {
        self.stop.0 - self.start.0
    }
}

/// What kind of video a stream publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoType {
    Camera,
    Screen,
    Custom,
    /// Not given in the manifest.
    Unknown,
}

impl VideoType {
    fn from_manifest(value: Option<&str>) -> VideoType {
        match value.map(str::to_ascii_lowercase).as_deref() {
            Some("camera") => VideoType::Camera,
            Some("screen") => VideoType::Screen,
            Some("custom") => VideoType::Custom,
            _ => VideoType::Unknown,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            VideoType::Camera => "camera",
            VideoType::Screen => "screen",
            VideoType::Custom => "custom",
            VideoType::Unknown => "unknown",
        }
    }
}

/// Which media a source file carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceMedia {
    AudioVideo,
    Audio,
    Video,
}

/// One media file feeding a segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    pub filename: String,
    pub media: SourceMedia,
    /// Where the file's time 0 sits on the archive timeline.
    pub start: ArchiveMs,
    /// The size the manifest declares, if any.
    pub declared_size: Option<u64>,
}

/// One continuous recording of a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Segment {
    /// 1-based position of this segment in its stream, in timeline order.
    pub index: usize,
    /// The `_N` index from the file name, when it has one.
    pub file_index: Option<u32>,
    pub start: ArchiveMs,
    pub stop: ArchiveMs,
    pub sources: Vec<Source>,
}

impl Segment {
    pub fn interval(&self) -> Interval {
        Interval {
            start: self.start,
            stop: self.stop,
        }
    }
}

/// One published stream (one participant's camera, or a screen share).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stream {
    pub id: String,
    pub label: String,
    pub video_type: VideoType,
    /// In timeline order, never empty.
    pub segments: Vec<Segment>,
}

impl Stream {
    pub fn start(&self) -> ArchiveMs {
        self.segments
            .iter()
            .map(|s| s.start)
            .min()
            .unwrap_or(ArchiveMs(0))
    }

    pub fn stop(&self) -> ArchiveMs {
        self.segments
            .iter()
            .map(|s| s.stop)
            .max()
            .unwrap_or(ArchiveMs(0))
    }

    /// The intervals during which the stream is on the timeline (overlapping or touching
    /// segments merged), in order.
    pub fn presence(&self) -> Vec<Interval> {
        let mut out: Vec<Interval> = Vec::new();
        for seg in &self.segments {
            match out.last_mut() {
                Some(last) if seg.start <= last.stop => last.stop = last.stop.max(seg.stop),
                _ => out.push(seg.interval()),
            }
        }
        out
    }
}

/// Something about the timeline a user should know; it does not stop processing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimelineWarning {
    OverlappingSegments {
        stream: String,
        first: String,
        second: String,
        overlap_ms: i64,
    },
    DurationMismatch {
        filename: String,
        manifest_ms: i64,
        container_ms: i64,
    },
}

impl fmt::Display for TimelineWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimelineWarning::OverlappingSegments {
                stream,
                first,
                second,
                overlap_ms,
            } => write!(
                f,
                "stream {stream}: segments {first} and {second} overlap by {overlap_ms} ms"
            ),
            TimelineWarning::DurationMismatch {
                filename,
                manifest_ms,
                container_ms,
            } => write!(
                f,
                "{filename}: the manifest says {manifest_ms} ms (stop - start offset) but the \
                 container holds {container_ms} ms ({:+} ms)",
                container_ms - manifest_ms
            ),
        }
    }
}

/// How far a file's manifest duration and its container's may differ before we warn.
pub const DURATION_TOLERANCE_MS: i64 = 100;

/// The whole archive on one timeline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Timeline {
    pub archive_id: String,
    pub archive_name: Option<String>,
    pub created_at_ms: i64,
    /// Ordered by first appearance, then by id.
    pub streams: Vec<Stream>,
    #[serde(skip)]
    pub warnings: Vec<TimelineWarning>,
}

impl Timeline {
    /// Builds the timeline of an OpenTok individual-stream manifest.
    pub fn from_manifest(manifest: &Manifest) -> Timeline {
        let mut by_stream: Vec<(String, Vec<&ManifestFile>)> = Vec::new();
        for file in &manifest.files {
            match by_stream.iter_mut().find(|(id, _)| *id == file.stream_id) {
                Some((_, files)) => files.push(file),
                None => by_stream.push((file.stream_id.clone(), vec![file])),
            }
        }

        let mut warnings = Vec::new();
        let mut streams: Vec<Stream> = by_stream
            .into_iter()
            .map(|(id, mut files)| {
                files.sort_by(|a, b| segment_order(&id, a, b));
                let segments: Vec<Segment> = files
                    .iter()
                    .enumerate()
                    .map(|(i, f)| Segment {
                        index: i + 1,
                        file_index: file_index(&id, &f.filename),
                        start: ArchiveMs(f.start_time_offset),
                        stop: ArchiveMs(f.stop_time_offset),
                        sources: vec![Source {
                            filename: f.filename.clone(),
                            media: SourceMedia::AudioVideo,
                            start: ArchiveMs(f.start_time_offset),
                            declared_size: f.size,
                        }],
                    })
                    .collect();
                for pair in segments.windows(2) {
                    let overlap = pair[0].stop.0 - pair[1].start.0;
                    if overlap > 0 {
                        warnings.push(TimelineWarning::OverlappingSegments {
                            stream: id.clone(),
                            first: pair[0].sources[0].filename.clone(),
                            second: pair[1].sources[0].filename.clone(),
                            overlap_ms: overlap,
                        });
                    }
                }
                // The first file's connection data and video type describe the stream.
                let first = files[0];
                Stream {
                    label: label_from_connection_data(first.connection_data.as_ref())
                        .unwrap_or_else(|| id.clone()),
                    video_type: VideoType::from_manifest(first.video_type.as_deref()),
                    id,
                    segments,
                }
            })
            .collect();
        streams.sort_by(|a, b| a.start().cmp(&b.start()).then_with(|| a.id.cmp(&b.id)));

        Timeline {
            archive_id: manifest.id.clone(),
            archive_name: manifest.name.clone().filter(|n| !n.is_empty()),
            created_at_ms: manifest.created_at,
            streams,
            warnings,
        }
    }

    /// From the earliest start to the latest stop of any segment; `None` without streams.
    pub fn span(&self) -> Option<Interval> {
        let start = self.streams.iter().map(Stream::start).min()?;
        let stop = self.streams.iter().map(Stream::stop).max()?;
        Some(Interval { start, stop })
    }

    /// Compares each source's manifest duration with its container's own duration
    /// (`container_ms` answers for a file name, `None` when unknown) and returns a warning
    /// for each that disagrees by more than [`DURATION_TOLERANCE_MS`].
    pub fn duration_warnings(
        &self,
        container_ms: impl Fn(&str) -> Option<i64>,
    ) -> Vec<TimelineWarning> {
        let mut out = Vec::new();
        for seg in self.streams.iter().flat_map(|s| &s.segments) {
            for src in &seg.sources {
                let Some(actual) = container_ms(&src.filename) else {
                    continue;
                };
                let declared = seg.stop.0 - src.start.0;
                if (actual - declared).abs() > DURATION_TOLERANCE_MS {
                    out.push(TimelineWarning::DurationMismatch {
                        filename: src.filename.clone(),
                        manifest_ms: declared,
                        container_ms: actual,
                    });
                }
            }
        }
        out
    }
}

/// Segment order within a stream: by start offset, then by the `_N` file index (numerically,
/// so `_10` comes after `_9`), then by name.
fn segment_order(stream_id: &str, a: &ManifestFile, b: &ManifestFile) -> Ordering {
    a.start_time_offset
        .cmp(&b.start_time_offset)
        .then_with(|| file_index(stream_id, &a.filename).cmp(&file_index(stream_id, &b.filename)))
        .then_with(|| a.filename.cmp(&b.filename))
}

/// The `N` of `<streamId>_N.ext`, or of any `<name>_N.ext` when the name does not start
/// with the stream id.
pub fn file_index(stream_id: &str, filename: &str) -> Option<u32> {
    let stem = filename.rsplit_once('.').map_or(filename, |(stem, _)| stem);
    let rest = stem.strip_prefix(stream_id).unwrap_or(stem);
    let (_, digits) = rest.rsplit_once('_')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A stream's display label from its connection data: a JSON object's `name` (the data may
/// be the object itself or a string holding it), else the raw string; `None` when empty.
pub fn label_from_connection_data(data: Option<&serde_json::Value>) -> Option<String> {
    let name_of = |v: &serde_json::Value| {
        v.get("name")
            .and_then(serde_json::Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    match data? {
        serde_json::Value::String(s) => {
            let trimmed = s.trim();
            if trimmed.is_empty() {
                return None;
            }
            match serde_json::from_str::<serde_json::Value>(trimmed) {
                Ok(v) if v.is_object() => name_of(&v).or_else(|| Some(trimmed.to_owned())),
                _ => Some(trimmed.to_owned()),
            }
        }
        v @ serde_json::Value::Object(_) => name_of(v),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn file(stream: &str, name: &str, start: i64, stop: i64) -> ManifestFile {
        ManifestFile {
            stream_id: stream.into(),
            filename: name.into(),
            start_time_offset: start,
            stop_time_offset: stop,
            video_type: Some("camera".into()),
            connection_data: None,
            size: None,
        }
    }

    fn manifest(files: Vec<ManifestFile>) -> Manifest {
        Manifest {
            id: "arch".into(),
            name: Some(String::new()),
            created_at: 1_000,
            files,
            session_id: None,
            partner_id: None,
        }
    }

    fn names(stream: &Stream) -> Vec<&str> {
        stream
            .segments
            .iter()
            .map(|s| s.sources[0].filename.as_str())
            .collect()
    }

    #[test]
    fn orders_out_of_order_segments_by_offset() {
        let t = Timeline::from_manifest(&manifest(vec![
            file("s", "s_3.webm", 9_000, 12_000),
            file("s", "s_1.webm", 0, 3_000),
            file("s", "s_2.webm", 4_000, 8_000),
        ]));
        assert_eq!(names(&t.streams[0]), ["s_1.webm", "s_2.webm", "s_3.webm"]);
        let idx: Vec<_> = t.streams[0].segments.iter().map(|s| s.index).collect();
        assert_eq!(idx, [1, 2, 3]);
        assert!(t.warnings.is_empty());
    }

    #[test]
    fn ten_comes_after_nine_on_equal_offsets() {
        let t = Timeline::from_manifest(&manifest(vec![
            file("s", "s_10.webm", 5_000, 6_000),
            file("s", "s_9.webm", 5_000, 5_000),
            file("s", "s_2.webm", 5_000, 5_000),
        ]));
        assert_eq!(names(&t.streams[0]), ["s_2.webm", "s_9.webm", "s_10.webm"]);
        assert_eq!(t.streams[0].segments[2].file_index, Some(10));
    }

    #[test]
    fn equal_offsets_without_index_are_stable_by_name() {
        let t = Timeline::from_manifest(&manifest(vec![
            file("s", "s_b.webm", 0, 10),
            file("s", "s.webm", 0, 10),
        ]));
        assert_eq!(names(&t.streams[0]), ["s.webm", "s_b.webm"]);
        assert_eq!(t.streams[0].segments[0].file_index, None);
    }

    #[test]
    fn flags_overlapping_segments() {
        let t = Timeline::from_manifest(&manifest(vec![
            file("s", "s_1.webm", 0, 5_000),
            file("s", "s_2.webm", 4_000, 8_000),
        ]));
        assert_eq!(
            t.warnings,
            [TimelineWarning::OverlappingSegments {
                stream: "s".into(),
                first: "s_1.webm".into(),
                second: "s_2.webm".into(),
                overlap_ms: 1_000,
            }]
        );
        assert_eq!(
            t.streams[0].presence(),
            [Interval {
                start: ArchiveMs(0),
                stop: ArchiveMs(8_000)
            }]
        );
    }

    #[test]
    fn span_and_presence() {
        let t = Timeline::from_manifest(&manifest(vec![
            file("b", "b.webm", 2_799, 48_764),
            file("a", "a_1.webm", 3_119, 10_000),
            file("a", "a_2.webm", 20_000, 48_765),
        ]));
        assert_eq!(
            t.span(),
            Some(Interval {
                start: ArchiveMs(2_799),
                stop: ArchiveMs(48_765)
            })
        );
        // Streams ordered by first appearance.
        assert_eq!(t.streams[0].id, "b");
        let a = &t.streams[1];
        assert_eq!(a.start(), ArchiveMs(3_119));
        assert_eq!(a.stop(), ArchiveMs(48_765));
        assert_eq!(
            a.presence(),
            [
                Interval {
                    start: ArchiveMs(3_119),
                    stop: ArchiveMs(10_000)
                },
                Interval {
                    start: ArchiveMs(20_000),
                    stop: ArchiveMs(48_765)
                }
            ]
        );
        assert_eq!(Timeline::from_manifest(&manifest(vec![])).span(), None);
    }

    #[test]
    fn labels_from_connection_data() {
        let l = |v: serde_json::Value| label_from_connection_data(Some(&v));
        assert_eq!(
            l(json!(r#"{"name":"Zoë \"Z\" Ångström"}"#)).as_deref(),
            Some("Zoë \"Z\" Ångström")
        );
        assert_eq!(
            l(json!({"name": "日本語 🎥"})).as_deref(),
            Some("日本語 🎥")
        );
        assert_eq!(
            l(json!(r#"name=Firefox "53""#)).as_deref(),
            Some(r#"name=Firefox "53""#)
        );
        assert_eq!(
            l(json!(r#"{"role":"host"}"#)).as_deref(),
            Some(r#"{"role":"host"}"#)
        );
        assert_eq!(l(json!("  ")), None);
        assert_eq!(l(json!(null)), None);
        assert_eq!(l(json!(42)).as_deref(), Some("42"));
        assert_eq!(label_from_connection_data(None), None);
    }

    #[test]
    fn label_falls_back_to_stream_id_and_video_type_is_read() {
        let mut f = file("abc", "abc.webm", 0, 10);
        f.video_type = Some("screen".into());
        f.connection_data = Some(json!(""));
        let t = Timeline::from_manifest(&manifest(vec![f]));
        assert_eq!(t.streams[0].label, "abc");
        assert_eq!(t.streams[0].video_type, VideoType::Screen);
    }

    #[test]
    fn file_index_parsing() {
        assert_eq!(file_index("s", "s.webm"), None);
        assert_eq!(file_index("s", "s_1.webm"), Some(1));
        assert_eq!(file_index("s", "s_10.mkv"), Some(10));
        assert_eq!(file_index("a_b", "a_b.webm"), None);
        assert_eq!(file_index("a_b", "a_b_7.webm"), Some(7));
        assert_eq!(file_index("s", "s_x.webm"), None);
        assert_eq!(file_index("s", "s_99999999999.webm"), None);
    }

    #[test]
    fn duration_mismatch_warns_with_both_numbers() {
        let t = Timeline::from_manifest(&manifest(vec![
            file("a", "a.webm", 1_000, 11_000),
            file("b", "b.webm", 0, 5_000),
        ]));
        let w = t.duration_warnings(|name| match name {
            "a.webm" => Some(10_050),
            "b.webm" => Some(4_800),
            _ => None,
        });
        assert_eq!(w.len(), 1);
        let text = w[0].to_string();
        assert!(text.contains("5000") && text.contains("4800"), "{text}");
    }

    #[test]
    fn archive_ms_display() {
        assert_eq!(ArchiveMs(61_005).to_string(), "1:01.005");
        assert_eq!(ArchiveMs(-1).to_string(), "-0:00.001");
    }
}
