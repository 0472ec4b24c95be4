//! Damaged media in one stream's file: bits flipped in the middle, the file cut inside a
//! cluster, a cluster whose size lies (too small, too large), garbage between two clusters.
//! Inspection skips the damaged region and resumes at the next cluster, naming it; compose
//! exits 0 with the full duration, the other stream's marks in place and the damaged
//! stream's sound after the damage in place, the damage in its `--json` warnings;
//! `--strict` refuses it (65, nothing written). A stream of which no video frame can be
//! decoded shows its placeholder, its sound in place, and is warned about.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use mosaic::sample::{ArchiveSpec, ContainerKind};

const CLUSTER: [u8; 4] = [0x1F, 0x43, 0xB6, 0x75];

fn clusters(bytes: &[u8]) -> Vec<usize> {
    bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == CLUSTER)
        .map(|(i, _)| i)
        .collect()
}

fn compose(zip: &Path, out: &Path, strict: bool) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mosaic"));
    cmd.args([
        "compose",
        zip.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ])
    .args(["--size", "640x480", "--speed", "fast", "--json"]);
    if strict {
        cmd.arg("--strict");
    }
    cmd.output().unwrap()
}

/// The two-stream, 9 s archive every case damages: `a` (marks 1 s, 7 s) stays intact;
/// `b` (marks 2 s, 8 s) is in two clusters, from 0 s and from 5 s. Gives the unzipped folder.
fn spec() -> ArchiveSpec {
    archive(
        "damaged",
        ContainerKind::Webm,
        vec![
            stream(
                "a",
                [200, 40, 40],
                vec![1_000, 7_000],
                vec![segment(0, 9_000)],
            ),
            stream(
                "b",
                [40, 40, 200],
                vec![2_000, 8_000],
                vec![segment(0, 9_000)],
            ),
        ],
    )
}

fn sample(dir: &Path) -> std::path::PathBuf {
    let spec = spec();
    let folder = dir.join("call");
    std::fs::create_dir(&folder).unwrap();
    let zip = write_sample(dir, &spec);
    let status = Command::new("unzip")
        .args(["-q", zip.to_str().unwrap(), "-d", folder.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    folder
}

/// `--strict` refuses the damaged archive: exit 65 naming b.webm and `why`, no output.
fn strict_refuses(folder: &Path, out: &Path, why: &str) {
    let run = compose(folder, out, true);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(65), "{stderr}");
    assert!(
        stderr.contains("b.webm") && stderr.contains(why),
        "{stderr}"
    );
    assert!(!out.exists());
}

/// A pseudo-random byte sequence (deterministic).
fn noise(seed: u64) -> impl Iterator<Item = u64> {
    let mut x = seed;
    std::iter::repeat_with(move || {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        x >> 29
    })
}

/// Damages `b.webm` with `damage` (given its bytes and its clusters' offsets), then checks
/// inspection, compose (exit 0, 9 s, `a`'s marks, `b`'s surviving beeps, the warning) and
/// `--strict` (65, nothing written).
fn check(damage: impl Fn(&mut Vec<u8>, &[usize]), b_beeps: &[f64], warning: &str) {
    let dir = tempfile::tempdir().unwrap();
    let folder = sample(dir.path());
    let file = folder.join("b.webm");
    let mut bytes = std::fs::read(&file).unwrap();
    let starts = clusters(&bytes);
    assert_eq!(starts.len(), 2, "b.webm's clusters: {starts:?}");
    damage(&mut bytes, &starts);
    std::fs::write(&file, &bytes).unwrap();

    let r = mosaic::inspect::inspect_archive(&folder, &Default::default()).unwrap();
    let seg = r.segment("b.webm").unwrap();
    assert!(
        !seg.damage.is_empty() || seg.truncated.is_some(),
        "the damage is reported"
    );

    let out = dir.path().join("out.mp4");
    let run = compose(&folder, &out, false);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["duration_ms"], 9_000);
    let (_, duration) = probe(&out);
    assert!((duration - 9.0).abs() < 0.1, "{duration}");
    let warnings = report["warnings"].to_string();
    assert!(warnings.contains(warning), "{warnings}");
    let d = decode(&out);
    // a's marks (left half) untouched; b's beeps that survive, in place.
    let a = d.flashes_at(0.25, 0.5);
    assert_eq!(a.len(), 2, "{a:?}");
    for (got, want) in a.iter().zip([1_000.0, 7_000.0]) {
        assert!((got - want).abs() <= 1000.0 / 30.0, "{a:?}");
    }
    let beeps = d.beeps_ms();
    // Within 2 ms: the packet lost at a cut once put every later sound of b 20 ms early (the
    // mixer closed the hole), and the Opus priming kept at the start 6.4 ms late.
    for want in [1_000.0, 7_000.0].iter().chain(b_beeps) {
        assert!(
            beeps.iter().any(|b| (b - want).abs() <= 2.0),
            "beep at {want}: {beeps:?}"
        );
    }

    std::fs::remove_file(&out).unwrap();
    strict_refuses(&folder, &out, "--strict");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("out"))
        .collect();
    assert!(left.is_empty(), "nothing written: {left:?}");
}

#[test]
fn flipped_bits_in_one_file_are_skipped_and_named() {
    // 300 flipped bits in the first cluster's middle, well before the next cluster: b's
    // beep at 2 s is in the damage; the one at 8 s is after it.
    check(
        |bytes, starts| {
            let (from, to) = (starts[0] + 3_000, starts[1] - 2_000);
            assert!(to > from + 1_000, "{starts:?}");
            for x in noise(7).take(300) {
                let at = from + (x >> 4) as usize % (to - from);
                bytes[at] ^= 1 << (x % 8);
            }
        },
        &[8_000.0],
        "b.webm: damaged",
    );
}

#[test]
fn a_file_cut_inside_a_cluster_keeps_what_came_before() {
    check(
        |bytes, starts| {
            let cut = (starts[1] + bytes.len()) / 2;
            bytes.truncate(cut);
        },
        &[2_000.0],
        "b.webm: truncated",
    );
}

#[test]
fn a_cluster_whose_size_is_too_small_is_skipped_to_the_next() {
    // The first cluster says it holds 1000 bytes; it holds 28 kB.
    check(
        |bytes, starts| {
            let size_at = starts[0] + 4;
            bytes[size_at..size_at + 8].copy_from_slice(&[1, 0, 0, 0, 0, 0, 0x03, 0xE8]);
        },
        &[8_000.0],
        "b.webm: damaged",
    );
}

#[test]
fn a_cluster_whose_size_is_too_large_still_gives_the_next_one() {
    // The first cluster says it holds 1 MiB, more than the whole file.
    check(
        |bytes, starts| {
            let size_at = starts[0] + 4;
            bytes[size_at..size_at + 8].copy_from_slice(&[1, 0, 0, 0, 0, 0x10, 0, 0]);
        },
        &[2_000.0, 8_000.0],
        "b.webm: damaged",
    );
}

#[test]
fn garbage_between_two_clusters_is_skipped() {
    check(
        |bytes, starts| {
            let garbage: Vec<u8> = noise(11).take(3_000).map(|x| x as u8).collect();
            bytes.splice(starts[1]..starts[1], garbage);
        },
        &[2_000.0, 8_000.0],
        "b.webm: damaged",
    );
}

#[test]
fn a_video_of_which_nothing_can_be_decoded_shows_the_placeholder() {
    let spec = spec();
    let dir = tempfile::tempdir().unwrap();
    let folder = sample(dir.path());
    // b again, every video frame's payload replaced: a container that reads, a video that
    // does not decode, real sound.
    let b = &spec.streams[1];
    let mut tracks = mosaic::sample::encode_tracks(&spec, b, &b.segments[0]).unwrap();
    let (video, ..) = tracks.video.as_mut().unwrap();
    for p in &mut video.packets {
        p.data.iter_mut().for_each(|byte| *byte = 0x55);
    }
    let bytes = mosaic::sample::mux::write_live_matroska(
        Vec::new(),
        tracks.doc_type,
        tracks.video_track(),
        tracks.audio_track(),
        None,
    )
    .unwrap();
    std::fs::write(folder.join("b.webm"), bytes).unwrap();

    let out = dir.path().join("out.mp4");
    let run = compose(&folder, &out, false);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["duration_ms"], 9_000);
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("b.webm: no frame of its video can be decoded"),
        "{warnings}"
    );
    let d = decode(&out);
    // b's tile (the right half) is the placeholder: dark blue-grey, not b's blue.
    let rgb = d.rgb_at(d.frame_at(4_000.0), 0.75, 0.3);
    let placeholder = [48.0, 48.0, 64.0];
    let off = rgb
        .iter()
        .zip(placeholder)
        .map(|(a, b): (&f64, f64)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(off < 40.0, "b's tile at 4 s: {rgb:?}, not the placeholder");
    let a = d.flashes_at(0.25, 0.5);
    assert_eq!(a.len(), 2, "{a:?}");
    let beeps = d.beeps_ms();
    for want in [1_000.0, 2_000.0, 7_000.0, 8_000.0] {
        assert!(
            beeps.iter().any(|b| (b - want).abs() <= 2.0),
            "beep at {want}: {beeps:?}"
        );
    }

    std::fs::remove_file(&out).unwrap();
    strict_refuses(&folder, &out, "decoded");
}
