//! A chunked compose's pictures joined without re-encoding: each chunk file (Matroska, its
//! window's picture alone, see [`super::Parts::Picture`]) is demuxed in turn and its frames
//! are pushed, as they were encoded, into the output's muxer, each stamped with its place on
//! the whole output's frame grid. The sound is made beside it as in a one-pass compose.
//!
//! Every chunk must begin with a key frame and carry the caps of the first (for H.264, the
//! same SPS and PPS in its `codec_data`): otherwise its frames cannot follow the others'
//! in one stream, and the stitch fails saying which chunk differs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::{PipelineInput, Running, gst_err};
use crate::error::{Error, Result};

/// The thread that reads the chunks into the stitch.
pub(super) struct Feeder {
    thread: JoinHandle<Result<()>>,
}

impl Feeder {
    /// Waits for the reader (it ends with the pipeline) and returns what it found wrong.
    pub(super) fn finish(self) -> Result<()> {
        self.thread
            .join()
            .map_err(|_| gst_err("joining the chunks", "the reader panicked"))?
    }
}

/// An `appsrc` into a new video pad of `mux`, fed the frames of `chunks` in order.
pub(super) fn add_video(
    pipeline: &gst::Pipeline,
    input: &PipelineInput<'_>,
    mux: &gst::Element,
    chunks: &[PathBuf],
    frame_counter: &Arc<AtomicU64>,
) -> Result<Feeder> {
    let src = gst_app::AppSrc::builder()
        .format(gst::Format::Time)
        .block(true)
        .max_bytes(8 << 20)
        .build();
    pipeline
        .add(&src)
        .map_err(|e| gst_err("building the stitch", e))?;
    let pad = mux
        .request_pad_simple("video_%u")
        .ok_or_else(|| gst_err("building the stitch", "the muxer has no video pad"))?;
    let src_pad = src
        .static_pad("src")
        .ok_or_else(|| gst_err("building the stitch", "appsrc without a src pad"))?;
    src_pad
        .link(&pad)
        .map_err(|e| gst_err("linking the chunks to the muxer", e))?;
    let counter = frame_counter.clone();
    src_pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        counter.fetch_add(1, Ordering::Relaxed);
        gst::PadProbeReturn::Ok
    });
    let fps = input.plan.fps.max(1);
    let chunks = chunks.to_vec();
    let thread = std::thread::spawn(move || {
        let fed = feed(&src, &chunks, fps);
        match &fed {
            Ok(()) => {
                let _ = src.end_of_stream();
            }
            Err(e) => {
                // The pipeline stops on it; `finish` then returns this error itself.
                gst::element_error!(src, gst::StreamError::Failed, ["{e}"]);
            }
        }
        fed
    });
    Ok(Feeder { thread })
}

/// Nanoseconds from the output's start to frame `k`, as the canvas stamps it.
fn frame_ns(k: u64, fps: u64) -> u64 {
    (k * 1_000_000_000 + fps / 2) / fps
}

/// Pushes every chunk's frames into `src`, restamped on the output's frame grid.
fn feed(src: &gst_app::AppSrc, chunks: &[PathBuf], fps: u32) -> Result<()> {
    let fps = u64::from(fps);
    let mut first_caps: Option<gst::Caps> = None;
    let mut next = 0u64;
    for (k, path) in chunks.iter().enumerate() {
        let chunk_start = next;
        let reader = ChunkReader::open(path)?;
        let mut frames = 0u64;
        while let Some(sample) = reader.next()? {
            let caps = sample
                .caps()
                .ok_or_else(|| unjoinable(k, path, "a frame without caps"))?;
            match &first_caps {
                None => {
                    let mut output = caps.to_owned();
                    if let Some(c) = output.make_mut().structure_mut(0) {
                        c.set("framerate", gst::Fraction::new(fps as i32, 1));
                        if c.name() == "video/x-h264" {
                            c.set("alignment", "au");
                        }
                    }
                    src.set_caps(Some(&output));
                    first_caps = Some(caps.to_owned());
                }
                Some(first) if !same_stream(first, caps) => {
                    return Err(unjoinable(
                        k,
                        path,
                        &format!(
                            "its encoder's settings differ from the first chunk's ({caps} against {first})"
                        ),
                    ));
                }
                Some(_) => {}
            }
            let Some(mut buffer) = sample.buffer_owned() else {
                continue;
            };
            if frames == 0 && buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) {
                return Err(unjoinable(k, path, "it does not begin with a key frame"));
            }
            let pts = buffer.pts().map_or(0, |t| t.nseconds());
            let at = chunk_start + (pts * fps + 500_000_000) / 1_000_000_000;
            {
                let b = buffer.make_mut();
                let t = gst::ClockTime::from_nseconds(frame_ns(at, fps));
                b.set_pts(t);
                b.set_dts(t);
                b.set_duration(gst::ClockTime::from_nseconds(
                    frame_ns(at + 1, fps) - frame_ns(at, fps),
                ));
                b.unset_flags(gst::BufferFlags::DISCONT);
            }
            if src.push_buffer(buffer).is_err() {
                return Ok(()); // the pipeline stopped; its bus says why
            }
            frames += 1;
            next = next.max(at + 1);
        }
        if frames == 0 {
            return Err(unjoinable(k, path, "it holds no frame"));
        }
    }
    Ok(())
}

/// The same codec, picture size and codec data (H.264's SPS and PPS).
fn same_stream(a: &gst::Caps, b: &gst::CapsRef) -> bool {
    let (Some(a), Some(b)) = (a.structure(0), b.structure(0)) else {
        return false;
    };
    let field = |s: &gst::StructureRef, f: &str| s.value(f).ok().and_then(|v| v.serialize().ok());
    a.name() == b.name()
        && ["width", "height", "codec_data"]
            .into_iter()
            .all(|f| field(a, f) == field(b, f))
}

fn unjoinable(k: usize, path: &Path, why: &str) -> Error {
    Error::Gstreamer(format!(
        "chunk {k} ({}) cannot be joined to the others: {why}",
        path.display()
    ))
}

/// One chunk file's frames, in order: `filesrc ! matroskademux ! appsink`.
struct ChunkReader {
    _running: Running,
    pipeline: gst::Pipeline,
    sink: gst_app::AppSink,
}

impl ChunkReader {
    fn open(path: &Path) -> Result<ChunkReader> {
        let pipeline =
            gst::parse::launch("filesrc name=src ! matroskademux ! appsink name=sink sync=false")
                .map_err(|e| gst_err("reading a chunk", e))?
                .downcast::<gst::Pipeline>()
                .map_err(|_| gst_err("reading a chunk", "not a pipeline"))?;
        let running = Running(pipeline.clone());
        let src = pipeline
            .by_name("src")
            .ok_or_else(|| gst_err("reading a chunk", "no filesrc"))?;
        src.set_property("location", path.to_string_lossy().to_string());
        let sink = pipeline
            .by_name("sink")
            .and_then(|s| s.downcast::<gst_app::AppSink>().ok())
            .ok_or_else(|| gst_err("reading a chunk", "no appsink"))?;
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| gst_err(&format!("reading chunk {}", path.display()), "cannot start"))?;
        Ok(ChunkReader {
            _running: running,
            pipeline,
            sink,
        })
    }

    /// The next frame; `None` at the end.
    fn next(&self) -> Result<Option<gst::Sample>> {
        match self.sink.pull_sample() {
            Ok(sample) => Ok(Some(sample)),
            Err(_) if self.sink.is_eos() => Ok(None),
            Err(_) => {
                let why = self
                    .pipeline
                    .bus()
                    .and_then(|bus| bus.pop_filtered(&[gst::MessageType::Error]))
                    .and_then(|m| match m.view() {
                        gst::MessageView::Error(e) => Some(e.error().to_string()),
                        _ => None,
                    })
                    .unwrap_or_else(|| "the chunk could not be read".into());
                Err(gst_err("reading a chunk", why))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h264(width: i32, sps: &[u8]) -> gst::Caps {
        gst::Caps::builder("video/x-h264")
            .field("width", width)
            .field("height", 480i32)
            .field("codec_data", gst::Buffer::from_slice(sps.to_vec()))
            .build()
    }

    #[test]
    fn chunks_join_only_with_the_same_sps_and_pps() {
        gst::init().unwrap();
        let first = h264(640, &[1, 100, 0, 31]);
        assert!(same_stream(&first, &h264(640, &[1, 100, 0, 31])));
        // Another encoder setting (a level, a profile) is another SPS: refused.
        assert!(!same_stream(&first, &h264(640, &[1, 77, 0, 31])));
        assert!(!same_stream(&first, &h264(1280, &[1, 100, 0, 31])));
        let vp8 = gst::Caps::builder("video/x-vp8")
            .field("width", 640i32)
            .field("height", 480i32)
            .build();
        assert!(!same_stream(&first, &vp8));
        assert!(same_stream(&vp8, &vp8.clone()));
    }
}
