//! The four real browser captures in ../shared/media (no Duration, irregular timing, one
//! truncated), zipped with their manifest: inspected without error, long gaps reported.
//! Skips (and says so) only where ../shared is absent, as in a user's own clone.

mod common;

use common::*;
use mosaic::inspect::{InspectOptions, TrackKind, inspect_archive};

#[test]
fn real_captures_inspect_and_report_their_gaps() {
    let Some(media) = shared_media() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = real_archive(&media, dir.path());
    let r = inspect_archive(&path, &InspectOptions::default()).unwrap();
    assert_eq!(r.streams.len(), 4);
    let seg = |id: &str| {
        &r.streams
            .iter()
            .find(|s| s.stream_id == id)
            .unwrap()
            .segments[0]
    };
    let video_gaps = |id: &str| -> Vec<(i64, i64)> {
        seg(id)
            .tracks
            .iter()
            .find(|t| t.kind == TrackKind::Video)
            .unwrap()
            .gaps
            .iter()
            .map(|g| (g.from_ms, g.to_ms))
            .collect()
    };
    for s in ["chrome52", "chrome57", "firefox53", "firefox55nightly"] {
        assert!(!seg(s).has_duration || s.starts_with("firefox"), "{s}");
        let v = seg(s)
            .tracks
            .iter()
            .find(|t| t.kind == TrackKind::Video)
            .unwrap();
        assert_eq!(
            (v.codec.as_str(), v.width, v.height),
            ("vp8", Some(640), Some(480)),
            "{s}"
        );
    }
    // chrome52's longest video gaps (ffprobe agrees).
    let g = video_gaps("chrome52");
    for expected in [(16_883, 18_960), (11_978, 13_139), (19_019, 20_219)] {
        assert!(g.contains(&expected), "chrome52 lacks {expected:?}: {g:?}");
    }
    assert_eq!(
        seg("chrome52")
            .tracks
            .iter()
            .find(|t| t.kind == TrackKind::Video)
            .unwrap()
            .last_ms,
        Some(50_750)
    );
    // chrome57 is truncated: reported, and what was read is kept.
    let c57 = seg("chrome57");
    assert!(c57.truncated.is_some());
    assert!(video_gaps("chrome57").contains(&(2_873, 3_173)));
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("chrome57.webm") && w.contains("truncated"))
    );
    // Firefox: audio starts at -1 ms (before the first video frame), video stalls at first.
    let f53 = seg("firefox53");
    let a = f53
        .tracks
        .iter()
        .find(|t| t.kind == TrackKind::Audio)
        .unwrap();
    assert!(a.first_ms.unwrap() <= 6, "{:?}", a.first_ms);
    assert_eq!(video_gaps("firefox53")[0].0, 0);
    assert!(video_gaps("firefox53")[0].1 >= 900);
    assert_eq!(video_gaps("firefox55nightly")[0], (0, 696));
    // The manifest's chrome52 span (50.9 s) is 150 ms longer than the file: warned.
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("chrome52.webm") && w.contains("50900"))
    );
}
