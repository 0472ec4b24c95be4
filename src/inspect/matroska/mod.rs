//! Streaming scan of one Matroska/WebM container (the edge that reads bytes).
//!
//! Reads tags one at a time with `webm-iterable`, never holding more than one block (or
//! block group) in memory, and copes with what live capture writes: clusters of unknown
//! size, no `Duration`, no `Cues`, a truncated tail (reported, what was read is kept),
//! negative timestamps, laced blocks, block groups, and H.264 in decode order.

use std::io::Read;

use webm_iterable::WebmIterator;
use webm_iterable::errors::TagIteratorError;
use webm_iterable::matroska_spec::{EbmlTag, Master, MatroskaSpec};

use super::bitstream::{self, Dimensions};
use super::block;
use super::clusters::ClusterIndex;
use super::resync::{self, Tap};
use super::track::TrackScan;
use super::{Codec, ContainerReport, Damage, InspectOptions, TrackKind, TrackReport};
use crate::error::{Error, Result};

mod doubts;
mod track_entry;
use doubts::{Held, Judged, MAX_HELD, SUSPECT_JUMP_NS, Suspect};
use track_entry::parse_track;

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
        scan.last_tag = LastTag::None;
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
        // What a held cluster holds counts as read, and so do suspects: the damage comes
        // after them.
        scan.release_held(on_frame)?;
        scan.release_suspects(on_frame)?;
        let at = start + stop.at;
        // The damage begins where the last good element ends, but for a block: a block
        // whose size lies is read whole and only the next read fails, so the last block is
        // part of the damage.
        let from = match scan.last_tag {
            LastTag::None | LastTag::Block => at,
            LastTag::Header => tap.element_end(at, true).unwrap_or(at),
            LastTag::Whole => tap.element_end(at, false).unwrap_or(at),
        };
        let ctx = scan.resync_context();
        // An element that runs past the end may be one whose size lies: the file is only
        // truncated when nothing readable follows.
        match tap
            .resync(from.max(at + 1), &ctx)
            .map_err(|e| corrupt(filename, e))?
        {
            // Damage again before any frame was read: the same damaged region, longer.
            Some(resume) if scan.damage.last().is_some_and(|d| d.to_ms.is_none()) => {
                if let Some(d) = scan.damage.last_mut() {
                    d.to_byte = resume.offset();
                }
                scan.resumed(resume);
            }
            Some(resume) => {
                scan.damaged(from.min(resume.offset()), resume.offset(), stop.reason);
                scan.resumed(resume);
            }
            None if stop.at_end => {
                scan.truncated = Some(stop.reason);
                break;
            }
            None => {
                scan.truncated = Some(format!(
                    "{} (nothing readable after byte {at})",
                    stop.reason
                ));
                break;
            }
        }
    }
    scan.release_held(on_frame)?;
    scan.release_suspects(on_frame)?;
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
    /// Offset in the file where the current run of the tag reader started.
    run_start: u64,
    clusters: ClusterIndex,
    /// The times (ns) of the last frames read, for a damaged region's start (see
    /// [`Damage::from_ms`]).
    recent_ns: Recent,
    /// The frame times before the damaged region whose end is not known yet.
    before_damage: Vec<i64>,
    /// The timestamp of the last cluster whose frames were taken, ns, and the offset of the
    /// current cluster.
    last_cluster_ns: Option<i64>,
    cluster_byte: u64,
    /// A cluster whose Timestamp jumps, held until the next one tells whether it is damaged.
    held: Option<Held>,
    /// Where the tag being taken in starts.
    tag_byte: u64,
    /// What the last tag read in this run of the tag reader was.
    last_tag: LastTag,
    /// Per track, the time of its last frame taken in (ns).
    track_last_ns: Vec<(u64, i64)>,
    /// Blocks whose time jumps ahead of their track's, each held until the track's next
    /// block says whether the jump is real (a mute) or the block's time is damaged.
    suspects: Vec<Suspect>,
}

/// The last tag the tag reader gave, for where damage after it begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LastTag {
    /// None yet in this run.
    None,
    /// A block or block group.
    Block,
    /// A master element's start: its header was read (the reader points at its start).
    Header,
    /// A whole element: any other, or a master's end (the reader points at the master's
    /// start then).
    Whole,
}

/// How many recent frame times are kept.
const RECENT: usize = 64;

/// The times (ns) of the last [`RECENT`] frames read, in no particular order: a ring, so
/// that keeping them costs a store per block.
#[derive(Default)]
struct Recent {
    times: Vec<i64>,
    next: usize,
}

impl Recent {
    fn push(&mut self, time: i64) {
        if self.times.len() < RECENT {
            self.times.push(time);
        } else {
            self.times[self.next] = time;
            self.next = (self.next + 1) % RECENT;
        }
    }

    fn times(&self) -> &[i64] {
        &self.times
    }

    /// The latest of them (asked once a cluster, and at damage).
    fn max(&self) -> Option<i64> {
        self.times.iter().copied().max()
    }
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
            run_start: 0,
            clusters: ClusterIndex::default(),
            recent_ns: Recent::default(),
            before_damage: Vec::new(),
            last_cluster_ns: None,
            cluster_byte: 0,
            held: None,
            tag_byte: 0,
            last_tag: LastTag::None,
            track_last_ns: Vec::new(),
            suspects: Vec::new(),
        }
    }

    /// The time of `track`'s last frame taken in.
    fn track_last(&self, track: u64) -> Option<i64> {
        self.track_last_ns
            .iter()
            .find(|(t, _)| *t == track)
            .map(|&(_, ns)| ns)
    }

    /// What the search for the next block must know.
    fn resync_context(&self) -> resync::Context {
        resync::Context {
            tracks: self
                .tracks
                .iter()
                .map(|t| (t.number, self.relative_floor(t.number)))
                .collect(),
        }
    }

    /// `track`'s last frame time relative to the current cluster, as a block gives its time
    /// (a block found after damage must not come more than a second before it).
    fn relative_floor(&self, track: u64) -> Option<i16> {
        let floor =
            (self.track_last(track)? / self.timestamp_scale).saturating_sub(self.cluster_ts);
        Some(floor.clamp(i64::from(i16::MIN), i64::from(i16::MAX)) as i16)
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
            let tag_byte = self.run_start + tags.last_emitted_tag_offset() as u64;
            self.tag_byte = tag_byte;
            self.last_tag = match (&tag, tag.as_master()) {
                (MatroskaSpec::SimpleBlock(_) | MatroskaSpec::BlockGroup(_), _) => LastTag::Block,
                (_, Some(Master::Start)) => LastTag::Header,
                _ => LastTag::Whole,
            };
            for s in self.suspects.iter_mut().filter(|s| s.end.is_none()) {
                s.end = Some(tag_byte);
            }
            if matches!(tag, MatroskaSpec::Cluster(Master::Start)) {
                self.clusters.start(tag_byte);
                self.cluster_byte = tag_byte;
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
                let ns = self.cluster_ts.saturating_mul(self.timestamp_scale);
                self.cluster_timestamp(ns, on_frame)?;
            }
            MatroskaSpec::SimpleBlock(data) => {
                let block = match block::parse(&data) {
                    Ok(b) => b,
                    Err(e) => return Ok(Err(e)),
                };
                let keyframe = block.keyframe;
                if let Err(e) = self.block(&block, &data, keyframe, on_frame)? {
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
                        if let Err(e) = self.block(&block, data, keyframe, on_frame)? {
                            return Ok(Err(e));
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(Ok(()))
    }

    /// Takes one block in, or holds it with its cluster (see [`Held`]). A block far before
    /// the ones just read in its cluster is damage.
    fn block(
        &mut self,
        block: &block::BlockData<'_>,
        data: &[u8],
        keyframe: bool,
        on_frame: &mut dyn FnMut(FrameRef<'_>) -> Result<()>,
    ) -> Result<std::result::Result<(), block::BlockError>> {
        if !self.tracks.iter().any(|t| t.number == block.track) {
            return Ok(Ok(())); // a track we do not follow, or damage that named none
        }
        let time = block_time(self.cluster_ts, block.timestamp, self.timestamp_scale);
        if self.held.is_none() {
            if self.judge_suspect(block.track, time, data, keyframe, on_frame)? == Judged::Held {
                return Ok(Ok(()));
            }
            if self
                .track_last(block.track)
                .is_some_and(|last| time > last.saturating_add(SUSPECT_JUMP_NS))
            {
                self.suspects.push(Suspect {
                    track: block.track,
                    time_ns: time,
                    byte: self.tag_byte,
                    end: None,
                    cluster_ts: self.cluster_ts,
                    cluster_byte: self.cluster_byte,
                    data: data.to_vec(),
                    keyframe,
                    followers: Vec::new(),
                });
                return Ok(Ok(()));
            }
        }
        if let Some(held) = &mut self.held {
            if held.bytes + data.len() <= MAX_HELD {
                held.bytes += data.len();
                held.blocks.push((data.to_vec(), keyframe));
                return Ok(Ok(()));
            }
            // Too much to hold: the cluster is taken as it is.
            let held = self.held.take();
            if let Some(held) = held {
                self.release(held, on_frame)?;
            }
        }
        self.block_in(block, keyframe, None, on_frame)
    }

    /// Takes one block's frames in (`cluster`: the held cluster they belong to).
    fn block_in(
        &mut self,
        block: &block::BlockData<'_>,
        keyframe: bool,
        cluster: Option<u64>,
        on_frame: &mut dyn FnMut(FrameRef<'_>) -> Result<()>,
    ) -> Result<std::result::Result<(), block::BlockError>> {
        let time = block_time(self.cluster_ts, block.timestamp, self.timestamp_scale);
        self.close_damage(time);
        match self
            .track_last_ns
            .iter_mut()
            .find(|(t, _)| *t == block.track)
        {
            Some((_, last)) => *last = (*last).max(time),
            None => self.track_last_ns.push((block.track, time)),
        }
        self.recent_ns.push(time);
        let stored = add_block(
            &mut self.tracks,
            block.track,
            time,
            keyframe,
            block.frames.iter().copied(),
            on_frame,
        )?;
        if let Some(stored) = stored {
            match cluster {
                Some(byte) => {
                    self.clusters
                        .frames_in(byte, time, stored.last_ns, stored.video_key_ns)
                }
                None => self
                    .clusters
                    .frames(time, stored.last_ns, stored.video_key_ns),
            }
        }
        Ok(Ok(()))
    }

    fn finish(mut self, bytes_read: u64) -> ContainerReport {
        self.damage.sort_by_key(|d| d.from_byte);
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
        time = time.saturating_add(duration.unwrap_or(0));
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
