//! What of a file's media the output shows: a branch's window of container time, and the
//! pad probes that hold the branch to it (the demuxer's segment in container time, end of
//! stream just past the window, video from a key frame when resumed, nothing outside the
//! window reaching the canvas or the mixer).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;

/// The part of a file's own time that falls inside the output, and how its branch treats
/// damage.
#[derive(Debug, Clone, Copy)]
pub(super) struct Window {
    pub(super) start_ns: i64,
    pub(super) end_ns: i64,
    pub(super) max_errors: i32,
    /// Video frames: each lasts until the next, and reaches the canvas without a duration.
    /// GStreamer's video aggregators choose by two rules, as frames come with durations
    /// (H.264 from avdec_h264: the first that ends after the output frame begins) or without
    /// (VP8: the last that begins before it ends); without, and half a frame late (see
    /// `Plan::video_delay_ns`), every frame shows from the output frame nearest its time,
    /// whatever its codec.
    pub(super) frames: bool,
    /// How long the output's first frame lasts (ns; video): a frame of the file that begins
    /// within it is the one it shows, and the frame held from before the start is dropped.
    pub(super) first_frame_ns: i64,
}

/// Makes a demuxer's running time its file's own time, as the plan places it.
///
/// `matroskademux` starts its segment at the file's first block, so a file that begins with
/// a mute (its first frame 2 s into the file) would play 2 s early, and a packet stored after
/// the first block with an earlier time (one track's first packet a little before the
/// other's) would fall before the segment and be dropped. Its segment starts at 0 instead,
/// so every buffer's running time is its timestamp.
pub(super) fn keep_container_time(pad: &gst::Pad) {
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
pub(super) fn stop_past_end(pad: &gst::Pad, window: Window) {
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
pub(super) fn drop_until_key_frame(pad: &gst::Pad) {
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

/// Holds a branch's decoded media to the window, at the branch's end: drops what falls
/// outside the output, after its end (a file may run past its stopTimeOffset) or wholly
/// before its start (with --from; negative running times would stall the aggregators; a
/// sound buffer straddling the start is clipped by the mixer). Video frames lose their
/// durations and GAP events (see [`Window::frames`]), and the last frame before the start
/// shows from it until the next (see [`FrameBeforeStart`]).
pub(super) fn hold_to_window(tail: &gst::Pad, window: Window) {
    let before = Arc::new(FrameBeforeStart::default());
    let held = Arc::clone(&before);
    tail.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some((pts, duration)) = info.buffer().and_then(|b| Some((b.pts()?, b.duration())))
        else {
            return gst::PadProbeReturn::Ok;
        };
        let pts = pts.nseconds() as i64;
        let duration = duration
            .filter(|_| !window.frames)
            .map(|d| d.nseconds() as i64);
        if outside(&window, pts, duration) {
            if window.frames && pts < window.start_ns {
                held.keep(info.buffer().cloned());
            }
            return gst::PadProbeReturn::Drop;
        }
        if window.frames && window.start_ns > 0 {
            if pts < window.start_ns + window.first_frame_ns {
                // GStreamer's video aggregators would show the held frame, stamped at the
                // start, for the whole first output frame (it overlaps it); this one is what
                // the whole call shows there.
                held.keep(None);
            } else if let Err(e) = held.push_at(pad, window.start_ns) {
                info.flow_res = Err(e);
                return gst::PadProbeReturn::Drop;
            }
        }
        if window.frames
            && let Some(buffer) = info.buffer_mut()
            && buffer.duration().is_some()
        {
            buffer.make_mut().set_duration(gst::ClockTime::NONE);
        }
        gst::PadProbeReturn::Ok
    });
    if window.frames {
        // A GAP event (the demuxer sends them where a file's video stops before its sound)
        // would become the canvas pad's current frame, an empty one, and the tile black
        // where the plan freezes the last frame: the plan alone says what shows in a gap.
        tail.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, |_, info| {
            match info.event().map(|e| e.type_()) {
                Some(gst::EventType::Gap) => {
                    // Taken and handled here: returned as `Drop`, each gap left a
                    // GStreamer-CRITICAL (an unref of a null event) after the probe.
                    info.data.take();
                    gst::PadProbeReturn::Handled
                }
                _ => gst::PadProbeReturn::Ok,
            }
        });
        push_held_before_eos(tail, before, window.start_ns);
    }
}

/// No frame of the file falls inside the window (its video stopped just before the start
/// and does not come back before the end): the held frame goes out at end of stream. It is
/// pushed as the EOS reaches the tail element's sink pad, while its source pad can still
/// push (by the time a probe there sees the EOS, the pad is already at end of stream).
fn push_held_before_eos(tail: &gst::Pad, before: Arc<FrameBeforeStart>, start_ns: i64) {
    let Some(sink) = tail.parent_element().and_then(|e| e.static_pad("sink")) else {
        return;
    };
    let tail = tail.downgrade();
    sink.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        if info.event().map(|e| e.type_()) == Some(gst::EventType::Eos)
            && let Some(tail) = tail.upgrade()
        {
            // A refused push (flushing, an error downstream) shows again on the EOS itself.
            let _ = before.push_at(&tail, start_ns);
        }
        gst::PadProbeReturn::Ok
    });
}

/// The last video frame before a window's start (`--from`), held back. A window may start
/// in a gap of its file's video (a camera muted, or stopped before its sound): the plan
/// shows that frame frozen there, or the placeholder after the freeze, and with the frame
/// dropped as outside the window the tile was black until the next frame. It goes out,
/// stamped at the start, when the first frame inside the window comes after the output's
/// first frame (or the stream ends first); a frame within that first output frame replaces
/// it. Where frames come every output frame it never shows.
#[derive(Default)]
struct FrameBeforeStart(Mutex<Option<gst::Buffer>>);

impl FrameBeforeStart {
    fn keep(&self, frame: Option<gst::Buffer>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = frame;
    }

    /// Pushes the held frame, if any, on `pad` at `start_ns` (without a duration).
    fn push_at(&self, pad: &gst::Pad, start_ns: i64) -> Result<(), gst::FlowError> {
        let held = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(mut frame) = held else {
            return Ok(());
        };
        {
            let frame = frame.make_mut();
            frame.set_pts(gst::ClockTime::from_nseconds(start_ns.max(0) as u64));
            frame.set_dts(gst::ClockTime::NONE);
            frame.set_duration(gst::ClockTime::NONE);
        }
        pad.push(frame).map(|_| ())
    }
}

/// True for a buffer at `pts` (container time, ns) that shows nowhere in the output: at or
/// after the window's end, or ending before its start. A frame without a duration lasts
/// until the next one, so it goes only if it begins before the start (the one at the start
/// is the output's first).
fn outside(window: &Window, pts: i64, duration: Option<i64>) -> bool {
    let before_start = match duration {
        Some(d) => pts + d <= window.start_ns,
        None => pts < window.start_ns,
    };
    pts >= window.end_ns || (window.start_ns > 0 && before_start)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::source::{Piece, pieces_source, resumed_pieces};
    use super::super::{Codec, MediaFile, link_chain, make};
    use super::*;

    #[test]
    fn what_falls_outside_the_window() {
        let w = Window {
            start_ns: 1_000,
            end_ns: 5_000,
            max_errors: 0,
            frames: true,
            first_frame_ns: 0,
        };
        // Frames without a duration: the one at the start is the first shown.
        assert!(outside(&w, 999, None));
        assert!(!outside(&w, 1_000, None));
        // With a duration: kept while any of it is inside.
        assert!(outside(&w, 900, Some(100)));
        assert!(!outside(&w, 950, Some(100)));
        assert!(!outside(&w, 4_999, None));
        assert!(outside(&w, 5_000, None));
        // Without --from nothing is before the start.
        let whole = Window { start_ns: 0, ..w };
        assert!(!outside(&whole, 0, None));
    }

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
            frames: false,
            first_frame_ns: 0,
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
            resumes_ns: Arc::new([]),
            audio_delay_ns: 0,
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
