//! Encoding synthetic sample media with GStreamer (the edge that runs pipelines).
//!
//! `appsrc ! encoder [! parser] ! appsink`: a producer thread pushes raw frames (blocking
//! when the encoder is behind, so memory stays bounded), the calling thread pulls encoded
//! packets. Encoders run single-threaded so the output is the same on every run.

use std::thread;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::spec::{SAMPLE_RATE, SegmentPlan};
use super::synth;
use crate::error::{Error, Result};

/// One encoded packet.
#[derive(Debug, Clone)]
pub struct Packet {
    pub pts_ns: i64,
    /// Decode time, where it differs from the presentation time (H.264 with B-frames).
    pub dts_ns: Option<i64>,
    pub keyframe: bool,
    pub data: Vec<u8>,
}

/// An encoded track: its packets and its codec configuration.
#[derive(Debug, Clone, Default)]
pub struct Encoded {
    /// Matroska CodecPrivate: avcC for H.264, OpusHead for Opus.
    pub codec_private: Option<Vec<u8>>,
    pub packets: Vec<Packet>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    Vp8,
    H264 { bframes: u32 },
}

fn gst_err(context: &str, e: impl std::fmt::Display) -> Error {
    Error::Gstreamer(format!("{context}: {e}"))
}

fn make(factory: &str) -> Result<gst::Element> {
    gst::ElementFactory::make(factory).build().map_err(|_| {
        Error::Gstreamer(format!(
            "element {factory:?} is missing; install the GStreamer plugin packages (see README)"
        ))
    })
}

/// Sets a pipeline to `Null` when dropped, on every exit path.
struct Running(gst::Pipeline);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.set_state(gst::State::Null);
    }
}

/// Builds `appsrc ! elements... ! appsink` and starts it.
fn start(
    chain: Vec<gst::Element>,
    caps: &gst::Caps,
) -> Result<(Running, gst_app::AppSrc, gst_app::AppSink)> {
    let pipeline = gst::Pipeline::new();
    let src = gst_app::AppSrc::builder()
        .caps(caps)
        .format(gst::Format::Time)
        .block(true)
        .max_bytes(4 << 20)
        .build();
    let sink = gst_app::AppSink::builder().sync(false).build();
    let mut all: Vec<gst::Element> = vec![src.clone().upcast()];
    all.extend(chain);
    all.push(sink.clone().upcast());
    pipeline
        .add_many(&all)
        .map_err(|e| gst_err("building pipeline", e))?;
    gst::Element::link_many(&all).map_err(|e| gst_err("linking pipeline", e))?;
    let running = Running(pipeline);
    running
        .0
        .set_state(gst::State::Playing)
        .map_err(|e| gst_err("starting encoder", e))?;
    Ok((running, src, sink))
}

/// Pulls every packet until end of stream, then reports any error on the bus.
fn drain(
    running: &Running,
    sink: &gst_app::AppSink,
    keep: impl Fn(i64) -> bool,
) -> Result<Encoded> {
    let mut out = Encoded::default();
    while let Ok(sample) = sink.pull_sample() {
        if out.codec_private.is_none() {
            out.codec_private = sample.caps().and_then(codec_private);
        }
        let Some(buffer) = sample.buffer() else {
            continue;
        };
        // Encoders may shift timestamps (x264enc adds 1000 h so that DTS stays positive)
        // and say so in the segment: running time is what we want.
        let segment = sample
            .segment()
            .and_then(|s| s.downcast_ref::<gst::ClockTime>().cloned());
        let running = |t: Option<gst::ClockTime>| -> Option<i64> {
            let t = t?;
            match &segment {
                Some(seg) => match seg.to_running_time_full(t)? {
                    gst::Signed::Positive(v) => Some(v.nseconds() as i64),
                    gst::Signed::Negative(v) => Some(-(v.nseconds() as i64)),
                },
                None => Some(t.nseconds() as i64),
            }
        };
        let Some(pts_ns) = running(buffer.pts()) else {
            continue;
        };
        if !keep(pts_ns) {
            continue;
        }
        let map = buffer
            .map_readable()
            .map_err(|e| gst_err("reading packet", e))?;
        out.packets.push(Packet {
            pts_ns,
            dts_ns: running(buffer.dts()).filter(|&d| d != pts_ns),
            keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
            data: map.as_slice().to_vec(),
        });
    }
    if let Some(bus) = running.0.bus()
        && let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error])
        && let gst::MessageView::Error(err) = msg.view()
    {
        let who = err
            .src()
            .map(|s| s.path_string().to_string())
            .unwrap_or_default();
        return Err(Error::Gstreamer(format!(
            "{who}: {} ({})",
            err.error(),
            err.debug().map(|d| d.to_string()).unwrap_or_default()
        )));
    }
    Ok(out)
}

/// avcC from H.264 caps' `codec_data`, or the OpusHead from Opus caps' `streamheader`.
fn codec_private(caps: &gst::CapsRef) -> Option<Vec<u8>> {
    let s = caps.structure(0)?;
    if let Ok(buf) = s.get::<gst::Buffer>("codec_data") {
        return buf.map_readable().ok().map(|m| m.as_slice().to_vec());
    }
    let headers = s.get::<gst::Array>("streamheader").ok()?;
    let first = headers.first()?.get::<gst::Buffer>().ok()?;
    first.map_readable().ok().map(|m| m.as_slice().to_vec())
}

fn video_caps(width: u32, height: u32, fps: u32) -> gst::Caps {
    gst::Caps::builder("video/x-raw")
        .field("format", "I420")
        .field("width", width as i32)
        .field("height", height as i32)
        .field("framerate", gst::Fraction::new(fps as i32, 1))
        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
        .build()
}

/// Encodes the segment's video frames (muted frames are simply absent from the plan).
pub fn encode_video(plan: &SegmentPlan, codec: VideoCodec, fps: u32, kbps: u32) -> Result<Encoded> {
    gst::init().map_err(|e| gst_err("initialising GStreamer", e))?;
    let Some(first) = plan.frames.first() else {
        return Ok(Encoded::default());
    };
    let chain = match codec {
        VideoCodec::Vp8 => {
            let enc = make("vp8enc")?;
            enc.set_property("deadline", 1i64);
            enc.set_property("threads", 1i32);
            enc.set_property("cpu-used", 8i32);
            enc.set_property("target-bitrate", (kbps * 1000) as i32);
            enc.set_property("keyframe-max-dist", (fps * 10) as i32);
            vec![enc]
        }
        VideoCodec::H264 { bframes } => {
            let enc = make("x264enc")?;
            enc.set_property_from_str("speed-preset", "ultrafast");
            if bframes == 0 {
                enc.set_property_from_str("tune", "zerolatency");
            }
            enc.set_property("bframes", bframes);
            enc.set_property("threads", 1u32);
            enc.set_property("bitrate", kbps);
            enc.set_property("key-int-max", fps * 10);
            let parse = make("h264parse")?;
            parse.set_property("config-interval", -1i32);
            let filter = make("capsfilter")?;
            filter.set_property(
                "caps",
                gst::Caps::builder("video/x-h264")
                    .field("stream-format", "avc")
                    .field("alignment", "au")
                    .build(),
            );
            vec![enc, parse, filter]
        }
    };
    let (running, src, sink) = start(chain, &video_caps(first.width, first.height, fps))?;
    let frames = plan.frames.clone();
    let color = plan.color;
    let producer = thread::spawn(move || {
        let mut size = (frames[0].width, frames[0].height);
        for f in &frames {
            if (f.width, f.height) != size {
                size = (f.width, f.height);
                src.set_caps(Some(&video_caps(f.width, f.height, fps)));
            }
            let mut buf = gst::Buffer::from_mut_slice(synth::picture(f, color));
            if let Some(b) = buf.get_mut() {
                b.set_pts(gst::ClockTime::from_nseconds(f.pts_ns as u64));
                b.set_duration(gst::ClockTime::from_nseconds(f.duration_ns as u64));
            }
            if src.push_buffer(buf).is_err() {
                return; // the pipeline failed; drain() reports why
            }
        }
        let _ = src.end_of_stream();
    });
    let out = drain(&running, &sink, |_| true);
    let _ = producer.join();
    out
}

/// Encodes the segment's audio, dropping the packets that fall in audio mutes, as a media
/// server records a muted publisher: no packets at all.
pub fn encode_audio(plan: &SegmentPlan) -> Result<Encoded> {
    gst::init().map_err(|e| gst_err("initialising GStreamer", e))?;
    let enc = make("opusenc")?;
    enc.set_property("bitrate", 32_000i32);
    enc.set_property_from_str("frame-size", "20");
    let caps = gst::Caps::builder("audio/x-raw")
        .field("format", "S16LE")
        .field("rate", SAMPLE_RATE as i32)
        .field("channels", 1i32)
        .field("layout", "interleaved")
        .build();
    let (running, src, sink) = start(vec![enc], &caps)?;
    let total = plan.audio_samples();
    let producer_plan = plan.clone();
    let producer = thread::spawn(move || {
        const CHUNK: u64 = 960;
        let mut pos = 0u64;
        while pos < total {
            let n = CHUNK.min(total - pos);
            let samples = synth::audio(&producer_plan, pos, n as usize);
            let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
            let mut buf = gst::Buffer::from_mut_slice(bytes);
            if let Some(b) = buf.get_mut() {
                b.set_pts(gst::ClockTime::from_nseconds(
                    pos * 1_000_000_000 / u64::from(SAMPLE_RATE),
                ));
                b.set_duration(gst::ClockTime::from_nseconds(
                    n * 1_000_000_000 / u64::from(SAMPLE_RATE),
                ));
            }
            if src.push_buffer(buf).is_err() {
                return;
            }
            pos += n;
        }
        let _ = src.end_of_stream();
    });
    let out = drain(&running, &sink, |pts| !plan.audio_muted(pts));
    let _ = producer.join();
    out
}
