//! The recording's timeline: who is present when (pure, no I/O). Every platform's adapter
//! (see [`crate::source`]) builds one from what the platform wrote; everything after it
//! (inspect, compose, repair) only reads this.
//!
//! Time here is [`ArchiveMs`]: milliseconds from the recording's origin (OpenTok: the
//! manifest's `createdAt`; LiveSwitch: the session's start). A stream is one participant's
//! published stream; it may be interrupted and resumed, which gives several segments
//! (OpenTok's `<streamId>_1.webm`, `<streamId>_2.webm`; a LiveSwitch client's successive
//! connections). A segment's media may come from one file holding audio and video (OpenTok)
//! or from separate audio and video files with their own start times (LiveSwitch records
//! `.mka` and `.mkv` per connection): each file is a [`Source`] of the segment.

use std::fmt;

use serde::Serialize;

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
    /// From a platform's word for it (`camera`, `screen`, `custom`; any case).
    pub fn parse(value: Option<&str>) -> VideoType {
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

/// What a source's declared start refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Anchor {
    /// The file's time 0 (OpenTok's `startTimeOffset`).
    #[default]
    FileStart,
    /// The file's first frame of its media (LiveSwitch's `audioFirstFrameTimestamp`):
    /// inspection moves `start` to the file's time 0 once it knows the first frame's
    /// container time (see [`Timeline::anchor_first_frames`]).
    FirstFrame,
}

/// One media file feeding a segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    pub filename: String,
    pub media: SourceMedia,
    /// Where the file's time 0 sits on the archive timeline (see `anchor`).
    pub start: ArchiveMs,
    /// Where the platform says the file's media ends, when it says so for this file alone;
    /// otherwise the segment's stop.
    pub stop: Option<ArchiveMs>,
    pub anchor: Anchor,
    /// The size the platform declares, if any.
    pub declared_size: Option<u64>,
}

impl Source {
    /// A file holding its segment's audio and video, whose time 0 is at `start`.
    pub fn whole(filename: impl Into<String>, start: ArchiveMs, size: Option<u64>) -> Source {
        Source {
            filename: filename.into(),
            media: SourceMedia::AudioVideo,
            start,
            stop: None,
            anchor: Anchor::FileStart,
            declared_size: size,
        }
    }
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
    /// A file placed by a fallback: the time that places it was missing (a LiveSwitch
    /// connection without its first-frame time, an EnableX file without `DateUTC`).
    /// `--strict` refuses a recording with one.
    Fallback { what: String },
}

impl fmt::Display for TimelineWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimelineWarning::Fallback { what } => f.write_str(what),
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
                "{filename}: the recording's metadata says {manifest_ms} ms (stop - start) but \
                 the container holds {container_ms} ms ({:+} ms)",
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
    /// From the earliest start to the latest stop of any segment; `None` without streams.
    pub fn span(&self) -> Option<Interval> {
        let start = self.streams.iter().map(Stream::start).min()?;
        let stop = self.streams.iter().map(Stream::stop).max()?;
        Some(Interval { start, stop })
    }

    /// Moves every [`Anchor::FirstFrame`] source so that its `start` is the file's time 0:
    /// `first_ms` answers the container time of a file's first frame of the source's media.
    pub fn anchor_first_frames(&mut self, first_ms: impl Fn(&str, SourceMedia) -> Option<i64>) {
        for src in self
            .streams
            .iter_mut()
            .flat_map(|s| &mut s.segments)
            .flat_map(|seg| &mut seg.sources)
            .filter(|src| src.anchor == Anchor::FirstFrame)
        {
            if let Some(first) = first_ms(&src.filename, src.media) {
                src.start = ArchiveMs(src.start.0 - first);
                src.anchor = Anchor::FileStart;
            }
        }
    }

    /// Sorts streams by first appearance, then by id (every adapter's order).
    pub fn sort_streams(&mut self) {
        self.streams
            .sort_by(|a, b| a.start().cmp(&b.start()).then_with(|| a.id.cmp(&b.id)));
    }

    /// Compares each source's declared duration with its container's (`container_ms`
    /// answers a file's first and last frame times, container ms, `None` when unknown) and
    /// returns a warning for each that disagrees by more than [`DURATION_TOLERANCE_MS`].
    /// A source without its own stop lasts to its segment's stop; one with a stop must end
    /// there.
    pub fn duration_warnings(
        &self,
        container_ms: impl Fn(&str) -> Option<(i64, i64)>,
    ) -> Vec<TimelineWarning> {
        let mut out = Vec::new();
        for seg in self.streams.iter().flat_map(|s| &s.segments) {
            for src in &seg.sources {
                let Some((first, last)) = container_ms(&src.filename) else {
                    continue;
                };
                let (declared, actual) = match src.stop {
                    None => (seg.stop.0 - src.start.0, last - first),
                    Some(stop) => (stop.0 - src.start.0 - first, last - first),
                };
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
