//! LiveSwitch recordings, generated (`mosaic sample --preset liveswitch`): a recordings
//! folder and its `connection.recordings.ready` event compose with every sync mark in place
//! (flash within one frame, beep within 20 ms), `videoDelay` applied, a reconnecting
//! client's two connections as one participant, an audio-only client; repair joins each
//! participant's audio and video files into one; broken logs and events are refused with a
//! typed error naming the field, and nothing is written.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use mosaic::Error;
use mosaic::compose::{ComposeReport, Control, compose_recording};
use mosaic::layout::{Layout, TileRequest};
use mosaic::repair::{Align, RepairOptions, repair_recording};
use mosaic::sample::liveswitch::{LiveswitchOptions, demo, write_folder};
use mosaic::source::{self, SourceKind, SourceOptions};

const FRAME_MS: f64 = 1000.0 / 30.0;

/// The demo folder: alice 0..8 s (marks 1.5 s, 5 s), bob 0.5..3.5 s and 4.5..8 s (marks
/// 2 s, 6 s), carol audio-only 1..7 s (a beep at 3 s); videoDelay 90 ms.
fn folder() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("recordings");
    write_folder(&demo(), &rec, &LiveswitchOptions::default()).unwrap();
    (dir, rec)
}

fn compose_input(input: &Path, opts: &SourceOptions, out: &Path) -> ComposeReport {
    let mut recordings = source::open(input, opts).unwrap();
    assert_eq!(recordings.len(), 1);
    compose_recording(&mut recordings[0], out, &small(), &Control::default()).unwrap()
}

/// The centre of each of the three tiles bestFit gives alice, bob and carol (in that
/// order) on a 640x480 canvas.
fn tile_centres() -> Vec<(f64, f64)> {
    let requests: Vec<TileRequest> = ["client-alice", "client-bob", "client-carol"]
        .iter()
        .map(|id| TileRequest {
            stream_id: (*id).into(),
            screen: false,
        })
        .collect();
    Layout::BestFit
        .arrange(640, 480, &requests)
        .into_iter()
        .map(|t| {
            let r = t.unwrap().rect;
            (
                (f64::from(r.x) + f64::from(r.w) / 2.0) / 640.0,
                (f64::from(r.y) + f64::from(r.h) / 2.0) / 480.0,
            )
        })
        .collect()
}

fn near(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: {got:?}, expected {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= tol,
            "{what}: {got:?}, expected {want:?} ± {tol}"
        );
    }
}

fn check_marks(out: &Path, report: &ComposeReport) {
    assert_eq!(report.duration_ms, 8_000);
    assert_eq!(report.streams, 3, "a reconnect is one participant");
    let d = decode(out);
    assert_eq!(d.frames.len(), 240);
    let tiles = tile_centres();
    // Flashes are white frames: (time - 0) within one frame, with videoDelay applied.
    near(
        &d.flashes_at(tiles[0].0, tiles[0].1),
        &[1_500.0, 5_000.0],
        FRAME_MS,
        "alice",
    );
    near(
        &d.flashes_at(tiles[1].0, tiles[1].1),
        &[2_000.0, 6_000.0],
        FRAME_MS,
        "bob",
    );
    // Carol is audio-only: her tile shows her placeholder, never a flash.
    assert!(
        d.flashes_at(tiles[2].0, tiles[2].1).is_empty(),
        "carol has no video"
    );
    near(
        &d.beeps_ms(),
        &[1_500.0, 2_000.0, 3_000.0, 5_000.0, 6_000.0],
        20.0,
        "beeps",
    );
}

#[test]
fn folder_composes_with_every_mark_in_place() {
    let (dir, rec) = folder();
    let out = dir.path().join("call.mp4");
    let report = compose_input(&rec, &SourceOptions::default(), &out);
    check_marks(&out, &report);
}

#[test]
fn event_composes_like_the_folder() {
    let (dir, rec) = folder();
    // The event alone in another folder, its media found through --media.
    let events = dir.path().join("hooks");
    std::fs::create_dir(&events).unwrap();
    let event = events.join("ready.json");
    std::fs::copy(rec.join("event.json"), &event).unwrap();
    let opts = SourceOptions {
        media_dir: Some(rec.clone()),
        ..Default::default()
    };
    let out = dir.path().join("call.mp4");
    let report = compose_input(&event, &opts, &out);
    check_marks(&out, &report);
}

#[test]
fn video_delay_places_the_video_at_its_real_time() {
    // The same folder written with no delay and with 90 ms: the log's video timestamps
    // differ by 90 ms, the composite's flashes do not move.
    let (_dir, rec) = folder();
    let mut r = source::open_one(&rec, &SourceOptions::default()).unwrap();
    mosaic::inspect::inspect_recording(&mut r, &Default::default()).unwrap();
    let bob = r
        .timeline
        .streams
        .iter()
        .find(|s| s.id == "client-bob")
        .unwrap();
    let seg = &bob.segments[0];
    let audio = seg
        .sources
        .iter()
        .find(|s| s.media == mosaic::timeline::SourceMedia::Audio);
    let video = seg
        .sources
        .iter()
        .find(|s| s.media == mosaic::timeline::SourceMedia::Video);
    // Both files start at bob's real start, 500 ms: the video's logged first frame is
    // 90 ms earlier and videoDelay puts it back.
    assert_eq!(audio.unwrap().start.0, 500);
    assert_eq!(video.unwrap().start.0, 500);
}

#[test]
fn repair_joins_each_participants_audio_and_video() {
    let (dir, rec) = folder();
    let out = dir.path().join("tracks");
    let mut r = source::open_one(&rec, &SourceOptions::default()).unwrap();
    let report = repair_recording(
        &mut r,
        &out,
        &RepairOptions {
            align: Align::Archive,
            ..Default::default()
        },
        &Control::default(),
    )
    .unwrap();
    let names: Vec<String> = report
        .streams
        .iter()
        .map(|s| s.output.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "client-alice-alice.mkv",
            "client-bob-bob.mkv",
            "client-carol-carol.mkv"
        ]
    );
    let file = |name: &str| out.join(name);
    assert_eq!(probe(&file("client-bob-bob.mkv")).0, ["vp8", "opus"]);
    assert_eq!(probe(&file("client-alice-alice.mkv")).0, ["vp8", "opus"]);
    assert_eq!(probe(&file("client-carol-carol.mkv")).0, ["opus"]);
    // Aligned on the session: marks where they were recorded, in one file per person.
    let bob = decode(&file("client-bob-bob.mkv"));
    near(
        &bob.flashes_ms(),
        &[2_000.0, 6_000.0],
        FRAME_MS,
        "bob's flashes",
    );
    near(&bob.beeps_ms(), &[2_000.0, 6_000.0], 20.0, "bob's beeps");
    let alice = decode(&file("client-alice-alice.mkv"));
    near(
        &alice.flashes_ms(),
        &[1_500.0, 5_000.0],
        FRAME_MS,
        "alice's flashes",
    );
    near(
        &alice.beeps_ms(),
        &[1_500.0, 5_000.0],
        20.0,
        "alice's beeps",
    );
    let carol = decode(&file("client-carol-carol.mkv"));
    near(&carol.beeps_ms(), &[3_000.0], 20.0, "carol's beep");
}

#[test]
fn labels_come_from_user_ids_or_a_labels_file() {
    let (_dir, rec) = folder();
    let r = source::open_one(&rec, &SourceOptions::default()).unwrap();
    assert_eq!(r.kind, SourceKind::Liveswitch);
    let labels: Vec<&str> = r
        .timeline
        .streams
        .iter()
        .map(|s| s.label.as_str())
        .collect();
    assert_eq!(labels, ["alice", "bob", "carol"]);
    let opts = SourceOptions {
        labels: [
            ("bob".to_string(), "Bob 🎥".to_string()),
            (
                "client-carol-device".to_string(),
                "Carol (phone)".to_string(),
            ),
        ]
        .into(),
        ..Default::default()
    };
    let r = source::open_one(&rec, &opts).unwrap();
    let labels: Vec<&str> = r
        .timeline
        .streams
        .iter()
        .map(|s| s.label.as_str())
        .collect();
    assert_eq!(labels, ["alice", "Bob 🎥", "Carol (phone)"]);
}

fn mosaic(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mosaic"))
        .args(args)
        .output()
        .unwrap()
}

/// Rewrites the folder's event.json with `edit`, composes it, and expects exit 65 with a
/// message containing `expect` and no output.
fn refused_event(edit: impl Fn(&mut serde_json::Value), expect: &str) {
    let (dir, rec) = folder();
    let path = rec.join("event.json");
    let mut event: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut event);
    std::fs::write(&path, serde_json::to_vec(&event).unwrap()).unwrap();
    let out = dir.path().join("out.mp4");
    let run = mosaic(&[
        "compose",
        path.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(65), "{expect}: {stderr}");
    assert!(stderr.contains(expect), "{expect}: {stderr}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["recordings"], "nothing written");
}

#[test]
fn broken_events_are_refused_naming_the_field() {
    refused_event(
        |e| {
            e["connectionRecordings"][1]
                .as_object_mut()
                .unwrap()
                .remove("startTimestamp");
        },
        "connectionRecordings[1].startTimestamp: is missing",
    );
    refused_event(
        |e| e["channelRecording"]["startTimestamp"] = "28/02/2022 01:51".into(),
        "channelRecording.startTimestamp",
    );
    refused_event(
        |e| e["connectionRecordings"][0]["stopTimestamp"] = "2001-01-01T00:00:00Z".into(),
        "connectionRecordings[0].stopTimestamp: is before startTimestamp",
    );
    refused_event(
        |e| {
            let first = e["connectionRecordings"][0]["audioFirstFrameTimestamp"].clone();
            e["connectionRecordings"][0]["audioLastFrameTimestamp"] = first.clone();
            e["connectionRecordings"][0]["audioFirstFrameTimestamp"] =
                "2030-01-01T00:00:00Z".into();
        },
        "connectionRecordings[0].audioLastFrameTimestamp",
    );
    refused_event(
        |e| e["connectionRecordings"][2]["stopTimestamp"] = "3023-11-14T22:13:28Z".into(),
        "event.json connectionRecordings[2]: stopTimestamp: 31556908808000 ms puts the recording's span at 1000 years",
    );
    refused_event(
        |e| e["type"] = "connection.recordings.deleted".into(),
        "type",
    );
    refused_event(
        |e| e["connectionRecordings"][0]["audioFileName"] = "not-there.mka".into(),
        "\"not-there.mka\"",
    );
}

#[test]
fn a_placement_without_its_first_frame_time_is_warned_and_strict_refuses_it() {
    // Bob's first connection's log loses its audioFirstFrameTimestamp: his sound is placed
    // at the connection's start, a fallback the warnings name and --strict refuses.
    let (dir, rec) = folder();
    let log = rec.join("client-bob-conn1-0.json");
    let mut entries: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&log).unwrap()).unwrap();
    for e in entries.as_array_mut().unwrap() {
        e["data"]
            .as_object_mut()
            .unwrap()
            .remove("audioFirstFrameTimestamp");
    }
    std::fs::write(&log, serde_json::to_vec(&entries).unwrap()).unwrap();
    let inspected = mosaic(&["inspect", "--json", rec.to_str().unwrap()]);
    assert_eq!(inspected.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&inspected.stdout).unwrap();
    let warnings = report["warnings"].to_string();
    let want = "client-bob-conn1-0.mka: connection client-bob-conn1 gives no \
                audioFirstFrameTimestamp; placed by a fallback at its startTimestamp";
    assert!(warnings.contains(want), "{warnings}");
    assert_eq!(report["fallbacks"].as_array().unwrap().len(), 1, "{report}");
    let out = dir.path().join("out.mp4");
    let strict = mosaic(&[
        "compose",
        rec.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--strict",
    ]);
    let stderr = String::from_utf8_lossy(&strict.stderr);
    assert_eq!(strict.status.code(), Some(65), "{stderr}");
    assert!(
        stderr.contains(want) && stderr.contains("--strict"),
        "{stderr}"
    );
    assert!(!out.exists());
    let lenient = mosaic(&[
        "compose",
        rec.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--size",
        "640x480",
        "--speed",
        "fast",
        "--json",
    ]);
    assert_eq!(lenient.status.code(), Some(0));
    let composed: serde_json::Value = serde_json::from_slice(&lenient.stdout).unwrap();
    assert!(
        composed["warnings"].to_string().contains(want),
        "{composed}"
    );
}

#[test]
fn a_log_naming_a_missing_file_is_refused() {
    let (dir, rec) = folder();
    std::fs::remove_file(rec.join("client-bob-conn2-0.mkv")).unwrap();
    let out = dir.path().join("out.mp4");
    let run = mosaic(&[
        "compose",
        rec.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(65), "{stderr}");
    assert!(stderr.contains("client-bob-conn2-0.mkv"), "{stderr}");
    assert!(!out.exists());
}

#[test]
fn a_folder_of_two_sessions_gives_two_outputs_and_channel_picks_one() {
    let dir = tempfile::tempdir().unwrap();
    let short = |id: &str, color, mark| {
        let mut spec = mosaic::sample::ArchiveSpec {
            streams: vec![common::stream(
                id,
                color,
                vec![mark],
                vec![segment(0, 2_000)],
            )],
            ..demo()
        };
        spec.streams[0].id = id.into();
        spec
    };
    let rec = dir.path().join("recordings");
    for (channel, id, color) in [
        ("ch-a", "client-a", [200, 30, 30]),
        ("ch-b", "client-b", [30, 30, 200]),
    ] {
        let part = dir.path().join(channel);
        let opts = LiveswitchOptions {
            channel_id: channel.into(),
            ..Default::default()
        };
        write_folder(&short(id, color, 1_000), &part, &opts).unwrap();
        std::fs::create_dir_all(&rec).unwrap();
        for e in std::fs::read_dir(&part).unwrap() {
            let e = e.unwrap();
            if e.file_name() != "event.json" {
                std::fs::rename(e.path(), rec.join(e.file_name())).unwrap();
            }
        }
    }
    let all = source::open(&rec, &SourceOptions::default()).unwrap();
    let keys: Vec<&str> = all.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["ch-a-20231114T221320Z", "ch-b-20231114T221320Z"]);

    let out = dir.path().join("call.webm");
    let run = mosaic(&[
        "compose",
        rec.to_str().unwrap(),
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
    for key in &keys {
        let (codecs, secs) = probe(&dir.path().join(format!("call-{key}.webm")));
        assert_eq!(codecs, ["vp8", "opus"]);
        assert!((secs - 2.0).abs() < 0.1, "{secs}");
    }
    let one = source::open(
        &rec,
        &SourceOptions {
            channel: Some("ch-b".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].timeline.streams[0].id, "client-b");
    let err = source::open_one(&rec, &SourceOptions::default()).unwrap_err();
    assert!(
        matches!(err, Error::SeveralRecordings { count: 2, .. }),
        "{err}"
    );
}

/// The sample events of the LiveSwitch webhook documentation (`../shared/seeds/003_*.txt`),
/// with their stray trailing commas repaired, parse.
#[test]
fn the_seed_sample_events_parse() {
    let Some(seeds) = shared_seeds() else { return };
    let text = std::fs::read_to_string(seeds.join("003_2fdc01585013d741.txt")).unwrap();
    let mut parsed = 0;
    for kind in mosaic::source::liveswitch::event::EVENT_TYPES {
        let marker = format!("\"type\":\"{kind}\"");
        let Some(at) = text.find(&marker) else {
            panic!("the seed has no {kind} sample")
        };
        let start = text[..at].rfind("\n{").unwrap() + 1;
        let json = balanced_object(&text[start..]);
        let repaired = json.replace(",\n}", "\n}").replace(",\n]", "\n]");
        let mut find = |connection: &str, kind: mosaic::source::liveswitch::event::FileKind| {
            Ok(format!("{connection}.{}", kind.extension()))
        };
        let event =
            mosaic::source::liveswitch::event::parse("seed.json", repaired.as_bytes(), &mut find)
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(event.kind, kind);
        assert!(!event.connections.is_empty());
        let c = &event.connections[0];
        assert!(c.audio.is_some() && c.video.is_some(), "{c:?}");
        assert!(c.video_delay_ms != 0);
        parsed += 1;
    }
    assert_eq!(parsed, 3);
}

/// The text of the JSON object at the start of `s` (braces balanced, strings respected).
fn balanced_object(s: &str) -> &str {
    let (mut depth, mut in_str, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match (in_str, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (true, false, '"') => in_str = false,
            (false, _, '"') => in_str = true,
            (false, _, '{') => depth += 1,
            (false, _, '}') => {
                depth -= 1;
                if depth == 0 {
                    return &s[..=i];
                }
            }
            _ => {}
        }
    }
    s
}
