//! Audio-only outputs of repair (the edge that runs GStreamer).
//!
//! The repaired Matroska file's audio is already continuous and aligned; this only changes
//! its wrapping: `opus` re-muxes the same packets into Ogg (no decode), `flac` and `wav`
//! decode them once. Sample positions are what a player that plays packets back to back
//! hears, which is where every sound was recorded.

use std::path::Path;
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};

/// The audio-only formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AudioFormat {
    /// Ogg Opus, the recorded packets themselves (no re-encode).
    Opus,
    /// FLAC, 48 kHz, lossless from the decoded Opus.
    Flac,
    /// WAV, 48 kHz 16-bit PCM.
    Wav,
}

impl AudioFormat {
    pub fn extension(self) -> &'static str {
        match self {
            AudioFormat::Opus => "opus",
            AudioFormat::Flac => "flac",
            AudioFormat::Wav => "wav",
        }
    }
}

fn gst_err(context: &str, e: impl std::fmt::Display) -> Error {
    Error::Gstreamer(format!("{context}: {e}"))
}

fn make(factory: &str) -> Result<gst::Element> {
    gst::ElementFactory::make(factory).build().map_err(|_| {
        Error::Gstreamer(format!("element {factory:?} is missing; install the GStreamer plugin packages (scripts/install-deps.sh)"))
    })
}

/// Writes the audio of the Matroska file `src` to `dest` as `format`.
pub fn convert(src: &Path, dest: &Path, format: AudioFormat) -> Result<()> {
    gst::init().map_err(|e| gst_err("initialising GStreamer", e))?;
    crate::opusdec::register().map_err(|e| gst_err("registering mosaicopusdec", e))?;
    let pipeline = gst::Pipeline::new();
    let filesrc = make("filesrc")?;
    filesrc.set_property("location", src.to_string_lossy().to_string());
    let demux = make("matroskademux")?;
    let mut tail: Vec<gst::Element> = vec![make("queue")?];
    match format {
        AudioFormat::Opus => {
            tail.push(make("opusparse")?);
            tail.push(make("oggmux")?);
        }
        AudioFormat::Flac | AudioFormat::Wav => {
            // The decoder goes before the queue once the track's caps are known.
            let convert = make("audioconvert")?;
            // F32 to S16 by plain rounding, as a decoder's own conversion does.
            convert.set_property_from_str("dithering", "none");
            tail.push(convert);
            let caps = make("capsfilter")?;
            caps.set_property(
                "caps",
                gst::Caps::builder("audio/x-raw")
                    .field("format", "S16LE")
                    .field("rate", 48_000i32)
                    .build(),
            );
            tail.push(caps);
            tail.push(make(if format == AudioFormat::Flac {
                "flacenc"
            } else {
                "wavenc"
            })?);
        }
    }
    let sink = make("filesink")?;
    sink.set_property("location", dest.to_string_lossy().to_string());
    tail.push(sink);
    pipeline
        .add_many([&filesrc, &demux])
        .map_err(|e| gst_err("building", e))?;
    pipeline
        .add_many(&tail)
        .map_err(|e| gst_err("building", e))?;
    filesrc.link(&demux).map_err(|e| gst_err("linking", e))?;
    gst::Element::link_many(&tail).map_err(|e| gst_err("linking", e))?;
    let head = tail[0]
        .static_pad("sink")
        .ok_or_else(|| gst_err("linking", "queue has no sink pad"))?;
    let head = Arc::new(Mutex::new(Some(head)));
    let decode = format != AudioFormat::Opus;
    let pipeline_weak = pipeline.downgrade();
    demux.connect_pad_added(move |demux, pad| {
        if !pad.name().starts_with("audio") {
            return;
        }
        let Some(sink) = head.lock().ok().and_then(|mut h| h.take()) else {
            return;
        };
        let linked = match pipeline_weak.upgrade() {
            Some(pipeline) if decode => link_decoder(&pipeline, pad, &sink),
            _ => pad
                .link(&sink)
                .map(|_| ())
                .map_err(|e| gst_err("linking", e)),
        };
        if let Err(e) = linked {
            gst::element_error!(
                demux,
                gst::StreamError::Failed,
                ("cannot decode {}: {}", pad.name(), e)
            );
        }
    });

    let result = (|| {
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| gst_err("starting", e))?;
        let bus = pipeline
            .bus()
            .ok_or_else(|| gst_err("pipeline", "no bus"))?;
        for msg in bus.iter_timed(gst::ClockTime::NONE) {
            match msg.view() {
                gst::MessageView::Eos(..) => return Ok(()),
                gst::MessageView::Error(err) => {
                    let who = err
                        .src()
                        .map(|s| s.path_string().to_string())
                        .unwrap_or_default();
                    return Err(Error::Gstreamer(format!("{who}: {}", err.error())));
                }
                _ => {}
            }
        }
        Ok(())
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// demuxer pad ! decoder ! `sink`: mosaic's own decoder for mono and stereo Opus (libopus's
/// single-stream API; GStreamer's `opusdec` costs four times the CPU on a virtual machine),
/// `opusdec` for surround.
fn link_decoder(pipeline: &gst::Pipeline, pad: &gst::Pad, sink: &gst::Pad) -> Result<()> {
    let dec = make(crate::opusdec::factory_for(pad.current_caps().as_deref()))?;
    pipeline.add(&dec).map_err(|e| gst_err("building", e))?;
    let (Some(dec_sink), Some(dec_src)) = (dec.static_pad("sink"), dec.static_pad("src")) else {
        return Err(gst_err("linking", "the decoder has no pads"));
    };
    dec_src.link(sink).map_err(|e| gst_err("linking", e))?;
    dec.sync_state_with_parent()
        .map_err(|e| gst_err("starting the decoder", e))?;
    pad.link(&dec_sink).map_err(|e| gst_err("linking", e))?;
    Ok(())
}
