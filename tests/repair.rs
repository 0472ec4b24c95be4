//! Repair on real encoded media, measured: after repair, a plain decode of each file (sound
//! played back to back, timestamps ignored) has every beep within 20 ms and every flash
//! within one frame of where it was recorded, including after an audio mute, after a video
//! mute and in a second segment; the container has a Duration and Cues; `--align archive`
//! puts every file on the archive's clock; real captures; failure leaves nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use mosaic::inspect::{InspectOptions, TrackKind, inspect_container};
use mosaic::repair::{Align, RepairReport, repair};
use mosaic::sample::ContainerKind;

const FRAME_MS: f64 = 1000.0 / 30.0;
/// The issue asks for beeps within 20 ms; repair places them within a sample or two of
/// 1.25 ms, and this tighter bound catches the priming and rounding slips that cost 2-7 ms.
const BEEP_MS: f64 = 3.0;

fn run(container: ContainerKind, align: Align) -> (tempfile::TempDir, RepairReport) {
    let dir = tempfile::tempdir().unwrap();
    let zip = write_sample(dir.path(), &mutes_spec(container));
    let report = repair(&zip, &dir.path().join("out"), align).unwrap();
    (dir, report)
}

fn file_of(report: &RepairReport, stream: &str) -> PathBuf {
    report
        .streams
        .iter()
        .find(|s| s.stream_id == stream)
        .unwrap()
        .output
        .clone()
}

/// The container's own facts: Duration and Cues present, audio without gaps, duration.
fn check_container(path: &Path, duration_ms: f64) {
    check_container_seeking(path, duration_ms, "a");
}

/// Like check_container, seeking on the `seek_on` stream ("a" or "v").
fn check_container_seeking(path: &Path, duration_ms: f64, seek_on: &str) {
    let r = inspect_container(
        std::fs::File::open(path).unwrap(),
        "out",
        &InspectOptions::default(),
    )
    .unwrap();
    assert!(
        r.has_duration && r.has_cues,
        "{}: Duration and Cues",
        path.display()
    );
    let audio = r.track(TrackKind::Audio).unwrap();
    assert!(
        audio.gaps.is_empty(),
        "audio is continuous: {:?}",
        audio.gaps
    );
    assert_eq!(audio.first_ms, Some(0));
    let (_, probed) = probe(path);
    near(probed * 1000.0, duration_ms, FRAME_MS, "container duration");
    // Seeking to the middle works (through the Cues; the generated video has one key frame,
    // at 0, so the audio is what can start mid-file): the first packets read from there
    // are near the middle. (Decoding errors fail `decode`, used by every test here.)
    let middle = duration_ms / 2000.0;
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-read_intervals",
            &format!("{middle:.3}%+0.2"),
            "-select_streams",
            seek_on,
            "-show_entries",
            "packet=pts_time",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first: f64 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .and_then(|l| l.trim_end_matches(',').parse().ok())
        .unwrap_or(-1.0);
    assert!(
        first >= 0.0 && (first - middle).abs() < 1.1,
        "seek to {middle} s read from {first} s"
    );
}

/// Marks of the mutes archive in each file, given where the file's time 0 is.
fn check_marks(report: &RepairReport, origin_m: f64, origin_s: f64) {
    let m = decode(&file_of(report, "m"));
    let want_m: Vec<f64> = [1_000.0, 3_500.0, 6_500.0]
        .iter()
        .map(|t| t - origin_m)
        .collect();
    let beeps = m.naive_beeps_ms();
    assert_eq!(beeps.len(), 3, "m beeps {beeps:?}");
    for (got, want) in beeps.iter().zip(&want_m) {
        near(
            *got,
            *want,
            BEEP_MS,
            "m beep (after the audio mute, after the video mute)",
        );
    }
    let flashes = m.flashes_ms();
    assert_eq!(flashes.len(), 3, "m flashes {flashes:?}");
    for (got, want) in flashes.iter().zip(&want_m) {
        near(*got, *want, FRAME_MS, "m flash");
    }
    let s = decode(&file_of(report, "s"));
    let want_s: Vec<f64> = [1_000.0, 5_000.0].iter().map(|t| t - origin_s).collect();
    let beeps = s.naive_beeps_ms();
    assert_eq!(beeps.len(), 2, "s beeps {beeps:?}");
    for (got, want) in beeps.iter().zip(&want_s) {
        near(
            *got,
            *want,
            BEEP_MS,
            "s beep (the second in its second segment)",
        );
    }
    for (got, want) in s.flashes_ms().iter().zip(&want_s) {
        near(*got, *want, FRAME_MS, "s flash");
    }
}

#[test]
fn webm_repair_keeps_every_mark_in_place_for_a_naive_player() {
    let (_dir, report) = run(ContainerKind::Webm, Align::Stream);
    assert_eq!(report.streams.len(), 2);
    assert!(report.streams.iter().all(|s| s.path == "remux"));
    check_marks(&report, 0.0, 500.0);
    // Decoded audio lasts the stream's span.
    let m = decode(&file_of(&report, "m"));
    near(
        m.audio_naive.len() as f64 / 48.0,
        8_000.0,
        20.0,
        "m audio length",
    );
    let s = decode(&file_of(&report, "s"));
    near(
        s.audio_naive.len() as f64 / 48.0,
        7_500.0,
        20.0,
        "s audio length (two segments joined)",
    );
    check_container(&file_of(&report, "m"), 8_000.0);
    check_container(&file_of(&report, "s"), 7_500.0);
    // The label `m "label" ü` passes the identifier gate: plain, with the original's hash.
    let name = file_of(&report, "m")
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with("m-m_label-h") && name.ends_with(".webm"),
        "{name}"
    );
}

#[test]
fn mkv_repair_keeps_every_mark_in_place() {
    let (_dir, report) = run(ContainerKind::Mkv, Align::Stream);
    assert!(
        file_of(&report, "m")
            .extension()
            .is_some_and(|e| e == "mkv")
    );
    assert_eq!(probe(&file_of(&report, "m")).0, ["h264", "opus"]);
    check_marks(&report, 0.0, 500.0);
}

#[test]
fn align_archive_puts_every_file_on_the_archive_clock() {
    let (_dir, report) = run(ContainerKind::Webm, Align::Archive);
    for s in &report.streams {
        assert_eq!(s.start_ms, 0);
        near(s.duration_ms as f64, 8_000.0, FRAME_MS, &s.stream_id);
        check_container(&s.output, 8_000.0);
    }
    check_marks(&report, 0.0, 0.0);
}

#[test]
fn real_captures_repair_with_duration_cues_and_continuous_audio() {
    let Some(media) = shared_media() else { return };
    let dir = tempfile::tempdir().unwrap();
    let zip = real_archive(&media, dir.path());
    let report = repair(&zip, &dir.path().join("out"), Align::Stream).unwrap();
    assert_eq!(report.streams.len(), 4);
    for s in &report.streams {
        let r = inspect_container(
            std::fs::File::open(&s.output).unwrap(),
            "out",
            &InspectOptions::default(),
        )
        .unwrap();
        assert!(r.has_duration && r.has_cues, "{}", s.stream_id);
        assert!(r.truncated.is_none());
        let audio = r.track(TrackKind::Audio).unwrap();
        assert!(audio.gaps.is_empty(), "{}: {:?}", s.stream_id, audio.gaps);
    }
    // The truncated capture is repaired up to where it is readable, and the report says so.
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("chrome57.webm") && w.contains("truncated"))
    );
    let c57 = report
        .streams
        .iter()
        .find(|s| s.stream_id == "chrome57")
        .unwrap();
    assert!(c57.video_packets > 100);
}

#[test]
fn failed_repair_leaves_nothing_that_looks_finished() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = r#"{"id":"x","createdAt":1,"files":[
        {"streamId":"b","filename":"b.webm","startTimeOffset":0,"stopTimeOffset":1000}]}"#;
    let zip = dir.path().join("bad.zip");
    write_zip(
        &zip,
        &[
            Item::Deflated("x.json", manifest.as_bytes()),
            Item::Stored("b.webm", &[0x42u8; 2_000]),
        ],
    );
    let out = dir.path().join("out");
    let run = Command::new(env!("CARGO_BIN_EXE_mosaic"))
        .arg("repair")
        .arg(&zip)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(65),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let left: Vec<_> = std::fs::read_dir(&out)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn audio_only_files_are_aligned_for_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let zip = write_sample(dir.path(), &mutes_spec(ContainerKind::Webm));
    for (format, codec) in [
        (mosaic::repair::AudioFormat::Opus, "opus"),
        (mosaic::repair::AudioFormat::Flac, "flac"),
        (mosaic::repair::AudioFormat::Wav, "pcm_s16le"),
    ] {
        let out = dir.path().join(codec);
        let opts = mosaic::repair::RepairOptions {
            align: Align::Archive,
            audio_only: Some(format),
            reencode: false,
            strict: false,
        };
        let report = mosaic::repair::repair_with(&zip, &out, &opts, &Default::default()).unwrap();
        for s in &report.streams {
            let (codecs, duration) = probe(&s.output);
            assert_eq!(codecs, [codec], "{}", s.output.display());
            near(duration * 1000.0, 8_000.0, FRAME_MS, "audio-only duration");
            let d = decode(&s.output);
            let want: &[f64] = if s.stream_id == "m" {
                &[1_000.0, 3_500.0, 6_500.0]
            } else {
                &[1_000.0, 5_000.0]
            };
            let beeps = d.naive_beeps_ms();
            assert_eq!(
                beeps.len(),
                want.len(),
                "{codec} {}: {beeps:?}",
                s.stream_id
            );
            for (got, want) in beeps.iter().zip(want) {
                near(
                    *got,
                    *want,
                    BEEP_MS,
                    &format!("{codec} {} beep", s.stream_id),
                );
            }
        }
        let names: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}

#[test]
fn segments_that_cannot_be_joined_are_reencoded_with_marks_in_place() {
    // s's second segment has another picture size: its H.264 configuration (avcC) differs,
    // so copying packets cannot join the two; m's file is still remuxed.
    let mut spec = mutes_spec(ContainerKind::Mkv);
    spec.streams[1].segments[1].resize = Some(mosaic::sample::Resize {
        at_ms: 4_500,
        width: 320,
        height: 180,
    });
    let dir = tempfile::tempdir().unwrap();
    let zip = write_sample(dir.path(), &spec);
    let report = repair(&zip, &dir.path().join("out"), Align::Stream).unwrap();
    let path_of = |id: &str| {
        report
            .streams
            .iter()
            .find(|s| s.stream_id == id)
            .unwrap()
            .path
    };
    assert_eq!((path_of("m"), path_of("s")), ("remux", "reencode"));
    let s = file_of(&report, "s");
    assert!(s.extension().is_some_and(|e| e == "mkv"));
    assert_eq!(probe(&s).0, ["h264", "opus"]);
    check_container_seeking(&s, 7_500.0, "v");
    let d = decode(&s);
    let beeps = d.naive_beeps_ms();
    assert_eq!(beeps.len(), 2, "{beeps:?}");
    for (got, want) in beeps.iter().zip([500.0, 4_500.0]) {
        near(*got, want, 20.0, "re-encoded beep");
    }
    let flashes = d.flashes_at(0.5, 0.5);
    assert_eq!(flashes.len(), 2, "{flashes:?}");
    for (got, want) in flashes.iter().zip([500.0, 4_500.0]) {
        near(*got, want, FRAME_MS, "re-encoded flash");
    }

    // --reencode takes the fallback for every stream.
    let out = Command::new(env!("CARGO_BIN_EXE_mosaic"))
        .args(["repair", "--reencode", "--json", "-o"])
        .arg(dir.path().join("all"))
        .arg(&zip)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let paths: Vec<&str> = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["reencode", "reencode"]);
}
