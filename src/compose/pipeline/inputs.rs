//! The input side: one demuxer per kind of media of each file, decoders, scaling to the
//! tile, into the canvas and the mixer.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

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
    /// The decoders' `max-errors`: -1 conceals every damaged frame, 0 fails on the first.
    pub(super) max_errors: i32,
}

/// The part of a file's own time that falls inside the output, and how its branch treats
/// damage.
#[derive(Debug, Clone, Copy)]
struct Window {
    start_ns: i64,
    end_ns: i64,
    max_errors: i32,
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
    };
    if let Some(video) = branch.video {
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
    let src = match file.range {
        None => {
            let src = make("filesrc")?;
            src.set_property("location", file.path.to_string_lossy().to_string());
            src
        }
        Some((offset, length)) => range_source(&file.path, offset, length, &file.id())?,
    };
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
            (true, Some(Target::Video(video))) => link_video(&pipeline, pad, video, window),
            (true, Some(Target::Audio(to))) => link_audio(&pipeline, pad, &to, window),
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

/// Makes a demuxer's running time its file's own time, as the plan places it.
///
/// `matroskademux` starts its segment at the file's first block, so a file that begins with
/// a mute (its first frame 2 s into the file) would play 2 s early; its segment's base is
/// set to its start, so every buffer's running time is its timestamp.
fn keep_container_time(pad: &gst::Pad) {
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, |_, info| {
        let rebased = match &info.data {
            Some(gst::PadProbeData::Event(event)) => match event.view() {
                gst::EventView::Segment(s) => s
                    .segment()
                    .clone()
                    .downcast::<gst::ClockTime>()
                    .ok()
                    .map(|mut segment| {
                        segment.set_base(segment.start().unwrap_or(gst::ClockTime::ZERO));
                        gst::event::Segment::builder(&segment)
                            .seqnum(event.seqnum())
                            .build()
                    }),
                _ => None,
            },
            _ => None,
        };
        if let Some(event) = rebased {
            info.data = Some(gst::PadProbeData::Event(event));
        }
        gst::PadProbeReturn::Ok
    });
}

/// How far past its window's end a demuxer goes on: a little, for decoders that put frames
/// out of order (H.264 with B-frames: a packet past the end may come before the last frames
/// inside it).
const PAST_END_NS: i64 = 1_000_000_000;

/// Ends a demuxer's stream just past the window's end (`--to`, or a segment's stop offset):
/// each of its pads answers a packet past it with "end of stream", so the demuxer stops and
/// sends EOS down every branch, instead of reading and decoding the rest of its file only
/// for the branch to drop it (composing the first minutes of an hour-long archive read the
/// whole hour).
fn stop_past_end(pad: &gst::Pad, window: Window) {
    let stop = window.end_ns.saturating_add(PAST_END_NS);
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let past = info
            .buffer()
            .and_then(|b| b.pts())
            .is_some_and(|pts| i64::try_from(pts.nseconds()).unwrap_or(i64::MAX) >= stop);
        if past {
            info.flow_res = Err(gst::FlowError::Eos);
            gst::PadProbeReturn::Drop
        } else {
            gst::PadProbeReturn::Ok
        }
    });
}

const RANGE_SOURCE: &str = "mosaic-range:";

/// An `appsrc` serving `length` bytes of `path` from `offset`, with random access (the
/// demuxer pulls and seeks as in a file): a ZIP's stored entry, read where it lies.
fn range_source(path: &Path, offset: u64, length: u64, id: &Path) -> Result<gst::Element> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path).map_err(|source| Error::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let position = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seek_to = position.clone();
    let src = gst_app::AppSrc::builder()
        .name(format!(
            "{RANGE_SOURCE}{}#{}",
            id.display(),
            uuid::Uuid::new_v4().simple()
        ))
        .stream_type(gst_app::AppStreamType::RandomAccess)
        .format(gst::Format::Bytes)
        .size(i64::try_from(length).unwrap_or(i64::MAX))
        .build();
    src.set_callbacks(
        gst_app::AppSrcCallbacks::builder()
            .need_data(move |appsrc, wanted| {
                let at = position.load(Ordering::Relaxed);
                let n = u64::from(wanted).min(length.saturating_sub(at)) as usize;
                if n == 0 {
                    let _ = appsrc.end_of_stream();
                    return;
                }
                let mut data = vec![0u8; n];
                match file.read_exact_at(&mut data, offset + at) {
                    Ok(()) => {
                        position.store(at + n as u64, Ordering::Relaxed);
                        let mut buffer = gst::Buffer::from_mut_slice(data);
                        if let Some(b) = buffer.get_mut() {
                            b.set_offset(at);
                        }
                        let _ = appsrc.push_buffer(buffer);
                    }
                    Err(e) => gst::element_error!(
                        appsrc,
                        gst::ResourceError::Read,
                        ("reading {} bytes at {}: {e}", n, offset + at)
                    ),
                }
            })
            .seek_data(move |_, to| {
                seek_to.store(to, Ordering::Relaxed);
                true
            })
            .build(),
    );
    Ok(src.upcast())
}

/// The media file id a range source reads, from its name.
pub(super) fn range_source_id(element: &gst::Element) -> Option<PathBuf> {
    let name = element.name();
    // A source that feeds sound has the sound's prefix in front (see `mark_sound`).
    let name = name.strip_prefix(SOUND).unwrap_or(&name);
    let rest = name.strip_prefix(RANGE_SOURCE)?;
    Some(PathBuf::from(rest.rsplit_once('#')?.0))
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
    // Drop what falls outside the output: after its end (a file may run past its
    // stopTimeOffset), or wholly before its start (with --from; negative running times
    // would stall the aggregators). A buffer straddling the start is clipped by them.
    tail.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(buffer) = info.buffer()
            && let Some(pts) = buffer.pts()
        {
            let pts = pts.nseconds() as i64;
            let end = pts + buffer.duration().map_or(0, |d| d.nseconds() as i64);
            if pts >= window.end_ns || (window.start_ns > 0 && end <= window.start_ns) {
                return gst::PadProbeReturn::Drop;
            }
        }
        gst::PadProbeReturn::Ok
    });
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
) -> Result<()> {
    // opusparse: browsers declare Opus at 44.1 kHz in the container, which opusdec refuses;
    // the parser takes the rate from the stream itself. Mono and stereo Opus (all that
    // browsers send) is decoded by mosaic's own decoder, surround by GStreamer's.
    let caps = pad.current_caps();
    let chain = [
        make("opusparse")?,
        decoder(crate::opusdec::factory_for(caps.as_deref()), window)?,
        make("audioconvert")?,
        make("audioresample")?,
    ];
    attach(pipeline, pad, &chain, target, window)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_source_names_its_file_also_when_it_feeds_sound() {
        gst::init().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("archive.zip");
        std::fs::write(&path, [0u8; 64]).unwrap();
        let id = PathBuf::from("archive.zip@16");
        let src = range_source(&path, 16, 32, &id).unwrap();
        assert_eq!(range_source_id(&src), Some(id.clone()));
        mark_sound(&src);
        assert!(src.name().starts_with(SOUND));
        assert_eq!(range_source_id(&src), Some(id));
        let other = make("fakesrc").unwrap();
        assert_eq!(range_source_id(&other), None);
    }

    /// Demuxes `file` with every pad stopping past `end_ns`: (buffers, last PTS in ms, whether
    /// the pipeline reached EOS).
    fn demux_until(file: &Path, end_ns: i64) -> (usize, u64, bool) {
        let pipeline = gst::Pipeline::new();
        let src = make("filesrc").unwrap();
        src.set_property("location", file.to_string_lossy().to_string());
        let demux = make("matroskademux").unwrap();
        link_chain(&pipeline, &[src, demux.clone()]).unwrap();
        let seen = Arc::new(Mutex::new((0usize, 0u64)));
        let window = Window {
            start_ns: 0,
            end_ns,
            max_errors: 0,
        };
        let weak = pipeline.downgrade();
        let counts = seen.clone();
        demux.connect_pad_added(move |_, pad| {
            stop_past_end(pad, window);
            let counts = counts.clone();
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(pts) = info.buffer().and_then(|b| b.pts()) {
                    let mut c = counts.lock().unwrap();
                    c.0 += 1;
                    c.1 = c.1.max(pts.mseconds());
                }
                gst::PadProbeReturn::Ok
            });
            let pipeline = weak.upgrade().unwrap();
            let sink = make("fakesink").unwrap();
            sink.set_property("sync", false);
            pipeline.add(&sink).unwrap();
            sink.sync_state_with_parent().unwrap();
            pad.link(&sink.static_pad("sink").unwrap()).unwrap();
        });
        pipeline.set_state(gst::State::Playing).unwrap();
        let msg = pipeline
            .bus()
            .unwrap()
            .timed_pop_filtered(
                gst::ClockTime::from_seconds(60),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            )
            .unwrap();
        pipeline.set_state(gst::State::Null).unwrap();
        let (n, last) = *seen.lock().unwrap();
        (n, last, msg.type_() == gst::MessageType::Eos)
    }

    #[test]
    fn a_demuxer_stops_just_past_its_windows_end() {
        gst::init().unwrap();
        let spec = crate::sample::bench(6_000);
        let stream = &spec.streams[0];
        let bytes = crate::sample::encode_segment(&spec, stream, &stream.segments[0]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cam1.webm");
        std::fs::write(&file, bytes).unwrap();

        let (all, last_all, eos) = demux_until(&file, i64::MAX);
        assert!(
            eos && last_all >= 5_900,
            "the whole file: {all} buffers to {last_all} ms"
        );
        let (some, last, eos) = demux_until(&file, 1_500_000_000);
        assert!(eos, "the demuxer ends its streams");
        // Packets up to 1 s past the end pass (for reordering decoders); none after.
        assert!((2_400..2_500).contains(&last), "last packet at {last} ms");
        assert!(some < all / 2, "{some} of {all} packets read");
    }
}
