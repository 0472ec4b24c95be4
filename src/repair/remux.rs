//! Writing a standalone, seekable Matroska/WebM file from copied packets (the edge that
//! writes containers).
//!
//! Unlike a live capture, the file has a known-size Segment, a `Duration`, a `SeekHead` and
//! `Cues` (one per cluster, each cluster starting at a video key frame when there is video).
//! Elements are serialised with `webm-iterable`; the few values only known at the end (the
//! segment's size, the duration, where the cues are) are patched in place.

use std::io::{Seek, SeekFrom, Write};

use webm_iterable::matroska_spec::{Master, MatroskaSpec, SimpleBlock};
use webm_iterable::{WebmWriter, WriteOptions};

use crate::error::{Error, Result};
use crate::inspect::TrackKind;

/// A track of the output.
#[derive(Debug, Clone)]
pub struct OutTrack {
    pub number: u64,
    pub kind: TrackKind,
    pub codec_id: String,
    pub codec_private: Option<Vec<u8>>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub sample_rate: Option<f64>,
    pub channels: Option<u64>,
    /// Opus: the encoder priming to drop at the start, in ns (the OpusHead pre-skip).
    /// GStreamer takes it from here, ffmpeg from the OpusHead; both must agree.
    pub codec_delay_ns: Option<u64>,
}

/// The EBML header of a Matroska (`matroska`) or WebM (`webm`) file.
pub fn ebml_header(doc_type: &str) -> MatroskaSpec {
    MatroskaSpec::Ebml(Master::Full(vec![
        MatroskaSpec::EbmlVersion(1),
        MatroskaSpec::EbmlReadVersion(1),
        MatroskaSpec::EbmlMaxIdLength(4),
        MatroskaSpec::EbmlMaxSizeLength(8),
        MatroskaSpec::DocType(doc_type.to_owned()),
        MatroskaSpec::DocTypeVersion(4),
        MatroskaSpec::DocTypeReadVersion(2),
    ]))
}

impl OutTrack {
    /// The track's TrackEntry element.
    pub fn entry(&self) -> MatroskaSpec {
        let mut c = vec![
            MatroskaSpec::TrackNumber(self.number),
            MatroskaSpec::TrackUID(self.number),
            MatroskaSpec::CodecID(self.codec_id.clone()),
        ];
        if let Some(p) = &self.codec_private {
            c.push(MatroskaSpec::CodecPrivate(p.clone()));
        }
        match self.kind {
            TrackKind::Video => {
                c.push(MatroskaSpec::TrackType(1));
                if let (Some(wd), Some(ht)) = (self.width, self.height) {
                    c.push(MatroskaSpec::Video(Master::Full(vec![
                        MatroskaSpec::PixelWidth(u64::from(wd)),
                        MatroskaSpec::PixelHeight(u64::from(ht)),
                    ])));
                }
            }
            TrackKind::Audio => {
                c.push(MatroskaSpec::TrackType(2));
                if let Some(delay) = self.codec_delay_ns {
                    c.push(MatroskaSpec::CodecDelay(delay));
                    c.push(MatroskaSpec::SeekPreRoll(80_000_000));
                }
                c.push(MatroskaSpec::Audio(Master::Full(vec![
                    MatroskaSpec::SamplingFrequency(self.sample_rate.unwrap_or(48_000.0)),
                    MatroskaSpec::Channels(self.channels.unwrap_or(1)),
                ])));
            }
        }
        MatroskaSpec::TrackEntry(Master::Full(c))
    }
}

/// Space kept after the segment header for the SeekHead (patched at the end).
const SEEKHEAD_RESERVED: usize = 96;
/// A cluster spans at most this long, so there is a seek point every second (and a new
/// cluster starts at every video key frame).
const CLUSTER_MAX_MS: i64 = 1_000;

/// The segment's ID followed by an 8-byte size to patch.
const SEGMENT_HEADER: [u8; 12] = [0x18, 0x53, 0x80, 0x67, 0x01, 0, 0, 0, 0, 0, 0, 0];

fn io_err(e: impl std::fmt::Display) -> Error {
    Error::Write {
        path: Default::default(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// Serialises one element at the top level (the EBML header).
fn serialise(tag: &MatroskaSpec) -> Result<Vec<u8>> {
    let mut w = WebmWriter::new(Vec::new());
    w.write(tag).map_err(io_err)?;
    w.into_inner().map_err(io_err)
}

/// Serialises one child of the Segment. The writer checks where elements may go, so the
/// child is written inside an unknown-size Segment whose 12-byte header is then dropped.
fn serialise_child(tag: &MatroskaSpec) -> Result<Vec<u8>> {
    let mut w = WebmWriter::new(Vec::new());
    w.write_advanced(
        &MatroskaSpec::Segment(Master::Start),
        WriteOptions::is_unknown_sized_element(),
    )
    .map_err(io_err)?;
    w.write(tag).map_err(io_err)?;
    let bytes = w.into_inner().map_err(io_err)?;
    Ok(bytes.get(12..).map(<[u8]>::to_vec).unwrap_or_default())
}

/// An EBML Void element of exactly `len` bytes (len >= 9).
fn void(len: usize) -> Vec<u8> {
    let mut v = vec![0xEC, 0x01];
    let size = (len - 9) as u64;
    v.extend_from_slice(&size.to_be_bytes()[1..]);
    v.resize(len, 0);
    v
}

/// Writes packets in output order into a seekable file.
pub struct Remuxer<W: Write + Seek> {
    out: W,
    /// Track numbers, for cues.
    video_track: Option<u64>,
    audio_track: Option<u64>,
    segment_start: u64,
    duration_pos: u64,
    info_pos: u64,
    tracks_pos: u64,
    /// The open cluster: its time, its elements, and the track its cue points to.
    cluster: Option<(i64, Vec<MatroskaSpec>, Option<u64>)>,
    /// (time, cluster position, track) of every cue.
    cues: Vec<(i64, u64, u64)>,
    end_ms: i64,
}

impl<W: Write + Seek> Remuxer<W> {
    pub fn new(mut out: W, doc_type: &str, tracks: &[OutTrack]) -> Result<Self> {
        let w = |out: &mut W, bytes: &[u8]| out.write_all(bytes).map_err(io_err);
        w(&mut out, &serialise(&ebml_header(doc_type))?)?;
        w(&mut out, &SEGMENT_HEADER)?;
        let segment_start = out.stream_position().map_err(io_err)?;
        w(&mut out, &void(SEEKHEAD_RESERVED))?;

        let info_pos = out.stream_position().map_err(io_err)? - segment_start;
        let info = serialise_child(&MatroskaSpec::Info(Master::Full(vec![
            MatroskaSpec::TimestampScale(1_000_000),
            MatroskaSpec::Duration(0.0),
            MatroskaSpec::MuxingApp("mosaic repair".into()),
            MatroskaSpec::WritingApp("mosaic repair".into()),
        ])))?;
        // Where the Duration's 8-byte float sits, to patch at the end.
        let at = info
            .windows(3)
            .position(|w| w == [0x44, 0x89, 0x88])
            .ok_or_else(|| io_err("Duration not serialised as an 8-byte float"))?;
        let duration_pos = segment_start + info_pos + at as u64 + 3;
        w(&mut out, &info)?;

        let tracks_pos = out.stream_position().map_err(io_err)? - segment_start;
        let entries = tracks.iter().map(OutTrack::entry).collect();
        w(
            &mut out,
            &serialise_child(&MatroskaSpec::Tracks(Master::Full(entries)))?,
        )?;
        Ok(Remuxer {
            out,
            video_track: tracks
                .iter()
                .find(|t| t.kind == TrackKind::Video)
                .map(|t| t.number),
            audio_track: tracks
                .iter()
                .find(|t| t.kind == TrackKind::Audio)
                .map(|t| t.number),
            segment_start,
            duration_pos,
            info_pos,
            tracks_pos,
            cluster: None,
            cues: Vec::new(),
            end_ms: 0,
        })
    }

    /// Adds one packet at output time `pts_ns` (>= 0), lasting `duration_ns` when known.
    pub fn write(
        &mut self,
        track: u64,
        kind: TrackKind,
        pts_ns: i64,
        duration_ns: i64,
        keyframe: bool,
        data: &[u8],
    ) -> Result<()> {
        let ms = pts_ns.max(0) / 1_000_000;
        let starts_cluster = match &self.cluster {
            None => true,
            Some((c, _, _)) => {
                let rel = ms - c;
                !(-30_000..=30_000).contains(&rel)
                    || rel >= CLUSTER_MAX_MS
                    || (kind == TrackKind::Video && keyframe && rel > 0)
            }
        };
        if starts_cluster {
            self.flush_cluster()?;
            // A cluster that starts with a video key frame is a seek point for the video;
            // any other is one for the audio (every Opus packet decodes on its own).
            let cue = if kind == TrackKind::Video && keyframe {
                self.video_track
            } else {
                self.audio_track
            };
            self.cluster = Some((ms, vec![MatroskaSpec::Timestamp(ms as u64)], cue));
        }
        if let Some((c, blocks, _)) = &mut self.cluster {
            let rel = i16::try_from(ms - *c).map_err(io_err)?;
            let key = keyframe || kind == TrackKind::Audio;
            blocks
                .push(SimpleBlock::new_uncheked(data, track, rel, false, None, false, key).into());
        }
        self.end_ms = self.end_ms.max((pts_ns.max(0) + duration_ns) / 1_000_000);
        Ok(())
    }

    fn flush_cluster(&mut self) -> Result<()> {
        if let Some((ts, blocks, cue)) = self.cluster.take() {
            let pos = self.out.stream_position().map_err(io_err)? - self.segment_start;
            if let Some(track) = cue {
                self.cues.push((ts, pos, track));
            }
            let bytes = serialise_child(&MatroskaSpec::Cluster(Master::Full(blocks)))?;
            self.out.write_all(&bytes).map_err(io_err)?;
        }
        Ok(())
    }

    /// Writes the cues, patches sizes, duration and seek head; returns the output and the
    /// duration written, in ms. `duration_ms` overrides the packets' own end when larger.
    pub fn finish(mut self, duration_ms: i64) -> Result<(W, i64)> {
        self.flush_cluster()?;
        let cues_pos = self.out.stream_position().map_err(io_err)? - self.segment_start;
        let points = self
            .cues
            .iter()
            .map(|&(ts, pos, track)| {
                MatroskaSpec::CuePoint(Master::Full(vec![
                    MatroskaSpec::CueTime(ts as u64),
                    MatroskaSpec::CueTrackPositions(Master::Full(vec![
                        MatroskaSpec::CueTrack(track),
                        MatroskaSpec::CueClusterPosition(pos),
                    ])),
                ]))
            })
            .collect();
        let cues = serialise_child(&MatroskaSpec::Cues(Master::Full(points)))?;
        self.out.write_all(&cues).map_err(io_err)?;
        let end = self.out.stream_position().map_err(io_err)?;

        let seek = |id: &[u8], pos: u64| {
            MatroskaSpec::Seek(Master::Full(vec![
                MatroskaSpec::SeekID(id.to_vec()),
                MatroskaSpec::SeekPosition(pos),
            ]))
        };
        let head = serialise_child(&MatroskaSpec::SeekHead(Master::Full(vec![
            seek(&[0x15, 0x49, 0xA9, 0x66], self.info_pos),
            seek(&[0x16, 0x54, 0xAE, 0x6B], self.tracks_pos),
            seek(&[0x1C, 0x53, 0xBB, 0x6B], cues_pos),
        ])))?;
        if head.len() + 9 > SEEKHEAD_RESERVED {
            return Err(io_err("seek head does not fit its reserved space"));
        }
        let duration = duration_ms.max(self.end_ms);
        let patch = |out: &mut W, at: u64, bytes: &[u8]| -> Result<()> {
            out.seek(SeekFrom::Start(at)).map_err(io_err)?;
            out.write_all(bytes).map_err(io_err)
        };
        patch(&mut self.out, self.segment_start, &head)?;
        patch(
            &mut self.out,
            self.segment_start + head.len() as u64,
            &void(SEEKHEAD_RESERVED - head.len()),
        )?;
        patch(
            &mut self.out,
            self.duration_pos,
            &(duration as f64).to_be_bytes(),
        )?;
        let size = end - self.segment_start;
        let mut size_field = [0x01u8, 0, 0, 0, 0, 0, 0, 0];
        size_field[1..].copy_from_slice(&size.to_be_bytes()[1..]);
        patch(&mut self.out, self.segment_start - 8, &size_field)?;
        self.out.seek(SeekFrom::Start(end)).map_err(io_err)?;
        Ok((self.out, duration))
    }
}
