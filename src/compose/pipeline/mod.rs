//! The one-pass GStreamer pipeline that composes an archive (the edge that runs GStreamer).
//!
//! ```text
//! video, per segment file:  filesrc ! matroskademux ! decoder [! textoverlay]
//!                             ! videoconvert ! capsfilter ──────────────────┐
//! black base layer:         videotestsrc (exact length) ─────────────────────┤
//! placeholder per stream:   videotestsrc ! textoverlay ! imagefreeze ────────┤
//!                           mosaiccanvas ! capsfilter ! queue ! encoder ─────┐
//! audio, per segment file:  filesrc ! matroskademux ! opusparse              │
//!                             ! mosaicopusdec ! audioconvert                 │
//!                             ! audioresample ───────────────────────────┐   │
//! silence:                  audiotestsrc (exact length) ─────────────────┤   │
//!                           audiomixer ! capsfilter (limiter)            │   │
//!                             [! audioloudnorm at 192 kHz] ! (meter)     │   │
//!                             ! audioconvert ! queue ! encoder [! queue] ┴─ muxer ! filesink
//! ```
//!
//! Every segment is decoded once and encoded once. Layout changes, placeholders and freeze
//! limits are steps of canvas pad properties, applied from the pure [`Plan`] in the
//! canvas's `samples-selected` signal, right before each output frame is drawn.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;

use super::limiter::{LOOKAHEAD_FRAMES, Limiter};
use super::plan::{Plan, Spans};
use super::{OutputFormat, Speed};
use crate::error::{Error, Result};
use crate::inspect::Codec;

/// A media file as GStreamer reads it: a file on disk, or a byte range of one (a ZIP's
/// stored entry, read in place), and the codecs of its video and audio tracks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaFile {
    pub path: PathBuf,
    /// `(offset, length)` inside `path`; `None`: the whole file.
    pub range: Option<(u64, u64)>,
    pub video: Option<Codec>,
    pub audio: Option<Codec>,
    /// Where its clusters begin, to start reading late with `--from`; `None` where the
    /// offsets do not hold (a file copied without its damaged regions).
    pub clusters: Option<Arc<crate::inspect::clusters::ClusterIndex>>,
}

impl MediaFile {
    /// A name for this file alone (messages map it back to the media file's name): the
    /// path, with `@offset` for a range.
    pub fn id(&self) -> PathBuf {
        match self.range {
            None => self.path.clone(),
            Some((offset, _)) => PathBuf::from(format!("{}@{offset}", self.path.display())),
        }
    }
}

/// Pad properties of a layer: x, y, width, height, shown, z-order.
type PadState = (i32, i32, i32, i32, bool, u32);

/// What the pipeline needs besides the plan.
pub struct PipelineInput<'a> {
    pub plan: &'a Plan,
    /// Extracted media by file name.
    pub media: &'a dyn Fn(&str) -> Option<MediaFile>,
    pub format: OutputFormat,
    pub speed: Speed,
    pub quality: u32,
    /// Frames between video key frames (seek points).
    pub gop_frames: u32,
    pub labels: bool,
    /// Normalise the mix to this integrated loudness (LUFS), EBU R128.
    pub loudness: Option<f64>,
    /// The media file's name for a path of `media` (for messages).
    pub name_of: &'a dyn Fn(&Path) -> Option<String>,
    /// Fail on the first frame that cannot be decoded, instead of concealing it (the tile
    /// holds the last good frame, the sound is silent there).
    pub strict: bool,
    /// Where the pipeline's own temporary files go (mp4mux's fast-start file).
    pub work_dir: &'a Path,
    pub output: &'a Path,
    pub progress: Option<&'a (dyn Fn(u64, u64) + Sync)>,
    pub cancel: Option<&'a AtomicBool>,
}

/// Facts of a finished run.
pub struct PipelineOutcome {
    pub frames: u64,
    /// The mix as encoded: integrated loudness and true peak.
    pub loudness: super::meter::Loudness,
    /// Files whose video was to show but of which no frame could be decoded.
    pub undecodable: Vec<String>,
}

/// Registers the elements mosaic carries inside its binary (gst-plugins-rs' audiofx:
/// `audioloudnorm`; its own `mosaiccanvas` and `mosaicopusdec`), once per process.
fn register_plugins() -> Result<()> {
    static REGISTERED: std::sync::OnceLock<std::result::Result<(), String>> =
        std::sync::OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            gstrsaudiofx::plugin_register_static().map_err(|e| e.to_string())?;
            canvas::register().map_err(|e| e.to_string())?;
            crate::opusdec::register().map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| gst_err("registering mosaic's own elements", e))
}

fn gst_err(context: &str, e: impl std::fmt::Display) -> Error {
    Error::Gstreamer(format!("{context}: {e}"))
}

fn make(factory: &str) -> Result<gst::Element> {
    gst::ElementFactory::make(factory).build().map_err(|_| {
        Error::Gstreamer(format!(
            "element {factory:?} is missing; install the GStreamer plugin packages (scripts/install-deps.sh)"
        ))
    })
}

fn ms_to_ns(ms: i64) -> i64 {
    ms.saturating_mul(1_000_000)
}

/// Sets the pipeline to `Null` on every exit path.
struct Running(gst::Pipeline);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.set_state(gst::State::Null);
    }
}

/// The z-order of a stream's layers: a tile's own z first, then the stream, placeholder
/// below video.
fn zorder(tile_z: u32, stream: usize, video: bool) -> u32 {
    tile_z * 1_000 + (stream as u32) * 2 + 1 + u32::from(video)
}

/// A canvas pad and when it shows.
struct Layer {
    pad: gst::glib::WeakRef<gst::Pad>,
    stream: usize,
    visible: Spans,
    video: bool,
    /// The media file a video layer shows.
    file: Option<String>,
    /// A video layer: a decoded frame has reached the canvas.
    decoded: AtomicBool,
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

/// Runs the whole composition and blocks until it has finished (or failed, or was cancelled).
pub fn run(input: &PipelineInput<'_>) -> Result<PipelineOutcome> {
    gst::init().map_err(|e| gst_err("initialising GStreamer", e))?;
    register_plugins()?;
    let plan = input.plan;
    let pipeline = gst::Pipeline::new();
    let running = Running(pipeline.clone());
    let duration_ns = ms_to_ns(plan.duration_ms());
    let frames = plan.frames();
    let has_video = input.format.has_video();

    // Sink side: encoders, muxer, file.
    let mux = match input.format {
        OutputFormat::Mp4 | OutputFormat::M4a => {
            let m = make("mp4mux")?;
            m.set_property("faststart", true);
            m.set_property(
                "faststart-file",
                input
                    .work_dir
                    .join("faststart.mdat")
                    .to_string_lossy()
                    .to_string(),
            );
            m
        }
        OutputFormat::Webm => make("webmmux")?,
        OutputFormat::Mkv => make("matroskamux")?,
        OutputFormat::Opus => make("oggmux")?,
    };
    let sink = make("filesink")?;
    sink.set_property("location", input.output.to_string_lossy().to_string());
    pipeline
        .add_many([&mux, &sink])
        .map_err(|e| gst_err("building", e))?;
    mux.link(&sink).map_err(|e| gst_err("linking muxer", e))?;

    let frame_counter = Arc::new(AtomicU64::new(0));
    let canvas = if has_video {
        Some(build_video_out(
            &pipeline,
            plan,
            input,
            &mux,
            &frame_counter,
        )?)
    } else {
        None
    };
    let meter = Arc::new(Mutex::new(super::meter::Meter::new(2, 48_000)));
    // With a picture to encode, the sound's threads take the cores its encoder leaves idle.
    let sound_threads = has_video.then(SoundThreads::new).flatten();
    let mixer = build_audio_out(&pipeline, plan, input, &mux, &meter, sound_threads.as_ref())?;

    // Sources: exact-length base layers, placeholders, one branch per segment file.
    let mut layers: Vec<Arc<Layer>> = Vec::new();
    if let Some(comp) = &canvas {
        add_base_video(&pipeline, comp, plan, frames)?;
        for (i, stream) in plan.streams.iter().enumerate() {
            // A stream with video also gets one when concealing: it stands in for video
            // that turns out not to decode.
            let stands_in = !input.strict && stream.segments.iter().any(|s| s.has_video);
            if stream.placeholder_visible.intervals().is_empty() && !stands_in {
                continue;
            }
            let pad = add_placeholder(&pipeline, comp, plan, &stream.label, frames)?;
            layers.push(Arc::new(Layer::new(
                &pad,
                i,
                stream.placeholder_visible.clone(),
                None,
            )));
        }
    }
    add_base_audio(&pipeline, &mixer, plan)?;
    for (i, stream) in plan.streams.iter().enumerate() {
        for seg in &stream.segments {
            let Some(file) = (input.media)(&seg.filename) else {
                return Err(Error::MissingFile {
                    filename: seg.filename.clone(),
                });
            };
            let (vcodec, acodec) = (file.video, file.audio);
            let want_video = canvas.is_some() && seg.has_video && vcodec.is_some();
            let want_audio = seg.has_audio && acodec.is_some();
            if !want_video && !want_audio {
                continue;
            }
            let video_pad = match (&canvas, want_video) {
                (Some(comp), true) => {
                    let pad = request_pad(comp)?;
                    // Frames arrive as decoded, in the output's colours (see link_video);
                    // the canvas scales each into its tile.
                    pad.set_property("alpha", 0.0f64);
                    pad.set_offset(ms_to_ns(seg.offset_ms));
                    let layer = Arc::new(Layer::new(
                        &pad,
                        i,
                        seg.video_visible.clone(),
                        Some(seg.filename.clone()),
                    ));
                    let seen = layer.clone();
                    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                        seen.decoded.store(true, Ordering::Relaxed);
                        gst::PadProbeReturn::Ok
                    });
                    layers.push(layer);
                    Some(pad)
                }
                _ => None,
            };
            let audio_pad = if want_audio {
                let pad = request_pad(&mixer)?;
                pad.set_offset(ms_to_ns(seg.offset_ms));
                Some(pad)
            } else {
                None
            };
            let label = input.labels.then(|| stream.label.clone());
            add_segment(
                &pipeline,
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
                    max_errors: if input.strict { 0 } else { -1 },
                },
            )?;
        }
    }

    // Layer properties, frame by frame, from the plan.
    let video_layers: Vec<Arc<Layer>> = layers.iter().filter(|l| l.video).cloned().collect();
    if let Some(comp) = &canvas {
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

    // Go, and watch the bus.
    let bus = pipeline
        .bus()
        .ok_or_else(|| gst_err("pipeline", "no bus"))?;
    if let Some(threads) = &sound_threads {
        threads.watch(&bus);
    }
    pipeline.set_state(gst::State::Playing).map_err(|_| {
        first_error(&pipeline, input.name_of)
            .unwrap_or_else(|| gst_err("starting the pipeline", "state change failed"))
    })?;
    loop {
        if input.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(Error::Cancelled);
        }
        match bus.timed_pop(gst::ClockTime::from_mseconds(200)) {
            Some(msg) => match msg.view() {
                gst::MessageView::Eos(..) => break,
                gst::MessageView::Error(err) => return Err(bus_error(err, input.name_of)),
                _ => {}
            },
            None => {
                if let (Some(progress), Some(pos)) =
                    (input.progress, pipeline.query_position::<gst::ClockTime>())
                {
                    progress(pos.mseconds(), plan.duration_ms() as u64);
                }
            }
        }
    }
    if let Some(progress) = input.progress {
        progress(plan.duration_ms() as u64, plan.duration_ms() as u64);
    }
    drop(running);
    let mut undecodable: Vec<String> = video_layers
        .iter()
        .filter(|l| !l.visible.intervals().is_empty() && !l.decoded.load(Ordering::Relaxed))
        .filter_map(|l| l.file.clone())
        .collect();
    undecodable.dedup();
    let loudness = meter
        .lock()
        .map(|m| m.loudness())
        .map_err(|_| gst_err("metering", "a meter thread panicked"))?;
    Ok(PipelineOutcome {
        frames: frame_counter.load(Ordering::Relaxed),
        loudness,
        undecodable,
    })
}

/// A bus error as mosaic's error. A decoder, demuxer or parser failing on a file is bad
/// input (the file is damaged in a way inspection could not see), named by the file; any
/// other failure is ours.
fn bus_error(err: &gst::message::Error, name_of: &dyn Fn(&Path) -> Option<String>) -> Error {
    let who = err
        .src()
        .map(|s| s.path_string().to_string())
        .unwrap_or_else(|| "pipeline".into());
    let debug = err.debug().map(|d| d.to_string()).unwrap_or_default();
    let debug = debug.lines().last().unwrap_or_default().to_owned();
    let text = format!(
        "{}{}",
        err.error(),
        if debug.is_empty() {
            String::new()
        } else {
            format!(" ({debug})")
        }
    );
    let element = err
        .src()
        .and_then(|s| s.downcast_ref::<gst::Element>().cloned());
    let input_side = element.as_ref().is_some_and(|e| {
        e.factory().is_some_and(|f| {
            let klass = f.klass();
            ["Decoder", "Demuxer", "Parser"]
                .iter()
                .any(|k| klass.contains(k))
        })
    });
    if input_side && !text.contains("is missing") {
        let file = element
            .as_ref()
            .and_then(upstream_file)
            .and_then(|p| name_of(&p))
            .unwrap_or_else(|| who.clone());
        return Error::CorruptMedia {
            filename: file,
            reason: format!("cannot be decoded: {text}"),
        };
    }
    Error::Gstreamer(format!("{who}: {text}"))
}

/// The file an element reads from: the location of the `filesrc` upstream of it, or the
/// [`MediaFile::id`] in the name of the `appsrc` that reads a range.
fn upstream_file(element: &gst::Element) -> Option<PathBuf> {
    let mut current = element.clone();
    for _ in 0..32 {
        if current.factory().is_some_and(|f| f.name() == "filesrc") {
            let location: String = current.property("location");
            return Some(PathBuf::from(location));
        }
        if let Some(id) = source::range_source_id(&current) {
            return Some(id);
        }
        let peer = current.sink_pads().first()?.peer()?;
        current = peer.parent_element()?;
    }
    None
}

fn first_error(
    pipeline: &gst::Pipeline,
    name_of: &dyn Fn(&Path) -> Option<String>,
) -> Option<Error> {
    let bus = pipeline.bus()?;
    let msg = bus.pop_filtered(&[gst::MessageType::Error])?;
    match msg.view() {
        gst::MessageView::Error(err) => Some(bus_error(err, name_of)),
        _ => None,
    }
}

/// Sets one layer's pad properties for output time `t_ms`.
fn apply(layer: &Layer, stream: &super::plan::StreamLayer, t_ms: i64, stand_in: bool) {
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

/// Links `tail`'s src pad into a new sink pad of `aggregator`, and returns that pad.
fn link_into(tail: &gst::Element, aggregator: &gst::Element) -> Result<gst::Pad> {
    let pad = request_pad(aggregator)?;
    tail.static_pad("src")
        .ok_or_else(|| gst_err("linking", format!("{} has no src pad", tail.name())))?
        .link(&pad)
        .map_err(|e| {
            gst_err(
                &format!("linking {} into {}", tail.name(), aggregator.name()),
                e,
            )
        })?;
    Ok(pad)
}

fn request_pad(aggregator: &gst::Element) -> Result<gst::Pad> {
    aggregator
        .request_pad_simple("sink_%u")
        .ok_or_else(|| gst_err("requesting a pad", aggregator.name()))
}

fn link_chain(pipeline: &gst::Pipeline, chain: &[gst::Element]) -> Result<()> {
    pipeline
        .add_many(chain)
        .map_err(|e| gst_err("building", e))?;
    gst::Element::link_many(chain).map_err(|e| gst_err("linking", e))
}

fn caps_filter(caps: gst::Caps) -> Result<gst::Element> {
    let f = make("capsfilter")?;
    f.set_property("caps", caps);
    Ok(f)
}

fn queue(max_time: Duration) -> Result<gst::Element> {
    let q = make("queue")?;
    q.set_property("max-size-buffers", 0u32);
    q.set_property("max-size-bytes", 0u32);
    q.set_property("max-size-time", max_time.as_nanos() as u64);
    Ok(q)
}

/// The colour description of every layer and of the output. The canvas copies the bytes of
/// each layer as they are, so every layer is converted to this description on its own
/// branch (where the decoder's already matches, that conversion passes through).
const COLORIMETRY: &str = "bt601";
const CHROMA_SITE: &str = "jpeg";

/// Raw I420 video in mosaic's colours (every layer and the output).
fn i420_in_colours() -> gst::caps::Builder<gst::caps::NoFeature> {
    gst::Caps::builder("video/x-raw")
        .field("format", "I420")
        .field("colorimetry", COLORIMETRY)
        .field("chroma-site", CHROMA_SITE)
}

/// Raw I420 video of a size, at the plan's frame rate, square pixels, mosaic's colours.
fn i420_caps(width: i32, height: i32, fps: u32) -> gst::Caps {
    i420_in_colours()
        .field("width", width)
        .field("height", height)
        .field("framerate", gst::Fraction::new(fps as i32, 1))
        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
        .build()
}

fn mixed_audio_caps() -> gst::Caps {
    gst::Caps::builder("audio/x-raw")
        .field("format", "F32LE")
        .field("rate", 48_000i32)
        .field("channels", 2i32)
        .field("layout", "interleaved")
        .build()
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

mod canvas;
mod enlarge;
mod inputs;
mod letterbox;
mod outputs;
mod priority;
mod source;
use inputs::{SegmentBranch, VideoTarget, add_segment};
use outputs::{build_audio_out, build_video_out};
use priority::{SOUND, SoundThreads, mark_sound};
