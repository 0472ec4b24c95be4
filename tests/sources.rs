//! Inputs other than an OpenTok ZIP: the same archive unzipped into a folder (read exactly
//! like the ZIP), an EnableX recording notification with its files, and what happens with
//! an input that is none of them.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use mosaic::compose::{Control, compose_recording};
use mosaic::layout::{Layout, TileRequest};
use mosaic::sample::ContainerKind;
use mosaic::source::{self, SourceKind, SourceOptions};

fn mosaic(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mosaic"))
        .args(args)
        .output()
        .unwrap()
}

fn unzip(zip: &Path, into: &Path) {
    let status = Command::new("unzip")
        .args(["-q", zip.to_str().unwrap(), "-d", into.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn an_unzipped_archive_inspects_exactly_like_its_zip() {
    let dir = tempfile::tempdir().unwrap();
    let zip = write_sample(dir.path(), &mutes_spec(ContainerKind::Webm));
    let folder = dir.path().join("unzipped");
    unzip(&zip, &folder);
    let zip_json = mosaic(&["inspect", zip.to_str().unwrap(), "--json"]);
    let dir_json = mosaic(&["inspect", folder.to_str().unwrap(), "--json"]);
    assert_eq!(zip_json.status.code(), Some(0));
    assert_eq!(
        dir_json.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&dir_json.stderr)
    );
    assert!(!zip_json.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&zip_json.stdout),
        String::from_utf8_lossy(&dir_json.stdout),
        "byte-identical reports"
    );
    // The manifest given as the path reads the same folder.
    let manifest = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let by_manifest = mosaic(&["inspect", manifest.to_str().unwrap(), "--json"]);
    assert_eq!(by_manifest.stdout, zip_json.stdout);
}

#[test]
fn an_unzipped_archive_composes_and_refuses_what_the_zip_would() {
    let dir = tempfile::tempdir().unwrap();
    let zip = write_sample(dir.path(), &mutes_spec(ContainerKind::Webm));
    let folder = dir.path().join("unzipped");
    unzip(&zip, &folder);
    let out = dir.path().join("call.webm");
    let run = mosaic(&[
        "compose",
        folder.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--size",
        "640x480",
        "--speed",
        "fast",
    ]);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let d = decode(&out);
    assert_eq!(d.frames.len(), 240);
    let m = d.flashes_at(0.25, 0.5);
    assert_eq!(m.len(), 3, "{m:?}");

    // A media file replaced by a link out of the folder is refused, like a ZIP's unsafe name.
    let victim = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "webm"))
        .unwrap();
    let outside = dir.path().join("outside.webm");
    std::fs::rename(&victim, &outside).unwrap();
    std::os::unix::fs::symlink(&outside, &victim).unwrap();
    let run = mosaic(&["inspect", folder.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(65), "{stderr}");
    assert!(stderr.contains("leads out of the folder"), "{stderr}");

    // A missing file is the same error as in a ZIP.
    std::fs::remove_file(&victim).unwrap();
    let run = mosaic(&["inspect", folder.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(65), "{stderr}");
    assert!(
        stderr.contains(victim.file_name().unwrap().to_str().unwrap()),
        "{stderr}"
    );
}

fn three_participants() -> mosaic::sample::ArchiveSpec {
    archive(
        "enablex",
        ContainerKind::Mkv,
        vec![
            stream("alice", [220, 40, 40], vec![1_500], vec![segment(0, 4_000)]),
            stream("bob", [40, 180, 60], vec![2_000], vec![segment(500, 4_000)]),
            stream(
                "carol",
                [40, 80, 220],
                vec![3_000],
                vec![segment(1_000, 4_000)],
            ),
        ],
    )
}

#[test]
fn an_enablex_notification_of_three_files_composes_into_three_tiles() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("download");
    mosaic::sample::enablex::write_folder(&three_participants(), &files, "room-1", "77").unwrap();
    let mut r =
        source::open_one(&files.join("notification.json"), &SourceOptions::default()).unwrap();
    assert_eq!(r.kind, SourceKind::Enablex);
    assert_eq!(r.key, "room-1-77");
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let out = dir.path().join("call.mp4");
    let report = compose_recording(&mut r, &out, &small(), &Control::default()).unwrap();
    assert_eq!(report.streams, 3);
    // The files say when they start, not when they end: the last frame's end is known to
    // within a frame.
    assert!(
        (report.duration_ms - 4_000).abs() <= 40,
        "{}",
        report.duration_ms
    );
    let d = decode(&out);
    // Each file starts at its own DateUTC: alice at 0, bob at 0.5 s, carol at 1 s.
    let requests: Vec<TileRequest> = ["alice", "bob", "carol"]
        .iter()
        .map(|id| TileRequest {
            stream_id: (*id).into(),
            screen: false,
        })
        .collect();
    let tiles = Layout::BestFit.arrange(640, 480, &requests);
    for ((tile, colour), mark) in tiles
        .iter()
        .zip([[220, 40, 40], [40, 180, 60], [40, 80, 220]])
        .zip([1_500.0, 2_000.0, 3_000.0])
    {
        let r = tile.unwrap().rect;
        let (fx, fy) = (
            (f64::from(r.x) + f64::from(r.w) / 2.0) / 640.0,
            (f64::from(r.y) + f64::from(r.h) / 2.0) / 480.0,
        );
        let rgb = d.rgb_at(d.frame_at(3_500.0), fx, fy);
        let diff = rgb
            .iter()
            .zip(colour)
            .map(|(a, b)| (a - f64::from(b)).abs())
            .fold(0.0, f64::max);
        assert!(
            diff < 40.0,
            "tile at ({fx:.2}, {fy:.2}): {rgb:?} is not {colour:?}"
        );
        let flashes = d.flashes_at(fx, fy);
        assert_eq!(flashes.len(), 1, "{flashes:?}");
        assert!(
            (flashes[0] - mark).abs() <= 1000.0 / 30.0,
            "{flashes:?} vs {mark}"
        );
    }
}

#[test]
fn an_enablex_file_without_date_starts_at_zero_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("download");
    let spec = archive(
        "undated",
        ContainerKind::Mkv,
        vec![stream(
            "solo",
            [220, 40, 40],
            vec![],
            vec![segment(0, 1_000)],
        )],
    );
    mosaic::sample::enablex::write_folder(&spec, &files, "r", "1").unwrap();
    // Re-write the file as a plain sample segment: no DateUTC.
    let bytes =
        mosaic::sample::encode_segment(&spec, &spec.streams[0], &spec.streams[0].segments[0])
            .unwrap();
    std::fs::write(files.join("solo.mkv"), bytes).unwrap();
    let mut r =
        source::open_one(&files.join("notification.json"), &SourceOptions::default()).unwrap();
    let warnings: Vec<String> = r.timeline.warnings.iter().map(|w| w.to_string()).collect();
    assert!(warnings[0].contains("no DateUTC"), "{warnings:?}");
    assert_eq!(r.timeline.streams[0].start().0, 0);
    // A placement by a fallback: in the inspection's warnings, and --strict refuses it.
    let report = mosaic::inspect::inspect_recording(&mut r, &Default::default()).unwrap();
    assert!(report.warnings.iter().any(|w| w.contains("no DateUTC")));
    assert_eq!(report.fallbacks.len(), 1);
    let err = mosaic::compose::refuse_damage(&report)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no DateUTC") && err.contains("--strict"),
        "{err}"
    );
}

fn refused(path: &Path, expect: &str, code: i32) {
    let run = mosaic(&["inspect", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(code), "{stderr}");
    assert!(stderr.contains(expect), "{expect}: {stderr}");
}

#[test]
fn inputs_that_fit_no_source_say_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    refused(&empty, "expected an OpenTok archive", 65);
    let other = dir.path().join("other.json");
    std::fs::write(&other, r#"{"type":"roomdrop"}"#).unwrap();
    refused(&other, "expected an OpenTok archive", 65);
    let txt = dir.path().join("notes.txt");
    std::fs::write(&txt, "hello").unwrap();
    refused(&txt, "expected an OpenTok archive", 65);
    let roomdrop = dir.path().join("drop.json");
    std::fs::write(
        &roomdrop,
        r#"{"type":"roomdrop","room_id":"r","conf_num":"1"}"#,
    )
    .unwrap();
    refused(&roomdrop, "lists no recording files", 65);
    refused(&dir.path().join("missing.zip"), "cannot open", 66);
    // --source forces: a folder is not an EnableX input.
    let run = mosaic(&["inspect", empty.to_str().unwrap(), "--source", "enablex"]);
    assert_eq!(run.status.code(), Some(65));
}

#[test]
fn batch_takes_every_kind_of_input() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    let small = archive(
        "batch-a",
        ContainerKind::Webm,
        vec![stream("a", [220, 40, 40], vec![], vec![segment(0, 1_000)])],
    );
    let zip = write_sample(&inputs, &small);
    unzip(&zip, &inputs.join("unzipped"));
    mosaic::sample::enablex::write_folder(&small, &dir.path().join("ex"), "room", "9").unwrap();
    std::fs::rename(dir.path().join("ex"), inputs.join("enablex")).unwrap();
    std::fs::rename(
        inputs.join("enablex/notification.json"),
        inputs.join("enablex-call.json"),
    )
    .unwrap();
    std::fs::write(inputs.join("notes.txt"), "not an input").unwrap();
    let out = dir.path().join("out");
    let run = mosaic(&[
        "batch",
        inputs.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--media",
        inputs.join("enablex").to_str().unwrap(),
        "--size",
        "640x480",
        "--speed",
        "fast",
    ]);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mut made: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    made.sort();
    assert_eq!(
        made,
        [
            "batch-a.mp4",
            "enablex-call.mp4",
            "report.json",
            "unzipped.mp4"
        ]
    );
    for name in ["batch-a.mp4", "enablex-call.mp4", "unzipped.mp4"] {
        let (_, secs) = probe(&out.join(name));
        assert!((secs - 1.0).abs() < 0.1, "{name}: {secs}");
    }
}
