//! Inspection of generated archives: every mute made comes back as a gap within one frame
//! (video) or one packet (audio) of where it was made, no gap where none was made, segments
//! in order, the resolution change found; WebM/VP8 and MKV/H.264 alike.

mod common;

use common::*;
use mosaic::inspect::{ArchiveReport, InspectOptions, TrackKind, TrackReport, inspect_archive};
use mosaic::sample::ContainerKind;

const FRAME_MS: i64 = 34; // one frame at 30 fps, rounded up
const PACKET_MS: i64 = 20; // one Opus packet

fn inspect(container: ContainerKind, bframes: u32) -> ArchiveReport {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = mutes_spec(container);
    spec.h264_bframes = bframes;
    let path = write_sample(dir.path(), &spec);
    inspect_archive(&path, &InspectOptions::default()).unwrap()
}

fn track<'a>(r: &'a ArchiveReport, stream: &str, seg: usize, kind: TrackKind) -> &'a TrackReport {
    let s = r.streams.iter().find(|s| s.stream_id == stream).unwrap();
    s.segments[seg]
        .tracks
        .iter()
        .find(|t| t.kind == kind)
        .unwrap()
}

fn within(actual: i64, expected: i64, tolerance: i64, what: &str) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: {actual} ms is not within {tolerance} ms of {expected} ms"
    );
}

fn check_mutes_archive(r: &ArchiveReport, codec: &str) {
    assert_eq!(r.span_ms, Some([0, 8_000]));
    // Stream m: audio mute 2000..3000, video mute 4000..5500 (container time = archive time).
    let audio = track(r, "m", 0, TrackKind::Audio);
    assert_eq!(audio.codec.as_str(), "opus");
    assert_eq!(audio.gaps.len(), 1, "{:?}", audio.gaps);
    within(
        audio.gaps[0].from_ms,
        2_000 - PACKET_MS,
        PACKET_MS,
        "audio gap start",
    );
    within(audio.gaps[0].to_ms, 3_000, PACKET_MS, "audio gap end");
    let video = track(r, "m", 0, TrackKind::Video);
    assert_eq!(video.codec.as_str(), codec);
    assert_eq!(video.gaps.len(), 1, "{:?}", video.gaps);
    within(
        video.gaps[0].from_ms,
        4_000 - FRAME_MS,
        FRAME_MS,
        "video gap start",
    );
    within(video.gaps[0].to_ms, 5_500, FRAME_MS, "video gap end");
    // 8 s at 30 fps less 1.5 s of mute.
    assert_eq!(video.frames, 240 - 45);
    assert!(video.backwards_timestamps == 0);
    // The resolution change at 6000.
    assert_eq!((video.width, video.height), (Some(160), Some(120)));
    assert_eq!(
        video.resolution_changes.len(),
        1,
        "{:?}",
        video.resolution_changes
    );
    let change = video.resolution_changes[0];
    assert_eq!((change.width, change.height), (320, 180));
    within(change.at_ms, 6_000, FRAME_MS, "resolution change");

    // Stream s: two segments in order, no gaps in either.
    let s = r.streams.iter().find(|s| s.stream_id == "s").unwrap();
    let names: Vec<&str> = s.segments.iter().map(|g| g.filename.as_str()).collect();
    let ext = if codec == "vp8" { "webm" } else { "mkv" };
    assert_eq!(names, [format!("s_1.{ext}"), format!("s_2.{ext}")]);
    assert_eq!(
        (s.segments[0].start_ms, s.segments[1].start_ms),
        (500, 4_500)
    );
    assert_eq!(s.presence_ms, [[500, 3_500], [4_500, 8_000]]);
    for seg in &s.segments {
        assert!(!seg.has_duration && !seg.has_cues, "live-style files");
        assert!(seg.truncated.is_none());
        for t in &seg.tracks {
            assert!(
                t.gaps.is_empty(),
                "{} {:?}: {:?}",
                seg.filename,
                t.kind,
                t.gaps
            );
            assert!(t.resolution_changes.is_empty());
            assert_eq!(t.first_ms, Some(0));
        }
        let dur = seg.stop_ms - seg.start_ms;
        within(seg.duration_ms.unwrap(), dur, FRAME_MS, "segment duration");
    }
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

#[test]
fn webm_vp8_mutes_segments_and_resize() {
    let r = inspect(ContainerKind::Webm, 0);
    assert!(
        r.streams
            .iter()
            .flat_map(|s| &s.segments)
            .all(|g| g.container == "webm")
    );
    check_mutes_archive(&r, "vp8");
}

#[test]
fn mkv_h264_mutes_segments_and_resize() {
    let r = inspect(ContainerKind::Mkv, 0);
    assert!(
        r.streams
            .iter()
            .flat_map(|s| &s.segments)
            .all(|g| g.container == "matroska")
    );
    check_mutes_archive(&r, "h264");
}

#[test]
fn mkv_h264_in_decode_order_gives_no_false_gaps() {
    // B-frames store video in decode order: presentation times go back and forth.
    let r = inspect(ContainerKind::Mkv, 2);
    check_mutes_archive(&r, "h264");
}

#[test]
fn min_gap_threshold_changes_what_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_sample(dir.path(), &mutes_spec(ContainerKind::Webm));
    let opts = InspectOptions {
        video_gap_ms: 2_000,
        audio_gap_ms: 2_000,
    };
    let r = inspect_archive(&path, &opts).unwrap();
    let gaps: usize = r
        .streams
        .iter()
        .flat_map(|s| &s.segments)
        .flat_map(|g| &g.tracks)
        .map(|t| t.gaps.len())
        .sum();
    assert_eq!(gaps, 0, "mutes of 1 and 1.5 s are under a 2 s threshold");
}

#[test]
fn duration_mismatch_with_the_manifest_is_warned() {
    // A manifest that claims 1 s more than the file holds.
    let dir = tempfile::tempdir().unwrap();
    let spec = archive(
        "short",
        ContainerKind::Webm,
        vec![stream("a", [9, 9, 9], vec![], vec![segment(0, 2_000)])],
    );
    let media =
        mosaic::sample::encode_segment(&spec, &spec.streams[0], &spec.streams[0].segments[0])
            .unwrap();
    let manifest = manifest_for("a.webm", media.len())
        .replace("\"stopTimeOffset\":1000", "\"stopTimeOffset\":3000");
    let path = dir.path().join("a.zip");
    write_zip(
        &path,
        &[
            Item::Deflated("x.json", manifest.as_bytes()),
            Item::Stored("a.webm", &media),
        ],
    );
    let r = inspect_archive(&path, &InspectOptions::default()).unwrap();
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(
        r.warnings[0].contains("says 3000 ms") && r.warnings[0].contains("holds 19"),
        "{}",
        r.warnings[0]
    );
}

/// The scan notes where every cluster begins (compose starts there with `--from`), the span
/// of its frames and its first key frame: checked against the bytes of a generated WebM
/// (a key frame every 10 s).
#[test]
fn the_scan_notes_where_each_cluster_begins_and_its_key_frames() {
    let mut spec = mosaic::sample::bench(21_000);
    spec.streams.truncate(1);
    (spec.streams[0].width, spec.streams[0].height) = (160, 120);
    let stream = &spec.streams[0];
    let bytes = mosaic::sample::encode_segment(&spec, stream, &stream.segments[0]).unwrap();
    let report =
        mosaic::inspect::inspect_container(&bytes[..], "cam.webm", &InspectOptions::default())
            .unwrap();
    let index = &report.clusters;
    let clusters = index.clusters();
    assert!(clusters.len() >= 3, "{} clusters", clusters.len());
    for c in clusters {
        let at = c.byte as usize;
        assert_eq!(
            bytes[at..at + 4],
            [0x1F, 0x43, 0xB6, 0x75],
            "a Cluster at {at}"
        );
    }
    assert_eq!(index.header_end(), Some(clusters[0].byte));
    let keys: Vec<i64> = clusters.iter().filter_map(|c| c.key_ns).collect();
    assert_eq!(keys, [0, 10_000_000_000, 20_000_000_000]);
    let (first, last) = clusters[0].span_ns.unwrap();
    assert_eq!(first, 0);
    assert!(last < clusters[1].span_ns.unwrap().0 + 100_000_000);
    let end = clusters.last().unwrap().span_ns.unwrap().1;
    assert!(
        (20_950_000_000..=21_020_000_000).contains(&end),
        "ends at {end}"
    );

    let resume = index.resume_video(15_000_000_000).unwrap();
    let at = clusters.iter().find(|c| c.byte == resume).unwrap();
    assert_eq!(at.key_ns, Some(10_000_000_000));
}
