//! Streaming scan of one Matroska/WebM container (the edge that reads bytes).
//!
//! Reads tags one at a time with `webm-iterable`, never holding more than one block (or
//! block group) in memory, and copes with what live capture writes: clusters of unknown
//! size, no `Duration`, no `Cues`, a truncated tail (reported, what was read is kept),
//! negative timestamps, laced blocks, block groups, and H.264 in decode order.

use std::io::Read;

use webm_iterable::WebmIterator;
use webm_iterable::errors::TagIteratorError;
use webm_iterable::matroska_spec::{Master, MatroskaSpec};

use super::bitstream::{self, Dimensions};
use super::block;
use super::clusters::ClusterIndex;
use super::resync::Tap;
use super::track::TrackScan;
use super::{Codec, ContainerReport, Damage, InspectOptions, TrackKind, TrackReport, ns_to_ms};
use crate::error::{Error, Result};

/// No frame of a call recording comes near this; a larger tag is damage (or hostility) and
/// must not make us allocate.
const MAX_TAG_SIZE: usize = 64 << 20;

/// A track as its header describes it, and what we have read of it so far.
struct Track {
    number: u64,
    kind: TrackKind,
    codec: Codec,
    codec_id: String,
    sample_rate: Option<f64>,
    channels: Option<u64>,
    /// H.264 NAL length size (from avcC).
    nal_length_size: usize,
    /// Opus pre-skip from the OpusHead in CodecPrivate.
    pre_skip: Option<u32>,
    /// CodecDelay (ns): to subtract from every block's time to present it.
    codec_delay_ns: Option<u64>,
    codec_private: Option<Vec<u8>>,
    scan: TrackScan,
}

/// One frame of a container, in presentation time of the container's own clock.
#[derive(Debug, Clone, Copy)]
pub struct FrameRef<'a> {
    pub track: u64,
    pub kind: TrackKind,
    pub pts_ns: i64,
    /// Known for Opus (from the packet's TOC).
    pub duration_ns: Option<i64>,
    pub keyframe: bool,
    pub data: &'a [u8],
}

/// Scans one container. `filename` is only used in messages.
pub fn scan<R: Read>(source: R, filename: &str, opts: &InspectOptions) -> Result<ContainerReport> {
    scan_frames(source, filename, opts, &mut |_| Ok(()))
}

/// Scans one container and hands every frame, in storage order, to `on_frame`.
///
/// Damage in the middle of the file (an element that cannot be read, a block that makes no
/// sense) is skipped: reading resumes at the next trustworthy Cluster, and the skipped region
/// is reported in [`ContainerReport::damage`]. Only damage with nothing readable after it
/// is `truncated`.
pub fn scan_frames<R: Read>(
    source: R,
    filename: &str,
    opts: &InspectOptions,
    on_frame: &mut dyn FnMut(FrameRef<'_>) -> Result<()>,
) -> Result<ContainerReport> {
    let mut tap = Tap::new(source);
    let mut scan = Scan::new(filename, opts);
    loop {
        let start = tap.position();
        scan.run_start = start;
        let mut tags = WebmIterator::new(
            &mut tap,
            &[
                MatroskaSpec::TrackEntry(Master::Start),
                MatroskaSpec::BlockGroup(Master::Start),
            ],
        );
        tags.set_max_allowable_tag_size(Some(MAX_TAG_SIZE));
        let Some(stop) = scan.run(&mut tags, on_frame)? else {
            break;
        };
        drop(tags);
        let at = start + stop.at;
        if stop.at_end {
            scan.truncated = Some(stop.reason);
            break;
        }
        match tap.seek_cluster(at + 1).map_err(|e| corrupt(filename, e))? {
            // Damage again before any frame was read: the same damaged region, longer.
            Some(resume) if scan.damage.last().is_some_and(|d| d.to_ms.is_none()) => {
                if let Some(d) = scan.damage.last_mut() {
                    d.to_byte = resume;
                }
            }
            Some(resume) => scan.damage.push(Damage {
                from_byte: at,
                to_byte: resume,
                reason: stop.reason,
                from_ms: scan.last_ns.map(ns_to_ms),
                to_ms: None,
            }),
            None => {
                scan.truncated = Some(format!(
                    "{} (nothing readable after byte {at})",
                    stop.reason
                ));
                break;
            }
        }
    }
    let bytes_read = tap.position();
    Ok(scan.finish(bytes_read))
}

/// Where and why one run of the tag reader stopped before the end.
struct Stop {
    /// Offset of the last good element, from where the run started.
    at: u64,
    reason: String,
    /// The file ends inside an element: nothing follows.
    at_end: bool,
}

/// What the scan has learnt so far, across runs of the tag reader.
struct Scan<'o> {
    filename: &'o str,
    opts: &'o InspectOptions,
    doc_type: Option<String>,
    timestamp_scale: i64,
    has_duration: bool,
    has_cues: bool,
    date_utc_ms: Option<i64>,
    tracks: Vec<Track>,
    tracks_seen: bool,
    cluster_ts: i64,
    first_tag: bool,
    truncated: Option<String>,
    damage: Vec<Damage>,
    /// The latest frame time read, ns.
    last_ns: Option<i64>,
    /// Offset in the file where the current run of the tag reader started.
    run_start: u64,
    clusters: ClusterIndex,
}

impl<'o> Scan<'o> {
    fn new(filename: &'o str, opts: &'o InspectOptions) -> Scan<'o> {
        Scan {
            filename,
            opts,
            doc_type: None,
            timestamp_scale: 1_000_000,
            has_duration: false,
            has_cues: false,
            date_utc_ms: None,
            tracks: Vec::new(),
            tracks_seen: false,
            cluster_ts: 0,
            first_tag: true,
            truncated: None,
            damage: Vec::new(),
            last_ns: None,
            run_start: 0,
            clusters: ClusterIndex::default(),
        }
    }

    fn not_matroska(&self, reason: String) -> Error {
        Error::NotMatroska {
            filename: self.filename.to_owned(),
            reason,
        }
    }

    /// Reads tags until the end (`None`) or damage (`Some`). Damage before the tracks are
    /// known means this is no Matroska file mosaic can read.
    fn run<R: Read>(
        &mut self,
        tags: &mut WebmIterator<R>,
        on_frame: &mut dyn FnMut(FrameRef<'_>) -> Result<()>,
    ) -> Result<Option<Stop>> {
        while let Some(item) = tags.next() {
            let tag = match item {
                Ok(tag) => tag,
                Err(e) => {
                    if !self.tracks_seen {
                        return Err(self.not_matroska(describe(&e)));
                    }
                    let at = tags.last_emitted_tag_offset() as u64;
                    return Ok(Some(match e {
                        TagIteratorError::UnexpectedEOF { tag_start, .. } => Stop {
                            at,
                            reason: format!(
                                "file ends inside an element that starts at byte {tag_start}"
                            ),
                            at_end: true,
                        },
                        other => Stop {
                            at,
                            reason: describe(&other),
                            at_end: false,
                        },
                    }));
                }
            };
            if self.first_tag {
                if !matches!(tag, MatroskaSpec::Ebml(_)) {
                    return Err(self.not_matroska("does not start with an EBML header".into()));
                }
                self.first_tag = false;
            }
            if matches!(tag, MatroskaSpec::Cluster(Master::Start)) {
                let at = self.run_start + tags.last_emitted_tag_offset() as u64;
                self.clusters.start(at);
            }
            if let Err(reason) = self.tag(tag, on_frame)? {
                let at = tags.last_emitted_tag_offset() as u64;
                return Ok(Some(Stop {
                    at,
                    reason: format!("a damaged block: {reason}"),
                    at_end: false,
                }));
            }
        }
        if self.first_tag {
            return Err(self.not_matroska("the file is empty".into()));
        }
        if !self.tracks_seen {
            return Err(self.not_matroska("no Tracks element".into()));
        }
        Ok(None)
    }

    /// Takes one tag in. The inner `Err` is a block that cannot be read (damage).
    fn tag(
        &mut self,
        tag: MatroskaSpec,
        on_frame: &mut dyn FnMut(FrameRef<'_>) -> Result<()>,
    ) -> Result<std::result::Result<(), block::BlockError>> {
        match tag {
            MatroskaSpec::DocType(t) => self.doc_type = Some(t),
            MatroskaSpec::TimestampScale(v) => {
                self.timestamp_scale = i64::try_from(v)
                    .ok()
                    .filter(|&v| v > 0)
                    .ok_or_else(|| self.not_matroska(format!("invalid TimestampScale {v}")))?;
            }
            MatroskaSpec::Duration(_) => self.has_duration = true,
            MatroskaSpec::DateUTC(ns) => {
                self.date_utc_ms = Some(crate::source::time::matroska_date_to_unix_ms(ns));
            }
            MatroskaSpec::Cues(_) => self.has_cues = true,
            MatroskaSpec::Tracks(Master::End) => self.tracks_seen = true,
            MatroskaSpec::TrackEntry(Master::Full(children)) => {
                if let Some(track) = parse_track(&children, self.filename, self.opts)? {
                    self.tracks.push(track);
                }
            }
            MatroskaSpec::Cluster(Master::Start) => {
                self.tracks_seen = true;
                self.cluster_ts = 0;
            }
            MatroskaSpec::Timestamp(v) => {
                self.cluster_ts = i64::try_from(v).unwrap_or(i64::MAX / 4);
            }
            MatroskaSpec::SimpleBlock(data) => {
                let block = match block::parse(&data) {
                    Ok(b) => b,
                    Err(e) => return Ok(Err(e)),
                };
                let keyframe = block.keyframe;
                if let Err(e) = self.block(&block, keyframe, on_frame)? {
                    return Ok(Err(e));
                }
            }
            MatroskaSpec::BlockGroup(Master::Full(children)) => {
                let keyframe = !children
                    .iter()
                    .any(|c| matches!(c, MatroskaSpec::ReferenceBlock(_)));
                for child in &children {
                    if let MatroskaSpec::Block(data) = child {
                        let block = match block::parse(data) {
                            Ok(b) => b,
                            Err(e) => return Ok(Err(e)),
                        };
                        if let Err(e) = self.block(&block, keyframe, on_frame)? {
                            return Ok(Err(e));
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(Ok(()))
    }

    /// Takes one block's frames in. (The inner `Result` leaves room for blocks that must be
    /// refused as damage; none is today.)
    fn block(
        &mut self,
        block: &block::BlockData<'_>,
        keyframe: bool,
        on_frame: &mut dyn FnMut(FrameRef<'_>) -> Result<()>,
    ) -> Result<std::result::Result<(), block::BlockError>> {
        let time = block_time(self.cluster_ts, block.timestamp, self.timestamp_scale);
        if !self.tracks.iter().any(|t| t.number == block.track) {
            return Ok(Ok(())); // a track we do not follow, or damage that named none
        }
        if let Some(d) = self.damage.last_mut().filter(|d| d.to_ms.is_none()) {
            d.to_ms = Some(ns_to_ms(time));
        }
        self.last_ns = Some(self.last_ns.map_or(time, |l| l.max(time)));
        let stored = add_block(
            &mut self.tracks,
            block.track,
            time,
            keyframe,
            block.frames.iter().copied(),
            on_frame,
        )?;
        if let Some(stored) = stored {
            self.clusters
                .frames(time, stored.last_ns, stored.video_key_ns);
        }
        Ok(Ok(()))
    }

    fn finish(self, bytes_read: u64) -> ContainerReport {
        let tracks = self
            .tracks
            .into_iter()
            .map(|mut t| {
                t.scan.finish();
                TrackReport::from_scan(
                    t.number,
                    t.kind,
                    t.codec,
                    t.codec_id,
                    t.sample_rate,
                    t.channels,
                    t.pre_skip,
                    t.codec_delay_ns,
                    t.codec_private,
                    &t.scan,
                )
            })
            .collect();
        ContainerReport {
            container: self.doc_type.unwrap_or_else(|| "matroska".into()),
            has_duration: self.has_duration,
            has_cues: self.has_cues,
            truncated: self.truncated,
            damage: self.damage,
            bytes_read,
            date_utc_ms: self.date_utc_ms,
            tracks,
            clusters: self.clusters,
        }
    }
}

/// A block's time in ns: saturating, so absurd cluster timestamps cannot overflow.
fn block_time(cluster_ts: i64, relative: i16, scale: i64) -> i64 {
    cluster_ts
        .saturating_add(i64::from(relative))
        .saturating_mul(scale)
}

fn describe(e: &TagIteratorError) -> String {
    match e {
        TagIteratorError::ReadError { source } => format!("read error: {source}"),
        other => other.to_string(),
    }
}

fn corrupt(filename: &str, e: impl std::fmt::Display) -> Error {
    Error::CorruptMedia {
        filename: filename.to_owned(),
        reason: e.to_string(),
    }
}

/// What one block stored, for the cluster index.
struct Stored {
    /// Where its last frame ends (where it starts, for video).
    last_ns: i64,
    /// The time of its first video frame a decoder can start on.
    video_key_ns: Option<i64>,
}

/// Feeds one block's frames to its track. Laced audio frames follow each other by their
/// own durations. `None` for a block of a track mosaic does not follow.
fn add_block<'a>(
    tracks: &mut [Track],
    number: u64,
    block_time: i64,
    container_keyframe: bool,
    frames: impl Iterator<Item = &'a [u8]>,
    on_frame: &mut dyn FnMut(FrameRef<'_>) -> Result<()>,
) -> Result<Option<Stored>> {
    let Some(track) = tracks.iter_mut().find(|t| t.number == number) else {
        return Ok(None); // a block for a track we do not follow (subtitles, or an undeclared track)
    };
    let mut time = block_time;
    let mut stored = Stored {
        last_ns: block_time,
        video_key_ns: None,
    };
    for frame in frames {
        let (keyframe, size, decodable) = match track.codec {
            Codec::Vp8 => {
                let size = bitstream::vp8_keyframe_dimensions(frame);
                (container_keyframe || size.is_some(), size, size.is_some())
            }
            Codec::H264 => h264_frame_facts(frame, track.nal_length_size, container_keyframe),
            _ => (container_keyframe, None, container_keyframe),
        };
        if decodable {
            track.scan.decodable_keyframes += 1;
            if track.kind == TrackKind::Video && stored.video_key_ns.is_none() {
                stored.video_key_ns = Some(time);
            }
        }
        let duration = (track.codec == Codec::Opus).then(|| {
            let samples = bitstream::opus_packet_samples(frame).unwrap_or(960);
            i64::from(samples) * 1_000_000_000 / 48_000
        });
        track.scan.push(time, duration, keyframe, size);
        on_frame(FrameRef {
            track: number,
            kind: track.kind,
            pts_ns: time,
            duration_ns: duration,
            keyframe,
            data: frame,
        })?;
        time += duration.unwrap_or(0);
        stored.last_ns = time;
    }
    Ok(Some(stored))
}

/// Key frame (an IDR slice) and picture size (from an in-band SPS) of one H.264 access unit.
/// (key frame by the container or the bitstream, the picture size an in-band SPS declares,
/// whether the frame holds an IDR picture).
fn h264_frame_facts(
    frame: &[u8],
    nal_length_size: usize,
    container_keyframe: bool,
) -> (bool, Option<Dimensions>, bool) {
    let mut idr = false;
    let mut size = None;
    for nal in bitstream::avc_nal_units(frame, nal_length_size) {
        match bitstream::h264_nal_type(nal) {
            Some(5) => idr = true,
            Some(7) => size = size.or_else(|| bitstream::h264_sps_dimensions(nal)),
            _ => {}
        }
    }
    (container_keyframe || idr, size, idr)
}

/// Reads a TrackEntry; `None` for track types mosaic does not follow (subtitles, …).
fn parse_track(
    children: &[MatroskaSpec],
    filename: &str,
    opts: &InspectOptions,
) -> Result<Option<Track>> {
    let mut number = None;
    let mut track_type = None;
    let mut codec_id = None;
    let mut codec_private: Option<&[u8]> = None;
    let mut codec_delay_ns = None;
    let (mut width, mut height) = (None, None);
    let (mut sample_rate, mut channels) = (None, None);
    for child in children {
        match child {
            MatroskaSpec::TrackNumber(n) => number = Some(*n),
            MatroskaSpec::TrackType(t) => track_type = Some(*t),
            // EBML strings may be padded with NULs (matroskamux writes "V_MPEG4/ISO/AVC\0").
            MatroskaSpec::CodecID(c) => codec_id = Some(c.trim_end_matches('\0').to_owned()),
            MatroskaSpec::CodecPrivate(p) => codec_private = Some(p.as_slice()),
            MatroskaSpec::CodecDelay(d) => codec_delay_ns = Some(*d),
            MatroskaSpec::Video(Master::Full(v)) => {
                for c in v {
                    match c {
                        MatroskaSpec::PixelWidth(w) => width = u32::try_from(*w).ok(),
                        MatroskaSpec::PixelHeight(h) => height = u32::try_from(*h).ok(),
                        _ => {}
                    }
                }
            }
            MatroskaSpec::Audio(Master::Full(a)) => {
                for c in a {
                    match c {
                        MatroskaSpec::SamplingFrequency(f) => sample_rate = Some(*f),
                        MatroskaSpec::Channels(n) => channels = Some(*n),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let corrupt_header = |what: &str| Error::CorruptMedia {
        filename: filename.to_owned(),
        reason: format!("track header without {what}"),
    };
    let number = number.ok_or_else(|| corrupt_header("TrackNumber"))?;
    let codec_id = codec_id.ok_or_else(|| corrupt_header("CodecID"))?;
    let kind = match track_type {
        Some(1) => TrackKind::Video,
        Some(2) => TrackKind::Audio,
        _ => return Ok(None),
    };
    let codec = Codec::from_codec_id(&codec_id).ok_or_else(|| Error::UnsupportedCodec {
        filename: filename.to_owned(),
        track: number,
        codec: codec_id.clone(),
    })?;
    let mut header_size = match (width, height) {
        (Some(width), Some(height)) => Some(Dimensions { width, height }),
        _ => None,
    };
    let mut nal_length_size = 4;
    if codec == Codec::H264
        && let Some(cfg) = codec_private.and_then(bitstream::parse_avcc)
    {
        nal_length_size = cfg.nal_length_size;
        if let Some(size) = cfg
            .sps
            .first()
            .and_then(|s| bitstream::h264_sps_dimensions(s))
        {
            header_size = Some(size);
        }
    }
    // OpusHead: "OpusHead", version, channels, pre-skip (u16 LE), … (RFC 7845 section 5.1).
    let pre_skip = match (codec, codec_private) {
        (Codec::Opus, Some(head)) if head.len() >= 12 && head.starts_with(b"OpusHead") => {
            Some(u32::from(u16::from_le_bytes([head[10], head[11]])))
        }
        _ => None,
    };
    let threshold_ms = match kind {
        TrackKind::Video => opts.video_gap_ms,
        TrackKind::Audio => opts.audio_gap_ms,
    };
    Ok(Some(Track {
        number,
        kind,
        codec,
        codec_id,
        sample_rate: if kind == TrackKind::Audio {
            sample_rate.or(Some(8000.0))
        } else {
            None
        },
        channels: if kind == TrackKind::Audio {
            channels.or(Some(1))
        } else {
            None
        },
        nal_length_size,
        pre_skip,
        codec_delay_ns: codec_delay_ns.filter(|&d| d > 0),
        codec_private: codec_private.map(<[u8]>::to_vec),
        scan: TrackScan::new(
            threshold_ms.saturating_mul(1_000_000),
            codec == Codec::H264,
            header_size,
        ),
    }))
}
