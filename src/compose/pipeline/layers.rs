//! The canvas's layers and the mixer's inputs: exact-length base layers, a placeholder per
//! stream, one branch per segment file; and where each layer is, frame by frame, as the plan
//! says. A run without a canvas (sound only, or a stitch) or without a mixer (a chunk's
//! picture) leaves out the branches it would feed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;

use super::inputs::{SegmentBranch, VideoTarget, add_segment};
use super::*;

/// Pad properties of a layer: x, y, width, height, shown, z-order.
type PadState = (i32, i32, i32, i32, bool, u32);

/// The z-order of a stream's layers: a tile's own z first, then the stream, placeholder
/// below video.
fn zorder(tile_z: u32, stream: usize, video: bool) -> u32 {
    tile_z * 1_000 + (stream as u32) * 2 + 1 + u32::from(video)
}

/// A canvas pad and when it shows.
pub(super) struct Layer {
    pad: gst::glib::WeakRef<gst::Pad>,
    stream: usize,
    pub(super) visible: Spans,
    pub(super) video: bool,
    /// The media file a video layer shows.
    pub(super) file: Option<String>,
    /// A video layer: a decoded frame has reached the canvas.
    pub(super) decoded: AtomicBool,
    /// The last values set, to touch properties only on change.
    last: Mutex<Option<PadState>>,
}

impl Layer {
    fn new(pad: &gst::Pad, stream: usize, visible: Spans, file: Option<String>) -> Layer {
        Layer {
            pad: pad.downgrade(),
            stream,
            visible,
            video: file.is_some(),
            file,
            decoded: AtomicBool::new(false),
            last: Mutex::new(None),
        }
    }

    /// Planned to show video at `t_ms`, but nothing could be decoded (yet): its stream's
    /// placeholder stands in.
    fn failing_at(&self, t_ms: i64) -> bool {
        self.video && self.visible.contains(t_ms) && !self.decoded.load(Ordering::Relaxed)
    }
}

/// Adds every source: the base layers, the placeholders and one branch per segment file.
/// Returns the canvas's layers (none without a canvas).
pub(super) fn add_sources(
    pipeline: &gst::Pipeline,
    input: &PipelineInput<'_>,
    canvas: Option<&gst::Element>,
    mixer: Option<&gst::Element>,
) -> Result<Vec<Arc<Layer>>> {
    let plan = input.plan;
    let mut layers: Vec<Arc<Layer>> = Vec::new();
    if let Some(comp) = canvas {
        add_base_video(pipeline, comp, plan, plan.frames())?;
        for (i, stream) in plan.streams.iter().enumerate() {
            // A stream with video also gets one when concealing: it stands in for video
            // that turns out not to decode.
            let stands_in = !input.strict && stream.segments.iter().any(|s| s.has_video);
            if stream.placeholder_visible.intervals().is_empty() && !stands_in {
                continue;
            }
            let pad = add_placeholder(pipeline, comp, plan, &stream.label, plan.frames())?;
            layers.push(Arc::new(Layer::new(
                &pad,
                i,
                stream.placeholder_visible.clone(),
                None,
            )));
        }
    }
    if let Some(mixer) = mixer {
        add_base_audio(pipeline, mixer, plan)?;
    }
    for (i, stream) in plan.streams.iter().enumerate() {
        for seg in &stream.segments {
            let label = input.labels.then(|| stream.label.clone());
            if let Some(layer) = add_segment_file(pipeline, input, canvas, mixer, i, seg, label)? {
                layers.push(layer);
            }
        }
    }
    Ok(layers)
}

/// One segment file's branches into the canvas and the mixer; its video layer, if it shows.
fn add_segment_file(
    pipeline: &gst::Pipeline,
    input: &PipelineInput<'_>,
    canvas: Option<&gst::Element>,
    mixer: Option<&gst::Element>,
    stream: usize,
    seg: &crate::compose::plan::SegmentLayer,
    label: Option<String>,
) -> Result<Option<Arc<Layer>>> {
    let Some(file) = (input.media)(&seg.filename) else {
        return Err(Error::MissingFile {
            filename: seg.filename.clone(),
        });
    };
    let (vcodec, acodec) = (file.video, file.audio);
    let want_video = canvas.is_some() && seg.has_video && vcodec.is_some();
    let want_audio = mixer.is_some() && seg.has_audio && acodec.is_some();
    if !want_video && !want_audio {
        return Ok(None);
    }
    let mut layer = None;
    let video_pad = match (canvas, want_video) {
        (Some(comp), true) => {
            let pad = request_pad(comp)?;
            // Frames arrive as decoded, in the output's colours (see link_video); the canvas
            // scales each into its tile.
            pad.set_property("alpha", 0.0f64);
            // Each frame from the output frame nearest its time (see video_delay_ns); the
            // plan still shows a layer only from the output frame at or after its first frame
            // (after a gap, or at its start), so a shown layer always has its frame.
            pad.set_offset(ms_to_ns(seg.offset_ms) + input.plan.video_delay_ns());
            // A file whose video ends before its sound (the camera turned off for good) keeps
            // its last frame after the end of its video: the plan freezes it, then shows the
            // placeholder. (At EOS the aggregator would drop it, and the tile went black.)
            pad.set_property("repeat-after-eos", true);
            let shows = Arc::new(Layer::new(
                &pad,
                stream,
                seg.video_visible.clone(),
                Some(seg.filename.clone()),
            ));
            let seen = shows.clone();
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                seen.decoded.store(true, Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            });
            layer = Some(shows);
            Some(pad)
        }
        _ => None,
    };
    let audio_pad = if let (Some(mixer), true) = (mixer, want_audio) {
        let pad = request_pad(mixer)?;
        pad.set_offset(ms_to_ns(seg.offset_ms));
        Some(pad)
    } else {
        None
    };
    let duration_ns = ms_to_ns(input.plan.duration_ms());
    add_segment(
        pipeline,
        &file,
        SegmentBranch {
            video: video_pad.map(|pad| VideoTarget {
                pad,
                codec: vcodec.unwrap_or(Codec::Vp8),
                label,
            }),
            audio: audio_pad,
            start_ns: (-ms_to_ns(seg.offset_ms)).max(0),
            end_ns: duration_ns - ms_to_ns(seg.offset_ms),
            video_delay_ns: input.plan.video_delay_ns(),
            frame_ns: 1_000_000_000 / i64::from(input.plan.fps.max(1)),
            max_errors: if input.strict { 0 } else { -1 },
        },
    )?;
    Ok(layer)
}

/// Places every layer, frame by frame, as the plan says: the canvas asks before it composes
/// each output frame.
pub(super) fn follow_plan(comp: &gst::Element, plan: &Plan, layers: Vec<Arc<Layer>>) {
    comp.set_property("emit-signals", true);
    let streams = plan.streams.clone();
    comp.connect("samples-selected", false, move |args| {
        let pts = args.get(2).and_then(|v| v.get::<u64>().ok()).unwrap_or(0);
        let t_ms = i64::try_from(pts / 1_000_000).unwrap_or(i64::MAX);
        let failing: Vec<bool> = (0..streams.len())
            .map(|i| layers.iter().any(|l| l.stream == i && l.failing_at(t_ms)))
            .collect();
        for layer in &layers {
            let stand_in = !layer.video && failing[layer.stream];
            apply(layer, &streams[layer.stream], t_ms, stand_in);
        }
        None
    });
}

/// Sets one layer's pad properties for output time `t_ms`.
fn apply(layer: &Layer, stream: &crate::compose::plan::StreamLayer, t_ms: i64, stand_in: bool) {
    let Some(pad) = layer.pad.upgrade() else {
        return;
    };
    let tile = stream.tile_at(t_ms);
    let shown = tile.is_some() && (layer.visible.contains(t_ms) || stand_in);
    let (x, y, w, h, z) = match tile {
        Some(t) => (
            t.rect.x,
            t.rect.y,
            t.rect.w.max(1),
            t.rect.h.max(1),
            zorder(t.z, layer.stream, layer.video),
        ),
        None => (0, 0, 1, 1, zorder(0, layer.stream, layer.video)),
    };
    let now = (x, y, w, h, shown, z);
    let Ok(mut last) = layer.last.lock() else {
        return;
    };
    if *last == Some(now) {
        return;
    }
    pad.set_property("xpos", x);
    pad.set_property("ypos", y);
    pad.set_property("width", w);
    pad.set_property("height", h);
    pad.set_property("zorder", z);
    pad.set_property("alpha", if shown { 1.0f64 } else { 0.0 });
    *last = Some(now);
}

/// A tiny black layer of exactly the output's length: the output lasts until the last
/// `stopTimeOffset` even when the files end earlier.
fn add_base_video(
    pipeline: &gst::Pipeline,
    comp: &gst::Element,
    plan: &Plan,
    frames: u64,
) -> Result<()> {
    let src = make("videotestsrc")?;
    src.set_property_from_str("pattern", "black");
    src.set_property("num-buffers", i32::try_from(frames).unwrap_or(i32::MAX));
    let caps = caps_filter(i420_caps(16, 16, plan.fps))?;
    link_chain(pipeline, &[src, caps.clone()])?;
    let pad = link_into(&caps, comp)?;
    pad.set_property("zorder", 0u32);
    Ok(())
}

/// Silence of exactly the output's length, so the audio lasts as long as the video.
fn add_base_audio(pipeline: &gst::Pipeline, mixer: &gst::Element, plan: &Plan) -> Result<()> {
    let src = make("audiotestsrc")?;
    mark_sound(&src);
    src.set_property_from_str("wave", "silence");
    src.set_property("samplesperbuffer", 480i32);
    let buffers = (plan.duration_ms() as u64).div_ceil(10);
    src.set_property("num-buffers", i32::try_from(buffers).unwrap_or(i32::MAX));
    let caps = caps_filter(mixed_audio_caps())?;
    link_chain(pipeline, &[src, caps.clone()])?;
    link_into(&caps, mixer)?;
    Ok(())
}

/// The placeholder: a dark tile with the stream's label, rendered once and repeated.
fn add_placeholder(
    pipeline: &gst::Pipeline,
    comp: &gst::Element,
    plan: &Plan,
    label: &str,
    frames: u64,
) -> Result<gst::Pad> {
    let src = make("videotestsrc")?;
    src.set_property_from_str("pattern", "solid-color");
    src.set_property("foreground-color", 0xFF30_3040u32);
    src.set_property("num-buffers", 1i32);
    let caps = caps_filter(i420_caps(640, 360, plan.fps))?;
    let text = make("textoverlay")?;
    text.set_property("text", label);
    text.set_property_from_str("valignment", "center");
    text.set_property_from_str("halignment", "center");
    text.set_property("font-desc", "Sans Bold 28");
    text.set_property("shaded-background", false);
    let freeze = make("imagefreeze")?;
    freeze.set_property("num-buffers", i32::try_from(frames).unwrap_or(i32::MAX));
    let rate = caps_filter(
        gst::Caps::builder("video/x-raw")
            .field("framerate", gst::Fraction::new(plan.fps as i32, 1))
            .build(),
    )?;
    link_chain(pipeline, &[src, caps, text, freeze, rate.clone()])?;
    let pad = link_into(&rate, comp)?;
    pad.set_property("stretch", true);
    pad.set_property("alpha", 0.0f64);
    Ok(pad)
}
