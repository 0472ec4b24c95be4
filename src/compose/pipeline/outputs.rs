//! The output side: canvas, audio mixer and limiter, encoders into the muxer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_audio as gst_audio;

use super::priority::{AHEAD, SoundThreads, mark_sound};
use super::*;
use crate::compose::meter::Meter;

/// mosaiccanvas ! capsfilter ! queue ! encoder [! parser] ! muxer
pub(super) fn build_video_out(
    pipeline: &gst::Pipeline,
    plan: &Plan,
    input: &PipelineInput<'_>,
    mux: &gst::Element,
    frame_counter: &Arc<AtomicU64>,
) -> Result<gst::Element> {
    let comp = make(super::canvas::FACTORY)?;
    let caps = caps_filter(i420_caps(plan.width, plan.height, plan.fps))?;
    // Three frames between the canvas and the encoder keep both busy (x264 holds its
    // own ten-frame look-ahead); ten measured no faster and cost 20 MB more at 1920x1080.
    let q = queue(Duration::from_millis(100))?;
    let mut chain = vec![comp.clone(), caps, q];
    match input.format {
        OutputFormat::Mp4 | OutputFormat::Mkv | OutputFormat::Hls => {
            let enc = make("x264enc")?;
            enc.set_property_from_str("speed-preset", input.speed.x264_preset());
            enc.set_property_from_str("pass", "qual");
            enc.set_property("quantizer", input.quality);
            enc.set_property("key-int-max", input.gop_frames.max(1));
            // No B-frames: with them, mp4mux writes an edit list that GStreamer's own
            // qtdemux reads two frames later than ffmpeg does; without, every player agrees.
            enc.set_property("bframes", 0u32);
            // x264enc turns its bitrate (default 2 Mbit/s) into a VBV cap even in quality
            // mode; lift it, so constant quality means what it does in ffmpeg/x264.
            enc.set_property("bitrate", 2_048_000u32);
            chain.push(enc);
            let mut h264 = gst::Caps::builder("video/x-h264").field("profile", "high");
            if input.segments.is_some() {
                // MPEG-TS carries H.264 as a byte stream (SPS and PPS at every key frame).
                h264 = h264
                    .field("stream-format", "byte-stream")
                    .field("alignment", "au");
            }
            chain.push(caps_filter(h264.build())?);
        }
        OutputFormat::Webm => {
            let enc = make("vp8enc")?;
            enc.set_property("deadline", 1i64);
            enc.set_property("cpu-used", input.speed.vp8_cpu_used());
            enc.set_property("threads", 2i32);
            enc.set_property_from_str("end-usage", "cq");
            enc.set_property("cq-level", (input.quality as i32 / 2 + 4).clamp(4, 63));
            enc.set_property("target-bitrate", 4_000_000i32);
            enc.set_property("keyframe-max-dist", input.gop_frames.max(1) as i32);
            chain.push(enc);
        }
        _ => unreachable_format()?,
    }
    if input.loudness.is_some() {
        // The loudness normaliser holds the sound back 3 s; encoded video waits here for it
        // (small), instead of raw frames upstream (large), so the muxer can interleave.
        chain.push(queue(Duration::from_secs(6))?);
    }
    link_chain(pipeline, &chain)?;
    let last = chain
        .last()
        .ok_or_else(|| gst_err("building", "empty chain"))?;
    link_to_muxer(input, last, mux, "video").map_err(|e| gst_err("linking video to muxer", e))?;
    place_segments(input, last);
    let src = |e: &gst::Element| {
        e.static_pad("src")
            .ok_or_else(|| gst_err("building", format!("{} has no src pad", e.name())))
    };
    if !input.time_map.is_identity() {
        super::cuts::cut_video(&src(&comp)?, input.time_map.clone(), plan.fps);
    }
    // Frames are counted past the cuts.
    if let Some(counted) = chain.get(1) {
        let counter = frame_counter.clone();
        src(counted)?.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            counter.fetch_add(1, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    }
    Ok(comp)
}

/// Links `last` into the muxer: into its `template` pad for HLS segments
/// (`splitmuxsink`'s pads take any caps, so linking by caps could pick the wrong one).
fn link_to_muxer(
    input: &PipelineInput<'_>,
    last: &gst::Element,
    mux: &gst::Element,
    template: &str,
) -> std::result::Result<(), String> {
    if input.segments.is_none() {
        return last.link(mux).map_err(|e| e.to_string());
    }
    let pad = mux
        .request_pad_simple(template)
        .ok_or_else(|| format!("no {template} pad"))?;
    last.static_pad("src")
        .ok_or_else(|| "no src pad".to_string())?
        .link(&pad)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// HLS: a chunk's media goes where the chunk is on the output's timeline (the segments'
/// timestamps and their spans are the whole output's).
fn place_segments(input: &PipelineInput<'_>, last: &gst::Element) {
    if let (Some(segments), Some(pad)) = (input.segments, last.static_pad("src")) {
        pad.set_offset(i64::try_from(segments.offset_ns).unwrap_or(i64::MAX));
    }
}

fn unreachable_format() -> Result<()> {
    Err(Error::Gstreamer(
        "internal: video chain for an audio-only format".into(),
    ))
}

/// audiomixer ! capsfilter (limited in a probe) [! loudness normalisation] ! (metered)
/// audioconvert ! queue ! encoder [! queue (up to two minutes, with video)] ! muxer
pub(super) fn build_audio_out(
    pipeline: &gst::Pipeline,
    _plan: &Plan,
    input: &PipelineInput<'_>,
    mux: &gst::Element,
    meter: &Arc<Mutex<Meter>>,
    sound_threads: Option<&Arc<SoundThreads>>,
) -> Result<gst::Element> {
    let mixer = make("audiomixer")?;
    mark_sound(&mixer);
    // Resync at once to a buffer's timestamp after a gap: sound after a mute is heard
    // where it was recorded.
    mixer.set_property("discont-wait", 0u64);
    let caps = caps_filter(mixed_audio_caps())?;
    // The sum of streams is not attenuated by 1/N (a lone speaker is as loud as in the
    // source); a look-ahead true-peak limiter keeps loud sums under the ceiling.
    limit(&caps)?;
    if !input.time_map.is_identity() {
        let src = mixer
            .static_pad("src")
            .ok_or_else(|| gst_err("building", "audiomixer without a src pad"))?;
        super::cuts::cut_audio(&src, input.time_map.clone());
    }
    let mut chain = vec![mixer.clone(), caps.clone()];
    let mut metered = caps;
    if let Some(target) = input.loudness {
        // audioloudnorm works on F64 at 192 kHz (its true-peak detection needs it), with a
        // 3 s look-ahead; its output keeps each sound's timestamp.
        let norm = make("audioloudnorm")?;
        norm.set_property("loudness-target", target);
        norm.set_property("max-true-peak", LOUDNORM_MAX_TRUE_PEAK);
        let back = caps_filter(mixed_audio_caps())?;
        chain.extend([
            make("audioconvert")?,
            make("audioresample")?,
            norm,
            make("audioresample")?,
            make("audioconvert")?,
            back.clone(),
        ]);
        metered = back;
    }
    measure(&metered, meter)?;
    let encoding = queue(Duration::from_secs(1))?;
    mark_sound(&encoding);
    chain.extend([make("audioconvert")?, encoding]);
    match input.format {
        OutputFormat::Mp4 | OutputFormat::M4a | OutputFormat::Hls => {
            chain.push(aac_encoder()?);
            if input.segments.is_some() {
                // MPEG-TS carries AAC in ADTS frames.
                chain.push(caps_filter(
                    gst::Caps::builder("audio/mpeg")
                        .field("stream-format", "adts")
                        .build(),
                )?);
            }
        }
        OutputFormat::Webm | OutputFormat::Mkv | OutputFormat::Opus => {
            let enc = make("opusenc")?;
            enc.set_property("bitrate", 128_000i32);
            chain.push(enc);
        }
    }
    if input.format.has_video() {
        // The encoded sound may run ahead of the muxer, in the gaps the picture's encoder
        // leaves (see `priority`).
        let ahead = queue(AHEAD)?;
        compact(&ahead)?;
        if let Some(threads) = sound_threads {
            threads.follow(&ahead);
        }
        chain.push(ahead);
    }
    link_chain(pipeline, &chain)?;
    let last = chain
        .last()
        .ok_or_else(|| gst_err("building", "empty chain"))?;
    link_to_muxer(input, last, mux, "audio_%u")
        .map_err(|e| gst_err("linking audio to muxer", e))?;
    place_segments(input, last);
    Ok(mixer)
}

/// Copies each buffer that enters `queue` into memory of its own size when it sits in much
/// more: `voaacenc` allocates 4 KB for every 20 ms packet of about 340 bytes, and two minutes
/// of those held ahead of the muxer were 25 MB.
fn compact(queue: &gst::Element) -> Result<()> {
    let pad = queue
        .static_pad("sink")
        .ok_or_else(|| gst_err("building", "queue without a sink pad"))?;
    pad.add_probe(gst::PadProbeType::BUFFER, |_, info| {
        if let Some(gst::PadProbeData::Buffer(buffer)) = &mut info.data {
            let held: usize = buffer.iter_memories().map(|m| m.maxsize()).sum();
            if held > 2 * buffer.size() + 64
                && let Ok(copy) = buffer.copy_deep()
            {
                *buffer = copy;
            }
        }
        gst::PadProbeReturn::Ok
    });
    Ok(())
}

/// The true-peak ceiling given to `audioloudnorm`: under -1 dBTP with room for the encoder.
const LOUDNORM_MAX_TRUE_PEAK: f64 = -1.5;

/// Feeds the final mix (F32 interleaved stereo at 48 kHz) on `element`'s source pad to the
/// loudness meter.
fn measure(element: &gst::Element, meter: &Arc<Mutex<Meter>>) -> Result<()> {
    let pad = element
        .static_pad("src")
        .ok_or_else(|| gst_err("building", "capsfilter without a source pad"))?;
    let meter = meter.clone();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Some(buffer) = info.buffer() else {
            return gst::PadProbeReturn::Ok;
        };
        if let (Ok(map), Ok(mut meter)) = (buffer.map_readable(), meter.lock()) {
            let samples: Vec<f32> = map
                .as_slice()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            meter.add(&samples);
        }
        gst::PadProbeReturn::Ok
    });
    Ok(())
}

/// Runs the mix through a [`Limiter`] on `element`'s source pad (F32 interleaved stereo).
/// The limiter delays the sound by its look-ahead; the first buffer loses that much from
/// its start and every later one is stamped that much earlier, so each sound stays where
/// it was recorded.
fn limit(element: &gst::Element) -> Result<()> {
    let pad = element
        .static_pad("src")
        .ok_or_else(|| gst_err("building", "capsfilter without a source pad"))?;
    let limiter = Mutex::new((Limiter::new(2), true));
    let delay_ns = LOOKAHEAD_FRAMES as u64 * 1_000_000_000 / 48_000;
    let frame_bytes = 2 * std::mem::size_of::<f32>();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Some(buffer) = info.buffer_mut() else {
            return gst::PadProbeReturn::Ok;
        };
        let Ok(mut state) = limiter.lock() else {
            return gst::PadProbeReturn::Ok;
        };
        let (limiter, first) = &mut *state;
        let buffer = buffer.make_mut();
        if let Ok(mut map) = buffer.map_writable() {
            let bytes = map.as_mut_slice();
            let usable = bytes.len() - bytes.len() % frame_bytes;
            let mut samples: Vec<f32> = bytes[..usable]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            limiter.process(&mut samples);
            for (out, v) in bytes[..usable].chunks_exact_mut(4).zip(&samples) {
                out.copy_from_slice(&v.to_le_bytes());
            }
        }
        buffer.unset_flags(gst::BufferFlags::GAP);
        if *first {
            *first = false;
            let drop = (LOOKAHEAD_FRAMES * frame_bytes).min(buffer.size());
            let size = buffer.size();
            let _ = buffer.resize(drop..size);
            if let Some(d) = buffer.duration() {
                buffer.set_duration(d.saturating_sub(gst::ClockTime::from_nseconds(delay_ns)));
            }
        } else if let Some(pts) = buffer.pts() {
            buffer.set_pts(pts.saturating_sub(gst::ClockTime::from_nseconds(delay_ns)));
        }
        gst::PadProbeReturn::Ok
    });
    Ok(())
}

/// The AAC encoder, `voaacenc`, delays its output by 1600 samples (a 1024-sample frame of
/// priming and 576 of look-ahead), and mp4mux writes no edit list to hide it: every sound
/// would come 33 ms late. 448 samples of silence ahead of the mix make that delay two whole
/// frames; those two frames are dropped and every later one moves back by 2048 samples, so
/// each sound is where it was recorded, to the sample.
///
/// (`voaacenc` rather than gst-libav's `avenc_aac`: loading gst-libav maps libavcodec,
/// libavfilter and their hundred-odd libraries, 37 MB of a compose's peak memory, and its
/// AAC encoder takes 2.7x the CPU.)
const AAC_DELAY: u64 = 1600;
const AAC_FRAME: u64 = 1024;

fn aac_encoder() -> Result<gst::Element> {
    let enc = make("voaacenc")?;
    enc.set_property("bitrate", 128_000i32);
    let frames = AAC_DELAY.div_ceil(AAC_FRAME);
    pad_encoder_input(&enc, frames * AAC_FRAME - AAC_DELAY, AAC_DELAY)?;
    drop_encoder_output(&enc, frames, frames * AAC_FRAME)?;
    Ok(enc)
}

/// Puts `lead` samples of silence ahead of the encoder's first input (every input moves that
/// long later), and `tail` samples after its last, before the end of stream: without them the
/// encoder keeps its look-ahead, the last 33 ms of sound, when the stream ends.
fn pad_encoder_input(enc: &gst::Element, lead: u64, tail: u64) -> Result<()> {
    let sink = enc
        .static_pad("sink")
        .ok_or_else(|| gst_err("building", "encoder has no sink pad"))?;
    let to_ns = |samples: u64| gst::ClockTime::from_nseconds(samples * 1_000_000_000 / 48_000);
    let shift = to_ns(lead);
    let silence = |samples: u64, frame_bytes: usize| {
        gst::Buffer::from_mut_slice(vec![0u8; samples as usize * frame_bytes])
    };
    let frame_bytes = |pad: &gst::Pad| {
        pad.current_caps()
            .and_then(|caps| gst_audio::AudioInfo::from_caps(&caps).ok())
            .map_or(0, |info| info.bpf() as usize)
    };
    let first = AtomicBool::new(true);
    // Where the last input ended, before the shift.
    let end = Arc::new(Mutex::new(None::<gst::ClockTime>));
    let ended = end.clone();
    sink.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(buffer) = info.buffer_mut() else {
            return gst::PadProbeReturn::Ok;
        };
        if let (Some(pts), Ok(mut end)) = (buffer.pts(), ended.lock()) {
            *end = Some(pts + buffer.duration().unwrap_or_default());
        }
        // The caps are read once, for the first buffer (and at the end).
        if first.swap(false, Ordering::Relaxed)
            && let bytes @ 1.. = frame_bytes(pad)
        {
            let mut padded = silence(lead, bytes);
            padded.append(buffer.copy());
            if let Some(padded) = padded.get_mut() {
                padded.set_pts(buffer.pts());
                padded.set_duration(buffer.duration().map(|d| d + shift));
            }
            *buffer = padded;
        } else {
            let buffer = buffer.make_mut();
            buffer.set_pts(buffer.pts().map(|t| t + shift));
        }
        gst::PadProbeReturn::Ok
    });
    sink.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |pad, info| {
        if !info
            .event()
            .is_some_and(|e| e.type_() == gst::EventType::Eos)
        {
            return gst::PadProbeReturn::Ok;
        }
        let bytes = frame_bytes(pad);
        if let (Some(at), true) = (end.lock().ok().and_then(|mut e| e.take()), bytes > 0) {
            let mut tail_buffer = silence(tail, bytes);
            if let Some(b) = tail_buffer.get_mut() {
                b.set_pts(at);
                b.set_duration(to_ns(tail));
            }
            // The probe runs in the streaming thread, which holds the pad's stream lock:
            // the silence goes through the encoder before the end of stream does.
            let _ = pad.chain(tail_buffer);
        }
        gst::PadProbeReturn::Ok
    });
    Ok(())
}

/// Drops the encoder's first `frames` outputs and moves every later one `samples` earlier.
fn drop_encoder_output(enc: &gst::Element, frames: u64, samples: u64) -> Result<()> {
    let src = enc
        .static_pad("src")
        .ok_or_else(|| gst_err("building", "encoder has no src pad"))?;
    let back_ns = samples * 1_000_000_000 / 48_000;
    let to_drop = AtomicU64::new(frames);
    src.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if to_drop
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
        {
            return gst::PadProbeReturn::Drop;
        }
        if let Some(buffer) = info.buffer_mut() {
            let buffer = buffer.make_mut();
            let back = |t: Option<gst::ClockTime>| {
                t.map(|t| gst::ClockTime::from_nseconds(t.nseconds().saturating_sub(back_ns)))
            };
            let (pts, dts) = (back(buffer.pts()), back(buffer.dts()));
            buffer.set_pts(pts);
            buffer.set_dts(dts);
        }
        gst::PadProbeReturn::Ok
    });
    Ok(())
}
