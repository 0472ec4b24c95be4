//! A TrackEntry read into what the scan follows of a track: number, kind, codec, and what
//! the codec's private data says (H.264's NAL length size and picture size, Opus's
//! pre-skip).

use webm_iterable::matroska_spec::{Master, MatroskaSpec};

use super::Track;
use crate::error::{Error, Result};
use crate::inspect::bitstream::{self, Dimensions};
use crate::inspect::track::TrackScan;
use crate::inspect::{Codec, InspectOptions, TrackKind};

/// Reads a TrackEntry; `None` for track types mosaic does not follow (subtitles, …).
pub(super) fn parse_track(
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
