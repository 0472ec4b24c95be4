//! The input side: one demuxer per kind of media of each file, decoders, scaling to the
//! tile, into the canvas and the mixer.

use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;

use super::source;
use super::window::{
    Window, drop_until_key_frame, hold_to_window, keep_container_time, stop_past_end,
};
use super::*;

/// Where one segment file's decoded media goes.
pub(super) struct SegmentBranch {
    /// Compositor pad, codec, and the label to draw (with `--labels`).
    pub(super) video: Option<VideoTarget>,
    pub(super) audio: Option<gst::Pad>,
    /// Container time (ns) where the output starts (> 0 only with `--from` inside the file).
    pub(super) start_ns: i64,
    /// Container time (ns) from which buffers fall after the output's end.
    pub(super) end_ns: i64,
    /// How much later than their own time decoded frames reach the canvas (the canvas pad's
    /// offset holds it, see `Plan::video_delay_ns`): the video's window starts and ends that
    /// much earlier.
    pub(super) video_delay_ns: i64,
    /// An output frame's duration (ns).
    pub(super) frame_ns: i64,
    /// The decoders' `max-errors`: -1 conceals every damaged frame, 0 fails on the first.
    pub(super) max_errors: i32,
}

/// One `filesrc ! matroskademux` per kind of media of the segment, with the decoder branch
/// linked as the demuxer's pad appears and every other pad to a fakesink.
///
/// Audio and video are demuxed separately so that neither waits for the other: in a long
/// video mute (10 s in a real Chrome capture) the canvas waits for the next video frame
/// while the audio goes on; with one demuxer, its thread would block on full audio queues
/// before reaching that frame, and the pipeline would deadlock. Reading the file twice costs
/// little; each track is still decoded once, in its demuxer's own thread (no queue: a hand-off
/// per buffer between two threads cost more than it overlapped, 8 threads and 13 k context
/// switches per minute of four cameras).
pub(super) fn add_segment(
    pipeline: &gst::Pipeline,
    file: &MediaFile,
    branch: SegmentBranch,
) -> Result<()> {
    let window = Window {
        start_ns: branch.start_ns,
        end_ns: branch.end_ns,
        max_errors: branch.max_errors,
        frames: false,
        first_frame_ns: branch.frame_ns,
    };
    if let Some(video) = branch.video {
        let window = Window {
            start_ns: (window.start_ns - branch.video_delay_ns).max(0),
            end_ns: window.end_ns - branch.video_delay_ns,
            frames: true,
            ..window
        };
        add_demuxer(pipeline, file, Target::Video(video), window)?;
    }
    if let Some(audio) = branch.audio {
        add_demuxer(pipeline, file, Target::Audio(audio), window)?;
    }
    Ok(())
}

/// Where a segment's decoded video goes.
pub(super) struct VideoTarget {
    /// The canvas pad.
    pub(super) pad: gst::Pad,
    pub(super) codec: Codec,
    /// The label to draw, with `--labels`.
    pub(super) label: Option<String>,
}

enum Target {
    Video(VideoTarget),
    Audio(gst::Pad),
}

fn add_demuxer(
    pipeline: &gst::Pipeline,
    file: &MediaFile,
    target: Target,
    window: Window,
) -> Result<()> {
    let is_video = matches!(target, Target::Video(_));
    let (src, resumed) = source::open(file, is_video, window.start_ns)?;
    let skip_to_key = is_video && resumed;
    let resumes_ns = Arc::clone(&file.resumes_ns);
    let audio_delay_ns = file.audio_delay_ns;
    let demux = make("matroskademux")?;
    if matches!(target, Target::Audio(_)) {
        // Whichever drives the demuxer (its own task in pull mode, the source's in push
        // mode), the thread makes sound.
        mark_sound(&src);
        mark_sound(&demux);
    }
    link_chain(pipeline, &[src, demux.clone()])?;

    let pipeline_weak = pipeline.downgrade();
    let target = Arc::new(Mutex::new(Some(target)));
    let pending = target.clone();
    demux.connect_pad_added(move |demux, pad| {
        let Some(pipeline) = pipeline_weak.upgrade() else {
            return;
        };
        let is_video = pad.name().starts_with("video");
        keep_container_time(pad);
        stop_past_end(pad, window);
        let Ok(mut t) = target.lock() else { return };
        let wanted = match &*t {
            Some(Target::Video(_)) => is_video,
            Some(Target::Audio(_)) => !is_video,
            None => false,
        };
        let result = match (wanted, t.take()) {
            (true, Some(Target::Video(video))) => {
                if skip_to_key {
                    drop_until_key_frame(pad);
                }
                link_video(&pipeline, pad, video, window)
            }
            (true, Some(Target::Audio(to))) => {
                mark_resumes_discont(pad, Arc::clone(&resumes_ns));
                present_codec_delay_earlier(pad, audio_delay_ns);
                link_audio(&pipeline, pad, &to, window, resumed)
            }
            (_, other) => {
                *t = other;
                link_fakesink(&pipeline, pad)
            }
        };
        if let Err(e) = result {
            gst::element_error!(
                demux,
                gst::StreamError::Failed,
                ("cannot decode {}: {}", pad.name(), e)
            );
        }
    });
    // A track the inspection saw but the demuxer did not expose: end its pad, or the
    // aggregator would wait for it forever.
    demux.connect_no_more_pads(move |_| {
        let Ok(mut t) = pending.lock() else { return };
        match t.take() {
            Some(Target::Video(VideoTarget { pad, .. }) | Target::Audio(pad)) => {
                pad.send_event(gst::event::Eos::new());
            }
            None => {}
        }
    });
    Ok(())
}

/// Marks the first packet after each damaged region cut out of the file as a discontinuity.
/// The cut loses packets, and a hole shorter than the mixer's alignment threshold (40 ms,
/// there for browsers' jittery packet times) would be closed up, everything after it that
/// much early (a lost 20 ms packet: every sound after the damage 20 ms early). With the
/// flag, the decoder passes it on and the mixer places the sound by its time again.
fn mark_resumes_discont(pad: &gst::Pad, resumes_ns: Arc<[i64]>) {
    if resumes_ns.is_empty() {
        return;
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let i = next.load(std::sync::atomic::Ordering::Relaxed);
        let Some(&resume) = resumes_ns.get(i) else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(at) = info
            .buffer()
            .and_then(|b| b.pts())
            .map(|t| t.nseconds() as i64)
        else {
            return gst::PadProbeReturn::Ok;
        };
        if at < resume {
            return gst::PadProbeReturn::Ok;
        }
        if let Some(buffer) = info.buffer_mut() {
            buffer.make_mut().set_flags(gst::BufferFlags::DISCONT);
        }
        // Every resume point this packet reached is dealt with (one flag for several).
        let passed = resumes_ns.iter().filter(|&&r| r <= at).count();
        next.store(passed.max(i + 1), std::sync::atomic::Ordering::Relaxed);
        gst::PadProbeReturn::Ok
    });
}

/// A file with a CodecDelay stamps each packet at the start of its decoded sound, which
/// plays that much earlier (the first packet's priming, clipped by the demuxer, fills the
/// difference). From the start of the file the mixer follows the packets as one continuous
/// sound from the clipped first one and gets this right; where it goes by a packet's own
/// time (a window read from the middle of the file, the sound after a mute) the sound came
/// the CodecDelay late (6.5 ms in Firefox's captures). Every packet is stamped that much
/// earlier (the first, at 0, stays there: what the delay covers is clipped off it).
fn present_codec_delay_earlier(pad: &gst::Pad, delay_ns: u64) {
    if delay_ns == 0 {
        return;
    }
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(buffer) = info.buffer_mut()
            && let Some(pts) = buffer.pts()
        {
            let earlier = gst::ClockTime::from_nseconds(pts.nseconds().saturating_sub(delay_ns));
            buffer.make_mut().set_pts(earlier);
        }
        gst::PadProbeReturn::Ok
    });
}

fn link_fakesink(pipeline: &gst::Pipeline, pad: &gst::Pad) -> Result<()> {
    let sink = make("fakesink")?;
    sink.set_property("sync", false);
    pipeline.add(&sink).map_err(|e| gst_err("building", e))?;
    sink.sync_state_with_parent()
        .map_err(|e| gst_err("starting", e))?;
    let sink_pad = sink
        .static_pad("sink")
        .ok_or_else(|| gst_err("linking", "fakesink"))?;
    pad.link(&sink_pad).map_err(|e| gst_err("linking", e))?;
    Ok(())
}

/// Adds `chain` while running, links `from` into its head and its tail into `to`.
fn attach(
    pipeline: &gst::Pipeline,
    from: &gst::Pad,
    chain: &[gst::Element],
    to: &gst::Pad,
    window: Window,
) -> Result<()> {
    pipeline
        .add_many(chain)
        .map_err(|e| gst_err("building", e))?;
    gst::Element::link_many(chain).map_err(|e| gst_err("linking", e))?;
    let head = chain[0]
        .static_pad("sink")
        .ok_or_else(|| gst_err("linking", "no sink pad"))?;
    let tail = chain[chain.len() - 1]
        .static_pad("src")
        .ok_or_else(|| gst_err("linking", "no src pad"))?;
    hold_to_window(&tail, window);
    tail.link(to)
        .map_err(|e| gst_err("linking into the mixer", e))?;
    for e in chain {
        e.sync_state_with_parent()
            .map_err(|e| gst_err("starting", e))?;
    }
    from.link(&head)
        .map_err(|e| gst_err("linking demuxer", e))?;
    Ok(())
}

/// decoder [! textoverlay] ! videoconvert ! capsfilter, into the canvas.
///
/// The decoded picture goes to the canvas as it is (converted only where its colour
/// description differs from the output's; VP8's already matches): the canvas scales it
/// straight into its place in the output frame, whatever the layout at that moment.
fn link_video(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    video: VideoTarget,
    window: Window,
) -> Result<()> {
    let mut chain = Vec::new();
    match video.codec {
        Codec::Vp8 => chain.push(decoder("vp8dec", window)?),
        Codec::Vp9 => chain.push(decoder("vp9dec", window)?),
        Codec::H264 => {
            chain.push(make("h264parse")?);
            chain.push(decoder("avdec_h264", window)?);
        }
        Codec::Opus => return Err(gst_err("video branch", "opus is not a video codec")),
    }
    if let Some(label) = &video.label {
        let text = make("textoverlay")?;
        text.set_property("text", label);
        text.set_property_from_str("valignment", "bottom");
        text.set_property_from_str("halignment", "left");
        text.set_property("font-desc", "Sans 20");
        chain.push(text);
    }
    chain.push(make("videoconvert")?);
    chain.push(caps_filter(i420_in_colours().build())?);
    attach(pipeline, pad, &chain, &video.pad, window)
}

/// A decoder that conceals damaged frames (drops them: the picture holds, the sound is
/// silent there) or fails on the first, as the window says.
fn decoder(factory: &str, window: Window) -> Result<gst::Element> {
    let dec = make(factory)?;
    if dec.has_property("max-errors") {
        dec.set_property("max-errors", window.max_errors);
    }
    Ok(dec)
}

fn link_audio(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    target: &gst::Pad,
    window: Window,
    resumed: bool,
) -> Result<()> {
    // opusparse: browsers declare Opus at 44.1 kHz in the container, which opusdec refuses;
    // the parser takes the rate from the stream itself. Mono and stereo Opus (all that
    // browsers send) is decoded by mosaic's own decoder, surround by GStreamer's.
    let caps = pad.current_caps();
    let dec = decoder(crate::opusdec::factory_for(caps.as_deref()), window)?;
    if resumed && dec.has_property("skip-priming") {
        // Read from a cluster in the middle of the file: its first packet holds no priming.
        dec.set_property("skip-priming", false);
    }
    let chain = [
        make("opusparse")?,
        dec,
        make("audioconvert")?,
        make("audioresample")?,
    ];
    attach(pipeline, pad, &chain, target, window)
}
