//! Container inspection: what is really in each media file of an archive.
//!
//! [`inspect_archive`] opens an archive, lays out its timeline and scans every container
//! (tracks, codecs, sizes, first/last timestamps, frame counts and every gap in presentation
//! time). [`ArchiveReport`] is the result; its JSON form is a contract (see `mosaic inspect
//! --json`).

pub mod bitstream;
pub mod block;
pub mod clusters;
pub mod matroska;
pub mod resync;
pub mod svg;
pub mod table;
pub mod track;

use std::io::Read;
use std::path::Path;

use serde::Serialize;

use crate::error::Result;
use crate::source::{self, Recording, SourceKind, SourceOptions};
use crate::timeline::{SourceMedia, VideoType};
use track::TrackScan;

/// Thresholds of inspection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InspectOptions {
    /// A jump between consecutive video frames larger than this is a gap.
    pub video_gap_ms: i64,
    /// A jump between consecutive audio packets larger than this is a gap.
    pub audio_gap_ms: i64,
}

impl Default for InspectOptions {
    fn default() -> Self {
        InspectOptions {
            video_gap_ms: 250,
            audio_gap_ms: 60,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackKind {
    Audio,
    Video,
}

/// The codecs mosaic reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    Vp8,
    Vp9,
    H264,
    Opus,
}

impl Codec {
    /// From a Matroska `CodecID`; `None` for codecs mosaic does not handle.
    pub fn from_codec_id(id: &str) -> Option<Codec> {
        match id {
            "V_VP8" => Some(Codec::Vp8),
            "V_VP9" => Some(Codec::Vp9),
            "V_MPEG4/ISO/AVC" => Some(Codec::H264),
            "A_OPUS" => Some(Codec::Opus),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Codec::Vp8 => "vp8",
            Codec::Vp9 => "vp9",
            Codec::H264 => "h264",
            Codec::Opus => "opus",
        }
    }
}

/// A gap between two consecutive frames, in the container's own milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// The last frame before the gap.
    pub from_ms: i64,
    /// The first frame after the gap.
    pub to_ms: i64,
}

/// A region of a file that could not be read, and the time it took with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Damage {
    /// The last good element before the damage, and where reading resumed (file offsets).
    pub from_byte: u64,
    pub to_byte: u64,
    pub reason: String,
    /// The last frame read before the damage and the first after it (container ms; never
    /// backwards: a frame before the damage with a later time than the first after it is
    /// taken for part of the damage); what lies between is lost.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = |ms: Option<i64>| {
            ms.map_or("?".into(), |ms| crate::timeline::ArchiveMs(ms).to_string())
        };
        write!(
            f,
            "unreadable from byte {} to {} ({}): frames between {} and {} lost; reading resumed at byte {}",
            self.from_byte,
            self.to_byte,
            self.reason,
            t(self.from_ms),
            t(self.to_ms),
            self.to_byte
        )
    }
}

/// A picture size that holds from `at_ms` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Resolution {
    pub at_ms: i64,
    pub width: u32,
    pub height: u32,
}

/// One track of a container.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackReport {
    pub number: u64,
    pub kind: TrackKind,
    pub codec: Codec,
    pub codec_id: String,
    /// The first picture size (video).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Every later change of picture size (video).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resolution_changes: Vec<Resolution>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<u64>,
    /// Opus: samples (at 48 kHz) the decoder drops at the start (OpusHead pre-skip); decoded
    /// audio starts this much after the first packet's timestamp.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_skip: Option<u32>,
    /// The container's CodecDelay (ns): each block presents this much before its timestamp
    /// (Firefox writes the Opus pre-skip here and stamps blocks at their decoded start).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codec_delay_ns: Option<u64>,
    /// The codec's configuration (avcC, OpusHead), for remuxing.
    #[serde(skip)]
    pub codec_private: Option<Vec<u8>>,
    /// First and last presentation time, container ms; `None` for a track without frames.
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
    pub frames: u64,
    pub keyframes: u64,
    /// Key frames a decoder can start on, by their bitstream (0 with frames: the track
    /// cannot be decoded at all).
    pub decodable_keyframes: u64,
    /// Frames whose timestamp went backwards (beyond decode-order reordering).
    #[serde(skip_serializing_if = "is_zero")]
    pub backwards_timestamps: u64,
    pub gaps: Vec<Gap>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Nanoseconds to whole milliseconds, rounding down (so -0.5 ms is -1 ms).
pub(crate) fn ns_to_ms(ns: i64) -> i64 {
    ns.div_euclid(1_000_000)
}

impl TrackReport {
    /// A video track with frames, none of them a key frame a decoder could start on.
    pub fn undecodable(&self) -> bool {
        self.kind == TrackKind::Video && self.frames > 0 && self.decodable_keyframes == 0
    }

    #[allow(clippy::too_many_arguments)]
    fn from_scan(
        number: u64,
        kind: TrackKind,
        codec: Codec,
        codec_id: String,
        sample_rate: Option<f64>,
        channels: Option<u64>,
        pre_skip: Option<u32>,
        codec_delay_ns: Option<u64>,
        codec_private: Option<Vec<u8>>,
        scan: &TrackScan,
    ) -> TrackReport {
        TrackReport {
            number,
            kind,
            codec,
            codec_id,
            width: scan.initial_size.map(|d| d.width),
            height: scan.initial_size.map(|d| d.height),
            resolution_changes: scan
                .size_changes
                .iter()
                .map(|c| Resolution {
                    at_ms: ns_to_ms(c.at),
                    width: c.size.width,
                    height: c.size.height,
                })
                .collect(),
            sample_rate,
            channels,
            pre_skip,
            codec_delay_ns,
            codec_private,
            first_ms: scan.first.map(ns_to_ms),
            last_ms: scan.last().map(ns_to_ms),
            frames: scan.frames,
            keyframes: scan.keyframes,
            decodable_keyframes: scan.decodable_keyframes,
            backwards_timestamps: scan.backwards,
            gaps: scan
                .gaps
                .iter()
                .map(|g| Gap {
                    from_ms: ns_to_ms(g.from),
                    to_ms: ns_to_ms(g.to),
                })
                .collect(),
        }
    }
}

/// What one container holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerReport {
    /// The EBML DocType: `webm` or `matroska`.
    pub container: String,
    pub has_duration: bool,
    pub has_cues: bool,
    /// Why reading stopped early, when the file is truncated or damaged at its tail.
    pub truncated: Option<String>,
    /// Damaged regions reading skipped, resuming at the next Cluster.
    pub damage: Vec<Damage>,
    pub bytes_read: u64,
    /// When the file says it was recorded (the Segment's `DateUTC`), as Unix ms.
    pub date_utc_ms: Option<i64>,
    pub tracks: Vec<TrackReport>,
    /// Where each cluster begins and what it holds (for starting in the middle; not
    /// reported).
    #[serde(skip)]
    pub clusters: clusters::ClusterIndex,
}

impl ContainerReport {
    /// From the earliest first frame to the latest last frame of any track, in ms.
    pub fn duration_ms(&self) -> Option<i64> {
        let first = self.tracks.iter().filter_map(|t| t.first_ms).min()?;
        let last = self.tracks.iter().filter_map(|t| t.last_ms).max()?;
        Some(last - first)
    }

    pub fn track(&self, kind: TrackKind) -> Option<&TrackReport> {
        self.tracks.iter().find(|t| t.kind == kind)
    }
}

/// Scans one container from any reader.
pub fn inspect_container<R: Read>(
    source: R,
    filename: &str,
    opts: &InspectOptions,
) -> Result<ContainerReport> {
    matroska::scan(source, filename, opts)
}

/// The archive as a whole: the `mosaic inspect --json` contract.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArchiveReport {
    pub archive: ArchiveInfo,
    /// `[first_start_ms, last_stop_ms]` on the archive timeline; `null` without streams.
    pub span_ms: Option<[i64; 2]>,
    pub streams: Vec<StreamReport>,
    pub warnings: Vec<String>,
    /// Files placed by a fallback (a missing first-frame or start time); also in
    /// `warnings`. `--strict` refuses a recording with any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<String>,
}

impl ArchiveReport {
    /// Every file with damage or a truncated tail, and what is wrong with it.
    pub fn damaged_files(&self) -> Vec<(&str, String)> {
        self.streams
            .iter()
            .flat_map(|s| &s.segments)
            .filter_map(|seg| {
                let mut what: Vec<String> = seg.damage.iter().map(ToString::to_string).collect();
                what.extend(seg.truncated.iter().map(|t| format!("truncated: {t}")));
                if seg.tracks.iter().any(TrackReport::undecodable) {
                    what.push("no frame of its video can be decoded".into());
                }
                (!what.is_empty()).then(|| (seg.filename.as_str(), what.join("; ")))
            })
            .collect()
    }

    /// The inspection of one file, by name.
    pub fn segment(&self, filename: &str) -> Option<&SegmentReport> {
        self.streams
            .iter()
            .flat_map(|s| &s.segments)
            .find(|seg| seg.filename == filename)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArchiveInfo {
    /// The platform: `opentok`, `liveswitch` or `enablex`.
    pub source: SourceKind,
    pub id: String,
    pub name: Option<String>,
    pub created_at_ms: i64,
    /// What the timeline was read from: the manifest's name (OpenTok), the recording logs
    /// or the event (LiveSwitch), the notification (EnableX).
    pub manifest: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamReport {
    pub stream_id: String,
    pub label: String,
    pub video_type: VideoType,
    pub start_ms: i64,
    pub stop_ms: i64,
    /// Merged `[start, stop]` intervals during which the stream is on the timeline.
    pub presence_ms: Vec<[i64; 2]>,
    pub segments: Vec<SegmentReport>,
    /// With `--speech`: when this participant spoke, on the timeline (see [`crate::speech`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speech: Option<Vec<crate::speech::Span>>,
    /// With `--speech`: the total of `speech`, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub talk_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentReport {
    /// 1-based position in the stream, in timeline order.
    pub index: usize,
    /// The `_N` of the file name, when it has one.
    pub file_index: Option<u32>,
    pub filename: String,
    /// Which of the segment's media the file carries: `audio_video`, `audio` or `video`.
    pub media: SourceMedia,
    pub size: u64,
    pub start_ms: i64,
    pub stop_ms: i64,
    /// Where the file's time 0 sits on the timeline.
    pub offset_ms: i64,
    pub container: String,
    pub has_duration: bool,
    pub has_cues: bool,
    pub truncated: Option<String>,
    /// Regions that could not be read; reading resumed after each.
    pub damage: Vec<Damage>,
    /// The container's own duration (first to last frame of any track).
    pub duration_ms: Option<i64>,
    pub tracks: Vec<TrackReport>,
    /// Where each cluster begins and what it holds (for starting in the middle; not
    /// reported).
    #[serde(skip)]
    pub clusters: clusters::ClusterIndex,
}

impl SegmentReport {
    /// The first track of `kind`.
    pub fn track(&self, kind: TrackKind) -> Option<&TrackReport> {
        self.tracks.iter().find(|t| t.kind == kind)
    }
}

/// Opens the input at `path` (any source mosaic reads; it must hold one recording) and
/// inspects every container in it.
pub fn inspect_archive(path: impl AsRef<Path>, opts: &InspectOptions) -> Result<ArchiveReport> {
    let mut recording = source::open_one(path.as_ref(), &SourceOptions::default())?;
    inspect_recording(&mut recording, opts)
}

/// Inspects every container of a recording. Sources placed by their first frame
/// (LiveSwitch) are moved to their file's time 0 on the recording's timeline, which the
/// recording keeps for compose and repair.
pub fn inspect_recording(
    recording: &mut Recording,
    opts: &InspectOptions,
) -> Result<ArchiveReport> {
    let mut warnings: Vec<String> = recording.warnings.clone();
    warnings.extend(recording.timeline.warnings.iter().map(ToString::to_string));

    // Every file once.
    let mut containers: Vec<(String, u64, ContainerReport)> = Vec::new();
    let names: Vec<String> = recording
        .timeline
        .streams
        .iter()
        .flat_map(|s| &s.segments)
        .flat_map(|seg| &seg.sources)
        .map(|src| src.filename.clone())
        .collect();
    for name in names {
        if containers.iter().any(|(n, _, _)| *n == name) {
            continue;
        }
        let size = recording.media.size(&name).unwrap_or(0);
        let report = inspect_container(recording.media.open(&name)?, &name, opts)?;
        if let Some(why) = &report.truncated {
            warnings.push(format!(
                "{name}: truncated: {why}; inspected what was readable"
            ));
        }
        for d in &report.damage {
            warnings.push(format!("{name}: damaged: {d}"));
        }
        for t in report.tracks.iter().filter(|t| t.undecodable()) {
            warnings.push(format!(
                "{name}: no frame of its video can be decoded ({} frames, none a {} key frame a \
                 decoder can start on); its placeholder shows instead",
                t.frames,
                t.codec.as_str()
            ));
        }
        containers.push((name, size, report));
    }
    let container = |name: &str| {
        containers
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, size, report)| (*size, report))
    };
    recording.timeline.anchor_first_frames(|name, media| {
        let (_, report) = container(name)?;
        report
            .tracks
            .iter()
            .filter(|t| match media {
                SourceMedia::Audio => t.kind == TrackKind::Audio,
                SourceMedia::Video => t.kind == TrackKind::Video,
                SourceMedia::AudioVideo => true,
            })
            .filter_map(|t| t.first_ms)
            .min()
    });
    let timeline = &recording.timeline;

    let mut streams = Vec::with_capacity(timeline.streams.len());
    for stream in &timeline.streams {
        let mut segments = Vec::with_capacity(stream.segments.len());
        for seg in &stream.segments {
            for src in &seg.sources {
                let Some((size, report)) = container(&src.filename) else {
                    continue;
                };
                segments.push(SegmentReport {
                    index: seg.index,
                    file_index: seg.file_index,
                    filename: src.filename.clone(),
                    media: src.media,
                    size,
                    start_ms: seg.start.0,
                    stop_ms: seg.stop.0,
                    offset_ms: src.start.0,
                    container: report.container.clone(),
                    has_duration: report.has_duration,
                    has_cues: report.has_cues,
                    truncated: report.truncated.clone(),
                    damage: report.damage.clone(),
                    duration_ms: report.duration_ms(),
                    tracks: report.tracks.clone(),
                    clusters: report.clusters.clone(),
                });
            }
        }
        streams.push(StreamReport {
            stream_id: stream.id.clone(),
            label: stream.label.clone(),
            video_type: stream.video_type.clone(),
            start_ms: stream.start().0,
            stop_ms: stream.stop().0,
            presence_ms: stream
                .presence()
                .iter()
                .map(|i| [i.start.0, i.stop.0])
                .collect(),
            segments,
            speech: None,
            talk_ms: None,
        });
    }
    warnings.extend(
        timeline
            .duration_warnings(|name| {
                let (_, report) = container(name)?;
                let first = report.tracks.iter().filter_map(|t| t.first_ms).min()?;
                let last = report.tracks.iter().filter_map(|t| t.last_ms).max()?;
                Some((first, last))
            })
            .iter()
            .map(ToString::to_string),
    );

    Ok(ArchiveReport {
        archive: ArchiveInfo {
            source: recording.kind,
            id: timeline.archive_id.clone(),
            name: timeline.archive_name.clone(),
            created_at_ms: timeline.created_at_ms,
            manifest: recording.described_by.clone(),
        },
        span_ms: timeline.span().map(|s| [s.start.0, s.stop.0]),
        streams,
        warnings,
        fallbacks: timeline
            .warnings
            .iter()
            .filter(|w| matches!(w, crate::timeline::TimelineWarning::Fallback { .. }))
            .map(ToString::to_string)
            .collect(),
    })
}
