//! The command line: `inspect --json` keeps its contract, the table and SVG show what they
//! should, `--help` teaches.

mod common;

use std::process::Command;

use common::*;
use mosaic::sample::ContainerKind;

fn mosaic() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mosaic"))
}

#[test]
fn inspect_json_contract() {
    let dir = tempfile::tempdir().unwrap();
    let zip = write_sample(dir.path(), &mutes_spec(ContainerKind::Webm));
    let out = mosaic()
        .args(["inspect", "--json"])
        .arg(&zip)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in ["id", "name", "created_at_ms"] {
        assert!(v["archive"].get(key).is_some(), "archive.{key}");
    }
    assert_eq!(v["archive"]["created_at_ms"], 1_600_000_000_000i64);
    assert_eq!(v["span_ms"], serde_json::json!([0, 8000]));
    let streams = v["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 2);
    let m = &streams[0];
    for key in [
        "stream_id",
        "label",
        "video_type",
        "start_ms",
        "stop_ms",
        "segments",
    ] {
        assert!(m.get(key).is_some(), "stream.{key}");
    }
    assert_eq!(m["label"], "m \"label\" ü");
    assert_eq!(m["video_type"], "camera");
    let seg = &m["segments"][0];
    for key in [
        "index",
        "filename",
        "container",
        "start_ms",
        "stop_ms",
        "tracks",
    ] {
        assert!(seg.get(key).is_some(), "segment.{key}");
    }
    let tracks = seg["tracks"].as_array().unwrap();
    let video = tracks.iter().find(|t| t["kind"] == "video").unwrap();
    let audio = tracks.iter().find(|t| t["kind"] == "audio").unwrap();
    assert_eq!(video["codec"], "vp8");
    assert_eq!(audio["codec"], "opus");
    for key in ["width", "height", "first_ms", "last_ms", "frames", "gaps"] {
        assert!(video.get(key).is_some(), "track.{key}");
    }
    let gap = &video["gaps"][0];
    assert!(gap["from_ms"].is_i64() && gap["to_ms"].is_i64());
    assert!(v["warnings"].is_array());

    // --min-gap-ms applies to both kinds.
    let out = mosaic()
        .args(["inspect", "--json", "--min-gap-ms", "5000"])
        .arg(&zip)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["streams"][0]["segments"][0]["tracks"][0]["gaps"],
        serde_json::json!([])
    );
}

#[test]
fn inspect_table_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let zip = write_sample(dir.path(), &mutes_spec(ContainerKind::Mkv));
    let svg = dir.path().join("timeline.svg");
    let out = mosaic()
        .arg("inspect")
        .arg(&zip)
        .arg("--svg")
        .arg(&svg)
        .output()
        .unwrap();
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("stream m"), "{table}");
    assert!(table.contains("h264"), "{table}");
    assert!(table.contains("gap"), "{table}");
    assert!(table.contains("160x120 -> 320x180"), "{table}");
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg"));
    assert_eq!(svg.matches(r#"class="segment""#).count(), 3);
    assert_eq!(svg.matches(r#"class="gap-video""#).count(), 1);
    assert_eq!(svg.matches(r#"class="gap-audio""#).count(), 1);
    assert!(svg.contains("&quot;label&quot;"));
    assert!(svg.contains(r#"class="tick">0:08.000<"#));
}

#[test]
fn help_explains_exit_codes_and_examples() {
    let out = mosaic().args(["inspect", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("65") && help.contains("bad input"), "{help}");
    assert!(help.contains("mosaic inspect archive.zip --json"), "{help}");
    let out = mosaic().args(["inspect"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn sample_subcommand_writes_an_archive() {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("demo.zip");
    let out = mosaic().arg("sample").arg(&zip).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = mosaic::inspect::inspect_archive(&zip, &Default::default()).unwrap();
    assert_eq!(r.streams.len(), 3);
    assert!(
        r.streams
            .iter()
            .any(|s| s.video_type == mosaic::timeline::VideoType::Screen)
    );
}

#[test]
fn committed_demo_archive_inspects_as_described() {
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/demo.zip");
    let r = mosaic::inspect::inspect_archive(&demo, &Default::default()).unwrap();
    assert_eq!(r.span_ms, Some([0, 10_000]));
    let ids: Vec<&str> = r.streams.iter().map(|s| s.stream_id.as_str()).collect();
    assert_eq!(ids, ["a1b2c3d4-alice", "b5e6f7a8-bob", "c3f1e2d4-screen"]);
    assert_eq!(r.streams[1].segments.len(), 2);
    let gaps: usize = r.streams[0].segments[0]
        .tracks
        .iter()
        .map(|t| t.gaps.len())
        .sum();
    assert_eq!(gaps, 2, "one audio and one video mute");
    let screen = &r.streams[2].segments[0].tracks[0];
    assert_eq!(screen.resolution_changes.len(), 1);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}
