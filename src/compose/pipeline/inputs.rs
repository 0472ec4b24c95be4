//! The input side: one demuxer per kind of media of each file, decoders, scaling to the
//! tile, into the canvas and the mixer.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;

use super::source;
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
    let is_video = matches!(target, Target::Video(_));
    let (src, resumed) = source::open(file, is_video, window.start_ns)?;
    let skip_to_key = is_video && resumed;
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
/// a mute (its first frame 2 s into the file) would play 2 s early, and a packet stored after
/// the first block with an earlier time (one track's first packet a little before the
/// other's) would fall before the segment and be dropped. Its segment starts at 0 instead,
/// so every buffer's running time is its timestamp.
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
                        segment.set_start(gst::ClockTime::ZERO);
                        segment.set_time(gst::ClockTime::ZERO);
                        segment.set_position(gst::ClockTime::ZERO);
                        segment.set_base(gst::ClockTime::ZERO);
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

/// A resumed video stream begins in the cluster of its key frame, which may hold frames
/// before it that no decoder can start on: they are dropped up to the key frame.
fn drop_until_key_frame(pad: &gst::Pad) {
    let at_key = std::sync::atomic::AtomicBool::new(false);
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if !at_key.load(Ordering::Relaxed)
            && let Some(buffer) = info.buffer()
        {
            if buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) {
                return gst::PadProbeReturn::Drop;
            }
            at_key.store(true, Ordering::Relaxed);
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
    use std::path::Path;

    use super::source::{Piece, pieces_source, resumed_pieces};
    use super::*;

    /// Demuxes `file` with every pad stopping past `end_ns`: (buffers, last PTS in ms, whether
    /// the pipeline reached EOS).
    fn demux_until(file: &Path, end_ns: i64) -> (usize, u64, bool) {
        let src = make("filesrc").unwrap();
        src.set_property("location", file.to_string_lossy().to_string());
        let (n, _, last, eos) = demux_from(src, end_ns, false);
        (n, last, eos)
    }

    /// Demuxes what `src` serves, every pad stopping past `end_ns` and, with `skip_to_key`,
    /// video starting at a key frame: (buffers, the first video buffer's PTS in ms and
    /// whether it is a key frame, the last PTS in ms, whether the pipeline reached EOS).
    fn demux_from(
        src: gst::Element,
        end_ns: i64,
        skip_to_key: bool,
    ) -> (usize, Option<(u64, bool)>, u64, bool) {
        let pipeline = gst::Pipeline::new();
        let demux = make("matroskademux").unwrap();
        link_chain(&pipeline, &[src, demux.clone()]).unwrap();
        let seen = Arc::new(Mutex::new((0usize, 0u64)));
        let first_video = Arc::new(Mutex::new(None));
        let first = first_video.clone();
        let window = Window {
            start_ns: 0,
            end_ns,
            max_errors: 0,
        };
        let weak = pipeline.downgrade();
        let counts = seen.clone();
        demux.connect_pad_added(move |_, pad| {
            stop_past_end(pad, window);
            let video = pad.name().starts_with("video");
            if video && skip_to_key {
                drop_until_key_frame(pad);
            }
            let counts = counts.clone();
            let first = first.clone();
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(b) = info.buffer()
                    && let Some(pts) = b.pts()
                {
                    let mut c = counts.lock().unwrap();
                    c.0 += 1;
                    c.1 = c.1.max(pts.mseconds());
                    let mut first = first.lock().unwrap();
                    if video && first.is_none() {
                        let key = !b.flags().contains(gst::BufferFlags::DELTA_UNIT);
                        *first = Some((pts.mseconds(), key));
                    }
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
        let first = *first_video.lock().unwrap();
        (n, first, last, msg.type_() == gst::MessageType::Eos)
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

    /// A 21 s WebM (160x120 VP8 with a key frame every 10 s, and Opus) in `dir`.
    fn generated(dir: &Path) -> MediaFile {
        let mut spec = crate::sample::bench(21_000);
        spec.streams.truncate(1);
        (spec.streams[0].width, spec.streams[0].height) = (160, 120);
        let stream = &spec.streams[0];
        let bytes = crate::sample::encode_segment(&spec, stream, &stream.segments[0]).unwrap();
        let path = dir.join("cam1.webm");
        std::fs::write(&path, &bytes).unwrap();
        let opts = crate::inspect::InspectOptions::default();
        let report = crate::inspect::matroska::scan(&bytes[..], "cam1.webm", &opts).unwrap();
        MediaFile {
            path,
            range: None,
            video: Some(Codec::Vp8),
            audio: Some(Codec::Opus),
            clusters: Some(Arc::new(report.clusters)),
        }
    }

    #[test]
    fn a_demuxer_resumes_at_the_key_frame_before_its_windows_start() {
        gst::init().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = generated(dir.path());
        let whole = std::fs::metadata(&file.path).unwrap().len();
        let pieces = resumed_pieces(&file, true, 15_000_000_000).unwrap();
        let served: u64 = pieces.iter().map(Piece::len).sum();
        assert!(served < whole * 3 / 5, "{served} of {whole} bytes");
        let src = pieces_source(&file.path, pieces, &file.id()).unwrap();
        let (n, first, last, eos) = demux_from(src, 17_000_000_000, true);
        assert!(eos, "the resumed file demuxes to its end");
        assert_eq!(first, Some((10_000, true)), "video starts at the key frame");
        assert!((17_900..18_100).contains(&last), "last packet at {last} ms");
        // 8 s of video and sound, not 18.
        assert!((500..800).contains(&n), "{n} packets");

        // Sound resumes a little before the start, wherever a cluster begins.
        let pieces = resumed_pieces(&file, false, 15_000_000_000).unwrap();
        assert!(pieces.iter().map(Piece::len).sum::<u64>() < whole * 3 / 5);

        // Nothing to skip before the second key frame; nothing resumes at 0.
        assert!(resumed_pieces(&file, true, 9_000_000_000).is_none());
        assert!(resumed_pieces(&file, false, 0).is_none());
        let copied = MediaFile {
            clusters: None,
            ..file
        };
        assert!(resumed_pieces(&copied, true, 15_000_000_000).is_none());
    }

    #[test]
    fn a_resumed_stored_zip_entry_reads_from_its_place() {
        gst::init().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = generated(dir.path());
        let bytes = std::fs::read(&file.path).unwrap();
        // The file 1000 bytes into a bigger one, as a stored entry lies in a ZIP.
        let outer = dir.path().join("archive.zip");
        let mut all = vec![0x55u8; 1_000];
        all.extend_from_slice(&bytes);
        all.extend_from_slice(&[0x55; 1_000]);
        std::fs::write(&outer, all).unwrap();
        let entry = MediaFile {
            path: outer,
            range: Some((1_000, bytes.len() as u64)),
            ..file
        };
        reads_from_the_key_frame_at_10_s(&entry);
    }

    /// A file as a muxer that finishes its files writes it (a SeekHead, Cues at the end, a
    /// known Segment size) resumes as well: its header is rewritten so that none of them
    /// points into the wrong place.
    #[test]
    fn a_file_with_an_index_and_a_known_size_resumes_too() {
        gst::init().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let capture = generated(dir.path());
        let path = dir.path().join("muxed.mkv");
        let remux = gst::parse::launch(&format!(
            "filesrc location={} ! matroskademux name=d d.video_0 ! queue {q} ! matroskamux name=m \
             ! filesink location={} d.audio_0 ! queue {q} ! opusparse ! m.",
            capture.path.display(),
            path.display(),
            q = "max-size-time=0 max-size-buffers=0 max-size-bytes=0",
        ))
        .unwrap();
        remux.set_state(gst::State::Playing).unwrap();
        let bus = remux.bus().unwrap();
        let msg = bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        remux.set_state(gst::State::Null).unwrap();
        assert_eq!(msg.unwrap().type_(), gst::MessageType::Eos);

        let bytes = std::fs::read(&path).unwrap();
        let opts = crate::inspect::InspectOptions::default();
        let report = crate::inspect::matroska::scan(&bytes[..], "muxed.mkv", &opts).unwrap();
        assert!(report.has_cues && report.has_duration, "{report:?}");
        let file = MediaFile {
            path,
            clusters: Some(Arc::new(report.clusters)),
            ..capture
        };
        reads_from_the_key_frame_at_10_s(&file);
    }

    /// `file` (see [`generated`]) resumed for video from 15 s demuxes from its key frame at
    /// 10 s to its end.
    fn reads_from_the_key_frame_at_10_s(file: &MediaFile) {
        let pieces = resumed_pieces(file, true, 15_000_000_000).unwrap();
        let src = pieces_source(&file.path, pieces, &file.id()).unwrap();
        let (_, first, last, eos) = demux_from(src, i64::MAX, true);
        assert!(eos);
        assert_eq!(first, Some((10_000, true)));
        assert!(last >= 20_900, "reads to the end: {last} ms");
    }
}
