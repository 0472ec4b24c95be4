//! Writing sample media the way a live capture does (the edge that writes containers).
//!
//! Like the media server's recorder: a Segment and Clusters of unknown size, no `Duration`,
//! no `Cues`, SimpleBlocks interleaved by time, a new cluster at video key frames (about one
//! a second) and whenever block times would leave the cluster's 16-bit range.

use std::io::Write;

use webm_iterable::matroska_spec::{Master, MatroskaSpec, SimpleBlock};
use webm_iterable::{WebmWriter, WriteOptions};

use super::encode::{Encoded, Packet};
use crate::error::{Error, Result};
use crate::inspect::TrackKind;
use crate::repair::remux::{OutTrack, ebml_header};

/// One track to write.
pub struct TrackData<'a> {
    pub codec_id: &'static str,
    pub encoded: &'a Encoded,
    pub kind: TrackKindData,
}

pub enum TrackKindData {
    Video { width: u32, height: u32 },
    Audio { rate: f64, channels: u64 },
}

const VIDEO: u64 = 1;
const AUDIO: u64 = 2;

fn write_err(e: impl std::fmt::Display) -> Error {
    Error::Gstreamer(format!("writing sample container: {e}"))
}

/// Writes a live-style Matroska file with up to one video and one audio track;
/// `date_utc_ns` is the Segment's `DateUTC` (ns since 2001-01-01), when it has one.
pub fn write_live_matroska<W: Write>(
    dest: W,
    doc_type: &str,
    video: Option<TrackData<'_>>,
    audio: Option<TrackData<'_>>,
    date_utc_ns: Option<i64>,
) -> Result<W> {
    let mut w = WebmWriter::new(dest);
    w.write(&ebml_header(doc_type)).map_err(write_err)?;
    w.write_advanced(
        &MatroskaSpec::Segment(Master::Start),
        WriteOptions::is_unknown_sized_element(),
    )
    .map_err(write_err)?;
    let mut info = vec![
        MatroskaSpec::TimestampScale(1_000_000),
        MatroskaSpec::MuxingApp("mosaic sample".into()),
        MatroskaSpec::WritingApp("mosaic sample".into()),
    ];
    if let Some(date) = date_utc_ns {
        info.push(MatroskaSpec::DateUTC(date));
    }
    w.write(&MatroskaSpec::Info(Master::Full(info)))
        .map_err(write_err)?;

    let mut entries = Vec::new();
    for (number, track) in [(VIDEO, &video), (AUDIO, &audio)] {
        let Some(t) = track else { continue };
        let (kind, width, height, sample_rate, channels) = match t.kind {
            TrackKindData::Video { width, height } => {
                (TrackKind::Video, Some(width), Some(height), None, None)
            }
            TrackKindData::Audio { rate, channels } => {
                (TrackKind::Audio, None, None, Some(rate), Some(channels))
            }
        };
        let out = OutTrack {
            number,
            kind,
            codec_id: t.codec_id.into(),
            codec_private: t.encoded.codec_private.clone(),
            width,
            height,
            sample_rate,
            channels,
            codec_delay_ns: None,
        };
        entries.push(out.entry());
    }
    w.write(&MatroskaSpec::Tracks(Master::Full(entries)))
        .map_err(write_err)?;

    // Interleave by decode time: video in its stored (decode) order, audio merged in.
    let empty = Vec::new();
    let vpk: &[Packet] = video.as_ref().map_or(&empty, |t| &t.encoded.packets);
    let apk: &[Packet] = audio.as_ref().map_or(&empty, |t| &t.encoded.packets);
    let (mut vi, mut ai) = (0, 0);
    let mut cluster: Option<i64> = None;
    while vi < vpk.len() || ai < apk.len() {
        let take_video = match (vpk.get(vi), apk.get(ai)) {
            (Some(v), Some(a)) => v.dts_ns.unwrap_or(v.pts_ns) <= a.pts_ns,
            (Some(_), None) => true,
            _ => false,
        };
        let (track, p) = if take_video {
            vi += 1;
            (VIDEO, &vpk[vi - 1])
        } else {
            ai += 1;
            (AUDIO, &apk[ai - 1])
        };
        let ms = p.pts_ns.div_euclid(1_000_000);
        let new_cluster = match cluster {
            None => true,
            Some(c) => {
                let rel = ms - c;
                !(-30_000..=30_000).contains(&rel)
                    || (rel >= 1_000 && (track == VIDEO && p.keyframe || vpk.is_empty()))
                    || rel >= 5_000
            }
        };
        if new_cluster {
            if cluster.is_some() {
                w.write(&MatroskaSpec::Cluster(Master::End))
                    .map_err(write_err)?;
            }
            let c = ms.max(0);
            w.write_advanced(
                &MatroskaSpec::Cluster(Master::Start),
                WriteOptions::is_unknown_sized_element(),
            )
            .map_err(write_err)?;
            w.write(&MatroskaSpec::Timestamp(c as u64))
                .map_err(write_err)?;
            cluster = Some(c);
        }
        let rel = i16::try_from(ms - cluster.unwrap_or(0)).map_err(write_err)?;
        let block = SimpleBlock::new_uncheked(
            &p.data,
            track,
            rel,
            false,
            None,
            false,
            p.keyframe || track == AUDIO,
        );
        w.write(&MatroskaSpec::from(block)).map_err(write_err)?;
    }
    if cluster.is_some() {
        w.write(&MatroskaSpec::Cluster(Master::End))
            .map_err(write_err)?;
    }
    w.write(&MatroskaSpec::Segment(Master::End))
        .map_err(write_err)?;
    w.into_inner().map_err(write_err)
}
