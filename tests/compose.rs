//! Composition on real encoded media, measured: sync marks land where they were recorded
//! (flash within one frame, beep within 20 ms), also after mutes and in second segments;
//! durations and frame counts; mute policies; loudness; output formats; real captures; bad
//! input. Layouts are in `compose_layouts.rs`; when frames show (files that begin muted,
//! `--from`, frames between the output's, a camera that stops early) in
//! `compose_timing.rs`.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use mosaic::compose::plan::{PlanOptions, VideoMutePolicy};
use mosaic::compose::{ComposeOptions, ComposeReport, Control, compose};
use mosaic::sample::ContainerKind;

const FRAME_MS: f64 = 1000.0 / 30.0;

/// The mutes archive (see common::mutes_spec): m (red) 0..8000 with an audio mute
/// 2000..3000, a video mute 4000..5500 and marks at 1000, 3500, 6500; s (blue) in two
/// segments 500..3500 and 4500..8000 with marks at 1000 and 5000. On a 640x480 canvas
/// with bestFit, m is the left half and s the right half from 500 on.
fn check_sync(out: &Path, report: &ComposeReport) {
    assert_eq!(report.duration_ms, 8_000);
    assert_eq!(report.frames, 240);
    let d = decode(out);
    assert_eq!(d.frames.len(), 240, "frame count matches the rate");
    let last = d.frames.last().unwrap().0 as f64 / 1e6;
    near(
        last + FRAME_MS,
        8_000.0,
        FRAME_MS,
        "video ends at the span's end",
    );
    // Nothing of the sound is lost at the end (an encoder that holds samples back must be
    // flushed: voaacenc kept its last 33 ms), and nothing is added beyond one AAC frame.
    let audio_end = d.audio_start_ns as f64 / 1e6 + d.audio.len() as f64 / 48.0;
    assert!(
        (7_995.0..=8_022.0).contains(&audio_end),
        "audio ends at {audio_end} ms, not at the span's end (8000)"
    );

    // Flashes, in each stream's tile: m's after the audio and the video mute, s's in its
    // second segment.
    let m = d.flashes_at(0.25, 0.5);
    assert_eq!(m.len(), 3, "m flashes {m:?}");
    for (got, want) in m.iter().zip([1_000.0, 3_500.0, 6_500.0]) {
        near(*got, want, FRAME_MS, "flash of m");
    }
    let s = d.flashes_at(0.75, 0.5);
    assert_eq!(s.len(), 2, "s flashes {s:?}");
    for (got, want) in s.iter().zip([1_000.0, 5_000.0]) {
        near(*got, want, FRAME_MS, "flash of s");
    }
    // Beeps in the mix: 1000 (both), 3500 (m, after its audio mute), 5000 (s, second
    // segment), 6500 (m, after its video mute).
    let beeps = d.beeps_ms();
    assert_eq!(beeps.len(), 4, "beeps {beeps:?}");
    for (got, want) in beeps.iter().zip([1_000.0, 3_500.0, 5_000.0, 6_500.0]) {
        near(*got, want, 20.0, "beep");
    }
    // During m's audio mute its tone is gone from the mix; s's is there.
    let (m_hz, s_hz) = (300.0 + 200.0 + 60.0, 300.0 + 30.0 + 400.0);
    let m_before = d.tone_level(m_hz, 1_200.0, 1_900.0);
    assert!(m_before > 0.03, "m's tone before the mute: {m_before}");
    let m_muted = d.tone_level(m_hz, 2_100.0, 2_900.0);
    assert!(
        m_muted < m_before / 30.0,
        "m's tone during its mute: {m_muted} vs {m_before}"
    );
    assert!(d.tone_level(s_hz, 2_100.0, 2_900.0) > 0.03);
    // s is away 3500..4500: its tone is gone, its tile shows the placeholder.
    assert!(d.tone_level(s_hz, 3_700.0, 4_300.0) < 0.002);
    // (Placeholders are read above their centred label.)
    is_colour(
        d.rgb_at(d.frame_at(4_000.0), 0.75, 0.3),
        PLACEHOLDER,
        "s away",
    );
    // m's video mute 4000..5500: frozen (m's red) for 1 s, then the placeholder.
    is_colour(
        d.rgb_at(d.frame_at(4_500.0), 0.25, 0.5),
        [200, 30, 30],
        "m frozen",
    );
    is_colour(
        d.rgb_at(d.frame_at(5_250.0), 0.25, 0.3),
        PLACEHOLDER,
        "m muted past the freeze limit",
    );
    is_colour(
        d.rgb_at(d.frame_at(6_000.0), 0.25, 0.5),
        [200, 30, 30],
        "m back",
    );
}

#[test]
fn webm_archive_to_mp4_keeps_every_mark_in_place() {
    let (_dir, out, report) =
        compose_sample(&mutes_spec(ContainerKind::Webm), "call.mp4", &small());
    assert_eq!(probe(&out).0, ["h264", "aac"]);
    check_sync(&out, &report);
}

#[test]
fn h264_mkv_archive_to_webm_keeps_every_mark_in_place() {
    let (_dir, out, report) =
        compose_sample(&mutes_spec(ContainerKind::Mkv), "call.webm", &small());
    assert_eq!(probe(&out).0, ["vp8", "opus"]);
    check_sync(&out, &report);
}

#[test]
fn black_and_placeholder_mute_policies() {
    let spec = mutes_spec(ContainerKind::Webm);
    for (policy, at_4500) in [
        (VideoMutePolicy::Black, [0, 0, 0]),
        (VideoMutePolicy::Placeholder, PLACEHOLDER),
    ] {
        let opts = ComposeOptions {
            plan: PlanOptions {
                video_mute: policy,
                ..small().plan
            },
            ..small()
        };
        let (_dir, out, _) = compose_sample(&spec, "call.mp4", &opts);
        let d = decode(&out);
        is_colour(
            d.rgb_at(d.frame_at(4_500.0), 0.25, 0.3),
            at_4500,
            &format!("{policy:?} during the mute"),
        );
        is_colour(
            d.rgb_at(d.frame_at(4_000.0), 0.75, 0.3),
            PLACEHOLDER,
            "away is always the placeholder",
        );
    }
}

#[test]
fn one_stream_keeps_its_level_and_four_loud_streams_do_not_clip() {
    // One stream, no marks: the tone's level in the output equals the source's (-24 dBFS).
    let spec = archive(
        "alone",
        ContainerKind::Webm,
        vec![stream("a", [220, 40, 40], vec![], vec![segment(0, 3_000)])],
    );
    let (_dir, out, _) = compose_sample(&spec, "alone.m4a", &small());
    assert_eq!(probe(&out).0, ["aac"]);
    let d = decode(&out);
    let source_rms = mosaic::sample::synth::TONE_AMPLITUDE / 2f64.sqrt();
    let db = 20.0 * (d.rms(500.0, 2_500.0) / source_rms).log10();
    assert!(db.abs() <= 1.0, "level changed by {db:.2} dB");

    // Four streams beeping at once (4 x -3 dBFS): limited, not clipped.
    let loud: Vec<_> = (0..4)
        .map(|i| {
            stream(
                &format!("l{i}"),
                COLOURS[i],
                vec![1_000, 2_000],
                vec![segment(0, 3_000)],
            )
        })
        .collect();
    let (_dir, out, _) = compose_sample(
        &archive("loud", ContainerKind::Webm, loud),
        "loud.opus",
        &small(),
    );
    assert_eq!(probe(&out).0, ["opus"]);
    let d = decode(&out);
    let peak = d.audio.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    assert!(peak < 1.0, "peak {peak}");
    assert!(peak > 0.7, "the beeps are still loud: {peak}");
}

#[test]
fn trim_labels_and_report() {
    let spec = mutes_spec(ContainerKind::Webm);
    let opts = ComposeOptions {
        plan: PlanOptions {
            from_ms: Some(3_000),
            to_ms: Some(7_000),
            ..small().plan
        },
        labels: true,
        ..small()
    };
    let (_dir, out, report) = compose_sample(&spec, "trim.mp4", &opts);
    assert_eq!(
        (report.start_ms, report.stop_ms, report.duration_ms),
        (3_000, 7_000, 4_000)
    );
    let (_, duration) = probe(&out);
    assert!((duration - 4.0).abs() < 0.05, "{duration}");
    let d = decode(&out);
    assert_eq!(d.frames.len(), 120);
    // m's mark at 3500 archive time is at 500 in the trimmed output.
    near(d.flashes_at(0.25, 0.5)[0], 500.0, FRAME_MS, "trimmed flash");
    near(d.beeps_ms()[0], 500.0, 20.0, "trimmed beep");
    assert!(report.realtime_factor > 0.0 && report.wall_ms > 0);
}

#[test]
fn real_captures_compose() {
    let Some(media) = shared_media() else { return };
    let dir = tempfile::tempdir().unwrap();
    let zip = real_archive(&media, dir.path());
    let out = dir.path().join("real.mp4");
    let report = compose(&zip, &out, &small(), &Control::default()).unwrap();
    assert_eq!(report.streams, 4);
    assert_eq!(report.duration_ms, 50_900);
    let (codecs, duration) = probe(&out);
    assert_eq!(codecs, ["h264", "aac"]);
    assert!((duration - 50.9).abs() < 0.05, "{duration}");
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("chrome57.webm") && w.contains("truncated"))
    );
    // chrome52, alone from 33.7 s, stops sending video at 40.37 s for 10 s, and its last
    // frame is at 50.75 s of 50.9: its picture freezes for a second each time (the
    // demuxer's GAP events once blanked it), then the placeholder shows.
    let d = decode(&out);
    for ms in [40_500.0, 41_200.0, 50_850.0] {
        // Above the placeholder's label: the wall, grey, where the placeholder is dark.
        let px = d.rgb_at(d.frame_at(ms), 0.5, 0.3);
        assert!(
            px.iter().all(|&c| c > 90.0),
            "chrome52 frozen at {ms}: {px:?}"
        );
    }
    is_colour(
        d.rgb_at(d.frame_at(45_000.0), 0.5, 0.3),
        PLACEHOLDER,
        "chrome52's placeholder",
    );
}

#[test]
fn cancelling_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let zip = write_sample(dir.path(), &mutes_spec(ContainerKind::Webm));
    let out = dir.path().join("cancelled.mp4");
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let progress = |pos: u64, _total: u64| {
        if pos > 0 {
            cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    };
    let control = Control {
        progress: Some(&progress),
        cancel: Some(&cancel),
        published: None,
    };
    let err = compose(&zip, &out, &small(), &control).unwrap_err();
    assert!(matches!(err, mosaic::Error::Cancelled), "{err}");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "only the archive is left: {names:?}");
}

/// Runs `mosaic compose` and checks it failed with `code`, a one-line message containing
/// `says`, and left no output.
fn cli_refuses(zip: &Path, extra: &[&str], code: i32, says: &str) {
    let out_path = zip.with_file_name("out.mp4");
    let out = Command::new(env!("CARGO_BIN_EXE_mosaic"))
        .arg("compose")
        .arg(zip)
        .arg("-o")
        .arg(&out_path)
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(stderr.contains(says), "{says:?} not in {stderr}");
    assert!(!out_path.exists());
    let partial = std::fs::read_dir(zip.parent().unwrap())
        .unwrap()
        .any(|e| e.unwrap().file_name().to_string_lossy().contains("partial"));
    assert!(!partial, "a partial file was left");
}

#[test]
fn bad_input_fails_clearly_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_sample(dir.path(), &mutes_spec(ContainerKind::Webm));
    cli_refuses(&dir.path().join("absent.zip"), &[], 66, "cannot open");
    cli_refuses(&good, &["--layout", "diagonal"], 2, "unknown layout");
    cli_refuses(&good, &["--size", "320x240"], 65, "outside 640x480");
    cli_refuses(&good, &["--layout", "custom"], 65, "--layout-file");
    // The manifest lists a file the archive lacks.
    let missing = dir.path().join("missing.zip");
    write_zip(
        &missing,
        &[Item::Deflated(
            "x.json",
            manifest_for("gone.webm", 10).as_bytes(),
        )],
    );
    cli_refuses(&missing, &[], 65, "gone.webm");
    // One stream's media is garbage.
    let spec = archive(
        "x",
        ContainerKind::Webm,
        vec![stream("a", [9, 9, 9], vec![], vec![segment(0, 1_000)])],
    );
    let media =
        mosaic::sample::encode_segment(&spec, &spec.streams[0], &spec.streams[0].segments[0])
            .unwrap();
    let garbage = vec![0x42u8; 3_000];
    let manifest = r#"{"id":"x","createdAt":1,"files":[
        {"streamId":"a","filename":"a.webm","startTimeOffset":0,"stopTimeOffset":1000},
        {"streamId":"b","filename":"b.webm","startTimeOffset":0,"stopTimeOffset":1000}]}"#;
    let corrupt = dir.path().join("corrupt.zip");
    write_zip(
        &corrupt,
        &[
            Item::Deflated("x.json", manifest.as_bytes()),
            Item::Stored("a.webm", &media),
            Item::Stored("b.webm", &garbage),
        ],
    );
    cli_refuses(&corrupt, &[], 65, "b.webm");
}

#[test]
fn ctrl_c_stops_the_cli_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = mutes_spec(ContainerKind::Webm);
    spec.id = "long".into();
    for s in &mut spec.streams {
        s.segments = vec![segment(0, 60_000)];
        s.width = 320;
        s.height = 240;
    }
    let zip = write_sample(dir.path(), &spec);
    let out = dir.path().join("long.mp4");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mosaic"))
        .args(["compose", "--size", "1920x1080", "--speed", "quality"])
        .arg(&zip)
        .arg("-o")
        .arg(&out)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Let it get going, then interrupt it as a terminal would.
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "exit code after Ctrl-C");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "only the archive is left: {names:?}");
}

/// Labels in any script, and colour emoji, render as glyphs (not boxes): a red apple in a
/// placeholder's label shows red pixels; fonts cover Greek, Cyrillic, Arabic, Hebrew,
/// Devanagari, Thai and CJK (installed by scripts/install-deps.sh).
#[test]
fn labels_render_any_script_and_colour_emoji() {
    for sample in ['Ω', 'Ж', 'ع', 'ש', 'ह', 'ก', '日', '한', '🍎'] {
        let out = Command::new("fc-list")
            .arg(format!(":charset={:x}", u32::from(sample)))
            .output()
            .unwrap();
        assert!(
            !String::from_utf8_lossy(&out.stdout).trim().is_empty(),
            "no font covers {sample:?}"
        );
    }
    let mut s = stream(
        "apple",
        [40, 80, 220],
        vec![],
        vec![segment(0, 1_000), segment(2_000, 3_000)],
    );
    s.label = Some("🍎🍎🍎 日本語".into());
    let (_dir, out, _) = compose_sample(
        &archive("emoji", ContainerKind::Webm, vec![s]),
        "emoji.mp4",
        &small(),
    );
    let d = decode(&out);
    let thumb = &d.thumbs[d.frame_at(1_500.0)];
    let red = thumb
        .chunks_exact(3)
        .filter(|p| p[0] > 150 && p[1] < 90 && p[2] < 90)
        .count();
    assert!(red >= 4, "the apples are drawn in colour: {red} red pixels");
    is_colour(
        d.rgb_at(d.frame_at(1_500.0), 0.1, 0.1),
        PLACEHOLDER,
        "placeholder",
    );
}
