//! `--trim`'s cuts, made where the picture and the sound leave the canvas and the mixer:
//! the frames and samples of a cut are dropped, everything after it moves back by the
//! same time, and the sound fades over 20 ms on each side (see [`TimeMap`]). Upstream,
//! the plan runs whole: a layout, a freeze or a placeholder that spans a cut goes on after
//! it as it would have.

use std::sync::Arc;

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::compose::trim::TimeMap;

/// The mix's rate and sample size (F32 interleaved stereo, see `mixed_audio_caps`).
const RATE: u64 = 48_000;
const FRAME_BYTES: usize = 2 * std::mem::size_of::<f32>();

/// Drops the canvas's frames inside a cut and restamps the later ones.
pub(super) fn cut_video(pad: &gst::Pad, map: Arc<TimeMap>, fps: u32) {
    let fps = u64::from(fps.max(1));
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Some(pts) = info.buffer().and_then(|b| b.pts()) else {
            return gst::PadProbeReturn::Ok;
        };
        let k = (pts.nseconds() * fps + 500_000_000) / 1_000_000_000;
        match map.output_frame(k) {
            None => gst::PadProbeReturn::Drop,
            Some(out) if out == k => gst::PadProbeReturn::Ok,
            Some(out) => {
                if let Some(buffer) = info.buffer_mut() {
                    let buffer = buffer.make_mut();
                    buffer.set_pts(gst::ClockTime::from_nseconds(map.frame_ns(out)));
                }
                gst::PadProbeReturn::Ok
            }
        }
    });
}

/// Drops the mix's samples inside a cut, joins what stays of a buffer that straddles one,
/// restamps the later ones and fades the sound into and out of each cut.
pub(super) fn cut_audio(pad: &gst::Pad, map: Arc<TimeMap>) {
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Some(buffer) = info.buffer() else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(pts) = buffer.pts() else {
            return gst::PadProbeReturn::Ok;
        };
        let first = (pts.nseconds() as u128 * RATE as u128 + 500_000_000) / 1_000_000_000;
        let first = first as u64;
        let n = (buffer.size() / FRAME_BYTES) as u64;
        if !map.touches(first, n, RATE) {
            return gst::PadProbeReturn::Ok;
        }
        let kept = map.kept_samples(first, n, RATE);
        let Some(&(out_first, _)) = kept.first() else {
            return gst::PadProbeReturn::Drop;
        };
        let to_ns = |s: u64| gst::ClockTime::from_nseconds(s * 1_000_000_000 / RATE);
        let pts = to_ns(map.output_sample(out_first, RATE));
        if kept == [(first, first + n)] && !map.fades(first, n, RATE) {
            // Whole and at full level: only its time changes.
            if let Some(buffer) = info.buffer_mut() {
                buffer.make_mut().set_pts(pts);
            }
            return gst::PadProbeReturn::Ok;
        }
        let Ok(readable) = buffer.map_readable() else {
            return gst::PadProbeReturn::Ok;
        };
        let bytes = readable.as_slice();
        let mut joined: Vec<u8> = Vec::with_capacity(bytes.len());
        for &(a, b) in &kept {
            for s in a..b {
                let at = (s - first) as usize * FRAME_BYTES;
                let gain = map.gain(s, RATE);
                for c in bytes[at..at + FRAME_BYTES].chunks_exact(4) {
                    let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]) * gain;
                    joined.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
        let samples = (joined.len() / FRAME_BYTES) as u64;
        let flags = buffer.flags() - gst::BufferFlags::DISCONT;
        drop(readable);
        let mut out = gst::Buffer::from_mut_slice(joined);
        if let Some(o) = out.get_mut() {
            o.set_pts(pts);
            o.set_duration(to_ns(samples));
            o.set_flags(flags);
        }
        info.data = Some(gst::PadProbeData::Buffer(out));
        gst::PadProbeReturn::Ok
    });
}
