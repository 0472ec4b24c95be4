//! `--trim empty`: a call everybody leaves for 16 s before one of them comes back. The 16 s
//! go, to the frame, in WebM and in audio-only M4A: the marks after them come 16 s earlier,
//! picture and sound together, the picture on each side of the joint is the call's, and
//! the report's cut says where it was.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use mosaic::sample::ContainerKind;
use serde_json::Value;

const RED: [u8; 3] = [200, 40, 40];
const BLUE: [u8; 3] = [40, 70, 210];

/// Ana is there 0-8 s and again 24-32 s; Ben 0-6 s. Nobody is there from 8 s to 24 s.
fn write_call(dir: &Path) -> std::path::PathBuf {
    let streams = vec![
        stream(
            "ana",
            RED,
            vec![3_000, 28_000],
            vec![segment(0, 8_000), segment(24_000, 32_000)],
        ),
        stream("ben", BLUE, vec![1_500], vec![segment(0, 6_000)]),
    ];
    write_sample(dir, &archive("left", ContainerKind::Webm, streams))
}

fn compose(zip: &Path, out: &Path, extra: &[&str]) -> Value {
    let run = run_ok(
        Command::new(env!("CARGO_BIN_EXE_mosaic"))
            .arg("compose")
            .arg(zip)
            .arg("-o")
            .arg(out)
            .args(["--size", "640x480", "--speed", "fast", "--json"])
            .args(extra),
    );
    serde_json::from_slice(&run.stdout).unwrap()
}

#[test]
fn trim_empty_cuts_the_absence() {
    let dir = tempfile::tempdir().unwrap();
    let zip = write_call(dir.path());
    let frame = 1000.0 / 30.0;

    let webm = dir.path().join("call.webm");
    let report = compose(&zip, &webm, &["--trim", "empty"]);
    assert_eq!(
        report["cuts"],
        serde_json::json!([{"from_ms": 8_000, "to_ms": 24_000}]),
        "{report}"
    );
    assert_eq!(report["duration_ms"], 16_000);
    assert_eq!(report["frames"], 480);
    let (_, duration) = probe(&webm);
    near(duration * 1000.0, 16_000.0, frame, "the WebM's duration");
    let d = decode(&webm);
    assert_eq!(d.frames.len(), 480);
    // Ana on both sides of the joint, alone.
    for t in [7_900.0, 8_050.0] {
        is_colour(d.rgb_at(d.frame_at(t), 0.5, 0.5), RED, &format!("at {t}"));
    }
    // Her mark after the absence comes 16 s earlier; every mark within a frame (picture)
    // and 20 ms (sound).
    let flashes = d.flashes_at(0.5, 0.5);
    assert!(
        flashes.iter().any(|&f| (f - 12_000.0).abs() <= frame),
        "{flashes:?}"
    );
    let beeps = d.beeps_ms();
    assert_eq!(beeps.len(), 3, "{beeps:?}");
    for (got, want) in beeps.iter().zip([1_500.0, 3_000.0, 12_000.0]) {
        near(*got, want, 20.0, "a beep");
    }
    // No click: the sound fades to nothing at the joint.
    assert!(d.rms(7_997.0, 8_003.0) < 0.25 * d.rms(7_700.0, 7_900.0));

    // The same cut in sound alone.
    let m4a = dir.path().join("call.m4a");
    let report = compose(&zip, &m4a, &["--trim", "empty"]);
    assert_eq!(report["duration_ms"], 16_000);
    let d = decode(&m4a);
    near(
        d.audio.len() as f64 / 48.0,
        16_000.0,
        25.0,
        "the M4A's length",
    );
    let beeps = d.beeps_ms();
    assert_eq!(beeps.len(), 3, "{beeps:?}");
    near(beeps[2], 12_000.0, 20.0, "the beep after the absence");

    // 16 s is under a --trim-min of 20 s: nothing is cut.
    let report = compose(&zip, &m4a, &["--trim", "empty", "--trim-min", "20s"]);
    assert_eq!(report["cuts"], serde_json::json!([]));
    assert_eq!(report["duration_ms"], 32_000);
}
