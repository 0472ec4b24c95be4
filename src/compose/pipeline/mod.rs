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
//!
//! Where each part lives: `source` (a demuxer's bytes: a file, a ZIP's entry, a file resumed
//! at a cluster), `inputs` (demuxers, decoders), `layers` (what enters the canvas and the
//! mixer, placed frame by frame), `canvas` (mosaic's compositor), `outputs` (encoders, the
//! sound's limiter and meter), `errors` (what a failure on the bus means), `priority` (the
//! sound's threads), `cuts` (`--trim`: what leaves the canvas and the mixer, less the dead
//! time), `stitch` (a chunked compose's pictures joined, see [`Parts`]).

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
    /// Where reading resumes after each damaged region cut out of the file (container ns):
    /// the sound there follows a hole.
    pub resumes_ns: Arc<[i64]>,
    /// The audio track's CodecDelay (ns, 0 for none): its packets present this much earlier
    /// than their timestamps.
    pub audio_delay_ns: u64,
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

/// Which of the output's parts a run makes.
#[derive(Debug, Clone, Copy)]
pub enum Parts<'a> {
    /// Picture and sound, as the format has them.
    Whole,
    /// The picture alone, into Matroska: one chunk of a chunked compose (see
    /// [`crate::compose::chunks`]). Its codec and encoder settings are the format's.
    Picture,
    /// The sound, and for the picture these chunks' frames joined without re-encoding.
    Stitch(&'a [PathBuf]),
}

/// HLS: where the MPEG-TS segments go and who hears of each one closed.
pub struct Segments<'a> {
    /// `splitmuxsink`'s location: a path with one `%05d` (the segment's index).
    pub pattern: String,
    /// A segment ends at the first key frame this long after its start.
    pub target_ns: u64,
    /// Where the run's time 0 is on the output's timeline (a chunk's start).
    pub offset_ns: u64,
    /// Where the run ends on the output's timeline: the last segment's end.
    pub end_ns: u64,
    /// Called with each finished segment's file and its `[start, end)` (ns, output time).
    pub closed: &'a (dyn Fn(&Path, u64, u64) -> Result<()> + Sync),
}

/// What the pipeline needs besides the plan.
pub struct PipelineInput<'a> {
    /// With [`OutputFormat::Hls`]: the segments' place (`output` is then unused).
    pub segments: Option<&'a Segments<'a>>,
    pub plan: &'a Plan,
    pub parts: Parts<'a>,
    /// What `--trim` cuts of the plan's window (the identity without it).
    pub time_map: &'a Arc<crate::compose::trim::TimeMap>,
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

/// Runs the whole composition and blocks until it has finished (or failed, or was cancelled).
pub fn run(input: &PipelineInput<'_>) -> Result<PipelineOutcome> {
    gst::init().map_err(|e| gst_err("initialising GStreamer", e))?;
    register_plugins()?;
    let plan = input.plan;
    let pipeline = gst::Pipeline::new();
    let running = Running(pipeline.clone());
    let has_video = input.format.has_video();

    let mux = add_muxer(&pipeline, input)?;
    let frame_counter = Arc::new(AtomicU64::new(0));
    let (canvas, feeder) = match input.parts {
        Parts::Whole | Parts::Picture if has_video => (
            Some(build_video_out(
                &pipeline,
                plan,
                input,
                &mux,
                &frame_counter,
            )?),
            None,
        ),
        Parts::Stitch(chunks) if has_video => (
            None,
            Some(stitch::add_video(
                &pipeline,
                input,
                &mux,
                chunks,
                &frame_counter,
            )?),
        ),
        _ => (None, None),
    };
    let meter = Arc::new(Mutex::new(super::meter::Meter::new(2, 48_000)));
    // With a picture to encode, the sound's threads take the cores its encoder leaves idle.
    let sound_threads = (canvas.is_some()).then(SoundThreads::new).flatten();
    let mixer = match input.parts {
        Parts::Picture => None,
        _ => Some(build_audio_out(
            &pipeline,
            plan,
            input,
            &mux,
            &meter,
            sound_threads.as_ref(),
        )?),
    };

    let layers = layers::add_sources(&pipeline, input, canvas.as_ref(), mixer.as_ref())?;
    let video_layers: Vec<Arc<Layer>> = layers.iter().filter(|l| l.video).cloned().collect();
    if let Some(comp) = &canvas {
        layers::follow_plan(comp, plan, layers);
    }

    let played = play(&pipeline, input, sound_threads.as_ref());
    drop(running);
    if let Some(feeder) = feeder {
        // The chunks' reader ends with the pipeline; what it found wrong comes first.
        feeder.finish()?;
    }
    played?;
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

/// The muxer for the output's format, writing into the output file.
fn add_muxer(pipeline: &gst::Pipeline, input: &PipelineInput<'_>) -> Result<gst::Element> {
    if let Some(segments) = input.segments {
        let split = make("splitmuxsink")?;
        split.set_property("muxer", make("mpegtsmux")?);
        split.set_property("location", &segments.pattern);
        split.set_property("max-size-time", segments.target_ns);
        split.set_property("send-keyframe-requests", false);
        pipeline.add(&split).map_err(|e| gst_err("building", e))?;
        return Ok(split);
    }
    let mux = match input.format {
        // A chunk: its picture alone, in any codec, with its timestamps.
        _ if matches!(input.parts, Parts::Picture) => make("matroskamux")?,
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
        OutputFormat::Hls => {
            return Err(gst_err(
                "building",
                "an HLS output needs its segments' place",
            ));
        }
    };
    let sink = make("filesink")?;
    sink.set_property("location", input.output.to_string_lossy().to_string());
    pipeline
        .add_many([&mux, &sink])
        .map_err(|e| gst_err("building", e))?;
    mux.link(&sink).map_err(|e| gst_err("linking muxer", e))?;
    Ok(mux)
}

/// Plays the pipeline to its end, watching the bus: progress, errors, cancelling.
fn play(
    pipeline: &gst::Pipeline,
    input: &PipelineInput<'_>,
    sound_threads: Option<&Arc<SoundThreads>>,
) -> Result<()> {
    let duration_ms = (input.plan.duration_ms() - input.time_map.cut_ms()).max(0) as u64;
    let bus = pipeline
        .bus()
        .ok_or_else(|| gst_err("pipeline", "no bus"))?;
    if let Some(threads) = sound_threads {
        threads.watch(&bus);
    }
    pipeline.set_state(gst::State::Playing).map_err(|_| {
        first_error(pipeline, input.name_of)
            .unwrap_or_else(|| gst_err("starting the pipeline", "state change failed"))
    })?;
    let mut watch = SegmentWatch::default();
    loop {
        if input.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(Error::Cancelled);
        }
        match bus.timed_pop(gst::ClockTime::from_mseconds(200)) {
            Some(msg) => match msg.view() {
                gst::MessageView::Eos(..) => break,
                gst::MessageView::Error(err) => return Err(bus_error(err, input.name_of)),
                gst::MessageView::Element(e) => {
                    if let (Some(segments), Some(s)) = (input.segments, e.structure()) {
                        watch.message(segments, s)?;
                    }
                }
                _ => {}
            },
            None => {
                if let (Some(progress), Some(pos)) =
                    (input.progress, pipeline.query_position::<gst::ClockTime>())
                {
                    progress(pos.mseconds(), duration_ms);
                }
            }
        }
    }
    if let Some(segments) = input.segments {
        watch.deliver(segments, segments.end_ns)?;
    }
    if let Some(progress) = input.progress {
        progress(duration_ms, duration_ms);
    }
    Ok(())
}

/// Segments as `splitmuxsink` opens and closes them. A closed segment's end is the next
/// one's start (its own message gives its last frame's start), or the run's end.
#[derive(Default)]
struct SegmentWatch {
    opened_ns: u64,
    /// A closed segment waiting for its end: its file and start.
    closed: Option<(PathBuf, u64)>,
}

impl SegmentWatch {
    /// `splitmuxsink`'s word that a segment opened or closed.
    fn message(&mut self, segments: &Segments<'_>, s: &gst::StructureRef) -> Result<()> {
        let at = s
            .get::<gst::ClockTime>("running-time")
            .map_or(0, |t| t.nseconds());
        match s.name().as_str() {
            "splitmuxsink-fragment-opened" => {
                self.deliver(segments, at)?;
                self.opened_ns = at;
            }
            "splitmuxsink-fragment-closed" => {
                let location: String = s
                    .get("location")
                    .map_err(|_| gst_err("writing HLS", "a segment without its location"))?;
                self.closed = Some((PathBuf::from(location), self.opened_ns));
            }
            _ => {}
        }
        Ok(())
    }

    /// Hands the closed segment, ending at `end_ns`, to the caller.
    fn deliver(&mut self, segments: &Segments<'_>, end_ns: u64) -> Result<()> {
        match self.closed.take() {
            Some((file, start)) => (segments.closed)(&file, start, end_ns),
            None => Ok(()),
        }
    }
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

mod canvas;
mod cuts;
mod enlarge;
mod errors;
mod inputs;
mod layers;
mod letterbox;
mod outputs;
mod priority;
mod source;
mod stitch;
mod window;
use errors::{bus_error, first_error};
use layers::Layer;
use outputs::{build_audio_out, build_video_out};
use priority::{SOUND, SoundThreads, mark_sound};
