//! When each frame shows, measured on real encoded media: a file that begins muted, a window
//! from late in the files (`--from`) and one that opens inside a video gap, frames that fall
//! between the output's (each in the nearest output frame), a camera that stops before its
//! sound (frozen, then the placeholder). VP8 in WebM and H.264 in Matroska, whose decoders time their frames
//! differently.

mod common;

use common::*;
use mosaic::compose::plan::PlanOptions;
use mosaic::compose::{ComposeOptions, Control, compose};
use mosaic::sample::{ArchiveSpec, ContainerKind};

const FRAME_MS: f64 = 1000.0 / 30.0;

/// The small output, from `from_ms` to `to_ms` of the call.
fn window(from_ms: i64, to_ms: i64) -> ComposeOptions {
    ComposeOptions {
        plan: PlanOptions {
            from_ms: Some(from_ms),
            to_ms: Some(to_ms),
            ..small().plan
        },
        ..small()
    }
}

/// m (red, with `m_marks`) sends no video in `gap` while its sound goes on, beside s (blue);
/// both from 0 to `stop_ms`.
fn camera_gap(id: &str, stop_ms: i64, gap: [i64; 2], m_marks: Vec<i64>) -> ArchiveSpec {
    let mut m = segment(0, stop_ms);
    m.video_mutes = vec![gap];
    archive(
        id,
        ContainerKind::Webm,
        vec![
            stream("m", [200, 30, 30], m_marks, vec![m]),
            stream("s", [30, 30, 200], vec![], vec![segment(0, stop_ms)]),
        ],
    )
}

/// A file that begins with a mute of both media (its first frame 2 s into the file, as a
/// publisher who joins muted is recorded) plays where its frames' times say, not from the
/// segment's start: GStreamer's demuxer starts its stream at the first frame.
#[test]
fn a_file_that_begins_muted_keeps_its_marks_in_place() {
    let mut late = segment(0, 6_000);
    late.video_mutes = vec![[0, 2_000]];
    late.audio_mutes = vec![[0, 2_000]];
    let spec = archive(
        "late-start",
        ContainerKind::Webm,
        vec![
            stream("m", [200, 30, 30], vec![3_000], vec![late]),
            stream(
                "s",
                [30, 30, 200],
                vec![1_000, 4_500],
                vec![segment(0, 6_000)],
            ),
        ],
    );
    for (container, spec) in in_webm_and_mkv(&spec) {
        let (_dir, out, _) = compose_sample(&spec, "late.mp4", &small());
        let d = decode(&out);
        let m = d.flashes_at(0.25, 0.5);
        assert_eq!(m.len(), 1, "{container:?}: m flashes {m:?}");
        near(m[0], 3_000.0, FRAME_MS, "flash of m");
        let s = d.flashes_at(0.75, 0.5);
        assert_eq!(s.len(), 2, "{container:?}: s flashes {s:?}");
        let beeps = d.beeps_ms();
        assert_eq!(beeps.len(), 3, "{container:?}: beeps {beeps:?}");
        for (got, want) in beeps.iter().zip([1_000.0, 3_000.0, 4_500.0]) {
            near(*got, want, 20.0, "beep");
        }
        // Before its first frame m's tile shows its placeholder, after it m's colour.
        is_colour(
            d.rgb_at(d.frame_at(1_500.0), 0.25, 0.3),
            PLACEHOLDER,
            "m not yet",
        );
        is_colour(d.rgb_at(d.frame_at(2_500.0), 0.25, 0.5), [200, 30, 30], "m");
    }
}

/// A stream whose frames fall between the output's frames (its file starts 1030 ms into the
/// call, so each frame is 3.3 ms before an output frame's time): every frame shows from the
/// output frame nearest its own time, in VP8 (frames without durations) and H.264 (frames
/// with). GStreamer's aggregators alone showed the one 30 ms early (VP8) or one whose time
/// had passed (H.264).
#[test]
fn frames_between_output_frames_show_at_the_nearest_one() {
    let spec = archive(
        "off-grid",
        ContainerKind::Webm,
        vec![
            stream("m", [200, 30, 30], vec![3_000], vec![segment(1_030, 5_000)]),
            stream("s", [30, 30, 200], vec![2_000], vec![segment(0, 5_000)]),
        ],
    );
    for (container, spec) in in_webm_and_mkv(&spec) {
        let (_dir, out, _) = compose_sample(&spec, "off-grid.mp4", &small());
        let d = decode(&out);
        // m joins on the right (s keeps its place). Its flash frame begins at 1030 + 59
        // frames = 2996.7 ms: the nearest output frame is 3000's, the beep's.
        let flash_pts = 1_030.0 + 59.0 * FRAME_MS;
        let m = d.flashes_at(0.75, 0.5);
        assert_eq!(m.len(), 1, "{container:?}: m flashes {m:?}");
        near(
            m[0],
            flash_pts,
            FRAME_MS / 2.0 + 1.0,
            "flash of m (its frame's time)",
        );
        near(m[0], 3_000.0, 1.0, &format!("{container:?}: flash of m"));
        // On the output's own grid nothing moves.
        let s = d.flashes_at(0.25, 0.5);
        assert_eq!(s.len(), 1, "{container:?}: s flashes {s:?}");
        near(s[0], 2_000.0, 1.0, &format!("{container:?}: flash of s"));
        let beeps = d.beeps_ms();
        assert_eq!(beeps.len(), 2, "{container:?}: beeps {beeps:?}");
        near(beeps[0], 2_000.0, 20.0, "beep of s");
        near(beeps[1], 3_000.0, 20.0, "beep of m");
        // m shows from its first frame (1030 ms), in the output frame at 1033 ms; before
        // it, s fills the frame.
        is_colour(
            d.rgb_at(d.frame_at(1_000.0), 0.75, 0.5),
            [30, 30, 200],
            "s alone",
        );
        is_colour(d.rgb_at(d.frame_at(1_034.0), 0.75, 0.5), [200, 30, 30], "m");
    }
}

/// A camera turned off for good before its publisher left: the file's video ends at 5 s,
/// its sound goes on to 8 s. The last frame stays (frozen) for a second, then the
/// placeholder shows; the sound plays to the end.
#[test]
fn video_that_ends_before_the_sound_freezes_then_shows_the_placeholder() {
    let spec = camera_gap("camera-off", 8_000, [5_000, 8_000], vec![1_000, 7_000]);
    for (container, spec) in in_webm_and_mkv(&spec) {
        let (_dir, out, _) = compose_sample(&spec, "off.mp4", &small());
        let d = decode(&out);
        let at = |ms: f64| d.rgb_at(d.frame_at(ms), 0.25, 0.5);
        is_colour(
            at(4_900.0),
            [200, 30, 30],
            &format!("{container:?}: m live"),
        );
        for ms in [5_100.0, 5_500.0, 5_900.0] {
            is_colour(
                at(ms),
                [200, 30, 30],
                &format!("{container:?}: m frozen at {ms}"),
            );
        }
        is_colour(
            d.rgb_at(d.frame_at(6_500.0), 0.25, 0.3),
            PLACEHOLDER,
            &format!("{container:?}: m's placeholder"),
        );
        let beeps = d.beeps_ms();
        assert_eq!(beeps.len(), 2, "{container:?}: beeps {beeps:?}");
        near(
            beeps[1],
            7_000.0,
            20.0,
            "m's beep after its camera went off",
        );
    }
}

/// `--from` late in a file: every file is read from the key frame before the start (the
/// generator puts one every 10 s), and what comes out is what a whole read gives: each
/// tile's colour from the first frame, marks and beeps in place.
#[test]
fn from_late_in_the_files_starts_decoding_at_the_key_frame_before() {
    let spec = archive(
        "resume",
        ContainerKind::Webm,
        vec![
            stream("m", [200, 30, 30], vec![16_000], vec![segment(0, 22_000)]),
            stream("s", [30, 30, 200], vec![17_000], vec![segment(0, 22_000)]),
        ],
    );
    for (container, spec) in in_webm_and_mkv(&spec) {
        let opts = window(15_000, 19_000);
        let (_dir, out, report) = compose_sample(&spec, "late.mp4", &opts);
        assert_eq!(report.frames, 120);
        let d = decode(&out);
        assert_eq!(d.frames.len(), 120);
        is_colour(d.rgb_at(0, 0.25, 0.5), [200, 30, 30], "m's first frame");
        is_colour(d.rgb_at(0, 0.75, 0.5), [30, 30, 200], "s's first frame");
        let m = d.flashes_at(0.25, 0.5);
        let s = d.flashes_at(0.75, 0.5);
        assert_eq!((m.len(), s.len()), (1, 1), "{container:?}: {m:?} {s:?}");
        // In the output frame of their own time: the first frame of the window is the one
        // at 15 s, not the next (a frame exactly at the start was once dropped, and every
        // frame after it showed one output frame early).
        near(m[0], 1_000.0, 1.0, &format!("{container:?}: flash of m"));
        near(s[0], 2_000.0, 1.0, &format!("{container:?}: flash of s"));
        let beeps = d.beeps_ms();
        assert_eq!(beeps.len(), 2, "{container:?}: beeps {beeps:?}");
        for (got, want) in beeps.iter().zip([1_000.0, 2_000.0]) {
            near(*got, want, 20.0, "beep");
        }
        // The sound is there from the first millisecond.
        assert!(d.rms(0.0, 100.0) > 0.01, "sound at the start");
    }
}

/// `--from` inside a gap of a camera's video that began less than the freeze limit (1 s)
/// before it: the window opens on the camera's last frame, frozen, then its placeholder,
/// as the whole call shows there. The last frame before the start was dropped with
/// everything else before it, and the tile was black until the camera came back.
#[test]
fn from_inside_a_video_gap_opens_on_the_frozen_frame() {
    let spec = camera_gap("from-in-gap", 20_000, [14_700, 18_000], vec![]);
    for (container, spec) in in_webm_and_mkv(&spec) {
        // To after the camera is back, and to inside the gap (no frame of m's falls in that
        // window at all).
        for to_ms in [19_000, 17_000] {
            let (_dir, out, _) = compose_sample(&spec, "gap.mp4", &window(15_000, to_ms));
            let d = decode(&out);
            let what = |s: &str| format!("{container:?}, to {to_ms}: m {s}");
            // Frozen from the window's first frame to 15.7 s (the gap's start + 1 s) ...
            for ms in [0.0, 300.0, 600.0] {
                is_colour(
                    d.rgb_at(d.frame_at(ms), 0.25, 0.5),
                    [200, 30, 30],
                    &what(&format!("frozen at {ms} ms")),
                );
            }
            // ... then the placeholder until the camera comes back at 18 s.
            is_colour(
                d.rgb_at(d.frame_at(1_500.0), 0.25, 0.3),
                PLACEHOLDER,
                &what("placeholder"),
            );
            if to_ms > 18_000 {
                is_colour(
                    d.rgb_at(d.frame_at(3_500.0), 0.25, 0.5),
                    [200, 30, 30],
                    &what("live again"),
                );
            }
            is_colour(
                d.rgb_at(0, 0.75, 0.5),
                [30, 30, 200],
                &what("s at the start"),
            );
        }
    }
}

/// Every window of a call shows what the whole call shows at the same times. On the real
/// captures (irregular timing, gaps; this test skips where `../shared` is absent): windows
/// that open in live video, in a gap within the freeze limit and in one beyond it, each
/// compared frame by frame with the whole composite by the mean difference of their
/// thumbnails. Encoding alone stays under 2; a black or placeholder tile where the picture
/// belongs gives 10 to 70 (from 6.3 s: 56.8, until the frame before a window's start was
/// kept). From 17.3 s the window also ends inside the gap (the held frame goes out at EOS).
#[test]
fn real_captures_windows_show_what_the_whole_call_shows() {
    let Some(media) = shared_media() else { return };
    let dir = tempfile::tempdir().unwrap();
    let zip = real_archive(&media, dir.path());
    let whole_out = dir.path().join("whole.mp4");
    compose(&zip, &whole_out, &small(), &Control::default()).unwrap();
    let whole = decode(&whole_out);
    // Live at 2 s; in chrome52's gaps within the freeze limit at 6.3, 17.3, 28.5, 33 and
    // 40.5 s, and beyond it at 45 and 49.3 s.
    for from_ms in [2_000, 6_300, 17_300, 28_500, 33_000, 40_500, 45_000, 49_300] {
        let out = dir.path().join(format!("from-{from_ms}.mp4"));
        let opts = window(from_ms, from_ms + 1_500);
        compose(&zip, &out, &opts, &Control::default()).unwrap();
        let part = decode(&out);
        assert_eq!(part.frames.len(), 45, "from {from_ms}");
        let first = whole.frame_at(from_ms as f64);
        for (i, thumb) in part.thumbs.iter().enumerate() {
            let diff = mean_difference(thumb, &whole.thumbs[first + i]);
            assert!(diff < 6.0, "from {from_ms}: frame {i} differs by {diff:.1}");
        }
        // The sound too, where a Firefox capture plays (packets stamped 6.5 ms after their
        // sound, with a CodecDelay saying so: a window was that much late).
        if [17_300, 28_500].contains(&from_ms) {
            let lag = sound_lag_ms(&part, &whole, from_ms as f64);
            assert!(lag.abs() <= 1.5, "from {from_ms}: sound {lag} ms off");
        }
    }
}

/// How far (ms) the first second of `part`'s sound lies from the same sound in `whole`,
/// which `part` shows from `from_ms`: the shift, within 10 ms, that matches them best.
fn sound_lag_ms(part: &Decoded, whole: &Decoded, from_ms: f64) -> f64 {
    let index = |d: &Decoded, ms: f64| ((ms - d.audio_start_ns as f64 / 1e6) * 48.0).round() as i64;
    let (p0, w0) = (index(part, 0.0).max(0), index(whole, from_ms));
    let best = (-480i64..=480)
        .map(|lag| {
            let error: f64 = (0..48_000i64)
                .map(|k| {
                    let a = part.audio[(p0 + k) as usize];
                    let b = whole.audio[(w0 + lag + k) as usize];
                    f64::from(a - b).powi(2)
                })
                .sum();
            (lag, error)
        })
        .min_by(|x, y| x.1.total_cmp(&y.1))
        .map_or(0, |(lag, _)| lag);
    -best as f64 / 48.0
}

fn mean_difference(a: &[u8], b: &[u8]) -> f64 {
    let sum: u64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / a.len().max(1) as f64
}

/// Sound lands where it was recorded to the millisecond, in a whole compose and in a window
/// alike. An Opus stream's first packet begins with the encoder's priming (its OpusHead
/// pre-skip, 6.5 ms); the mixer takes each following packet as continuing the one before,
/// so priming kept at a file's start put all of its sound 6.5 ms late in a whole compose,
/// while a window, which starts decoding mid-file, had it in place.
#[test]
fn sound_lands_to_the_millisecond_whole_and_windowed() {
    let spec = archive(
        "to-the-ms",
        ContainerKind::Webm,
        vec![
            stream(
                "m",
                [200, 30, 30],
                vec![1_000, 12_000],
                vec![segment(0, 13_000)],
            ),
            stream("s", [30, 30, 200], vec![], vec![segment(0, 13_000)]),
        ],
    );
    for (container, spec) in in_webm_and_mkv(&spec) {
        let (_dir, out, _) = compose_sample(&spec, "whole.mp4", &small());
        let beeps = decode(&out).beeps_ms();
        assert_eq!(beeps.len(), 2, "{container:?}: {beeps:?}");
        for (got, want) in beeps.iter().zip([1_000.0, 12_000.0]) {
            near(*got, want, 1.5, &format!("{container:?}: beep, whole"));
        }
        // Read from a cluster before 11.5 s (see `from_late_…`).
        let (_dir, out, _) = compose_sample(&spec, "window.mp4", &window(11_500, 13_000));
        let beeps = decode(&out).beeps_ms();
        assert_eq!(beeps.len(), 1, "{container:?}: {beeps:?}");
        near(
            beeps[0],
            500.0,
            1.5,
            &format!("{container:?}: beep, window"),
        );
    }
}

/// A 30 fps camera into a 30 fps output: every frame of the camera shows in exactly one
/// output frame, none twice and none skipped (WebM stores times in whole milliseconds,
/// 33 ms apart and then 34, and the aggregators alone showed one frame twice and skipped
/// the next every 100 ms). Measured by the sample picture's bar, which moves 4 pixels a
/// frame.
#[test]
fn each_frame_of_a_camera_at_the_output_rate_shows_once() {
    let spec = archive(
        "steady",
        ContainerKind::Webm,
        vec![stream("m", [200, 30, 30], vec![], vec![segment(0, 4_000)])],
    );
    for (container, spec) in in_webm_and_mkv(&spec) {
        let (_dir, out, _) = compose_sample(&spec, "steady.mp4", &small());
        let d = decode(&out);
        assert_eq!(d.frames.len(), 120);
        // The 160x120 picture fills the 640x480 output: the bar moves 4 * 128 / 160 = 3.2
        // thumbnail pixels a frame (and wraps every 40 frames).
        let xs: Vec<f64> = (0..d.frames.len())
            .map(|i| d.bar_x(i, 0.05).expect("a bar in every frame"))
            .collect();
        // (Pairs where the bar is cut by the picture's edge, or wraps, are left out.)
        let whole = |x: f64| (4.0..=116.0).contains(&x);
        let steps: Vec<f64> = xs
            .windows(2)
            .filter(|w| whole(w[0]) && whole(w[1]) && w[1] > w[0] - 50.0)
            .map(|w| w[1] - w[0])
            .collect();
        assert!(
            steps.len() > 90,
            "{container:?}: {} steps measured",
            steps.len()
        );
        let odd: Vec<(usize, f64)> = steps
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, s)| !(2.2..=4.2).contains(s))
            .collect();
        assert!(
            odd.is_empty(),
            "{container:?}: steps of the bar that are not one frame's: {odd:?}"
        );
    }
}
