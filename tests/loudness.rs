//! Sound: a lone speaker comes out as loud as recorded, many loud speakers never exceed
//! -1 dBTP and nothing pumps before them, and `--loudness` meets its EBU R128 target. Each
//! is measured on the encoded output: by decoding it, and by ffmpeg's `ebur128` filter (an
//! independent meter), which the compose report's own figures must agree with.

mod common;

use std::path::Path;

use common::*;
use mosaic::compose::plan::PlanOptions;
use mosaic::compose::{ComposeOptions, Speed};
use mosaic::sample::ContainerKind;
use mosaic::sample::synth::{BEEP_AMPLITUDE, TONE_AMPLITUDE};

const COLOURS: [[u8; 3]; 4] = [[220, 40, 40], [40, 200, 40], [40, 40, 220], [230, 220, 40]];

fn options(loudness: Option<f64>) -> ComposeOptions {
    ComposeOptions {
        plan: PlanOptions {
            width: 640,
            height: 480,
            ..Default::default()
        },
        speed: Speed::Fast,
        loudness,
        ..Default::default()
    }
}

/// ffmpeg's EBU R128 reading of a file: (integrated LUFS, true peak dBTP).
fn ffmpeg_r128(path: &Path) -> (f64, f64) {
    let out = std::process::Command::new("ffmpeg")
        .args(["-nostats", "-hide_banner", "-i"])
        .arg(path)
        .args(["-af", "ebur128=peak=true", "-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    let text = String::from_utf8_lossy(&out.stderr);
    let summary = text.split("Summary:").nth(1).expect("an ebur128 summary");
    let value = |key: &str| -> f64 {
        summary
            .lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {summary}"))
    };
    (value("I:"), value("Peak:"))
}

fn db(ratio: f64) -> f64 {
    20.0 * ratio.log10()
}

#[test]
fn with_loudness_off_a_lone_speaker_keeps_its_level_within_a_tenth_of_a_db() {
    let spec = archive(
        "alone",
        ContainerKind::Webm,
        vec![stream(
            "a",
            [220, 40, 40],
            vec![2_000],
            vec![segment(0, 4_000)],
        )],
    );
    let (_dir, out, report) = compose_sample(&spec, "alone.m4a", &options(None));
    let d = decode(&out);
    // The -24 dBFS tone, away from the beep.
    let tone = db(d.rms(500.0, 1_800.0) / (TONE_AMPLITUDE / 2f64.sqrt()));
    assert!(
        tone.abs() <= 0.1,
        "the tone's level changed by {tone:.3} dB"
    );
    // The -3 dBFS beep (2000..2100 ms), inside its edges.
    let beep = db(d.rms(2_010.0, 2_090.0) / (BEEP_AMPLITUDE / 2f64.sqrt()));
    assert!(
        beep.abs() <= 0.1,
        "the beep's level changed by {beep:.3} dB"
    );
    let (_, peak) = ffmpeg_r128(&out);
    assert!(peak > -3.5, "the beep's true peak is about -3 dBTP: {peak}");
    let reported = report.true_peak_dbtp.unwrap();
    assert!(
        (reported - peak).abs() < 0.5,
        "report {reported} dBTP, ffmpeg {peak}"
    );
}

#[test]
fn four_loud_speakers_at_once_stay_under_minus_one_dbtp_without_pumping_before() {
    let streams = |marks: Vec<i64>| -> Vec<_> {
        (0..4)
            .map(|i| {
                stream(
                    &format!("l{i}"),
                    COLOURS[i],
                    marks.clone(),
                    vec![segment(0, 4_000)],
                )
            })
            .collect()
    };
    let loud = archive("loud", ContainerKind::Webm, streams(vec![1_000, 2_500]));
    // The same four tones without the beeps: what the sound before a beep must stay.
    let calm = archive("calm", ContainerKind::Webm, streams(vec![]));
    for out in ["loud.mp4", "loud.webm"] {
        let (_dir, path, report) = compose_sample(&loud, out, &options(None));
        let (_, peak) = ffmpeg_r128(&path);
        assert!(peak <= -1.0, "{out}: true peak {peak} dBTP");
        let reported = report.true_peak_dbtp.unwrap();
        assert!(reported <= -1.0, "report {reported} dBTP");
        let (_dir2, reference, _) = compose_sample(&calm, out, &options(None));
        let (d, r) = (decode(&path), decode(&reference));
        assert!(d.beeps_ms().len() >= 2, "the beeps are still loud");
        // The look-ahead is 5 ms: up to 30 ms before a beep (beyond the codec's own
        // spreading), the tones are as loud as without the beep.
        for beep_ms in [1_000.0, 2_500.0] {
            let (from, to) = (beep_ms - 100.0, beep_ms - 30.0);
            let change = db(d.rms(from, to) / r.rms(from, to));
            assert!(
                change.abs() < 0.2,
                "{out}: {change:.2} dB before the beep at {beep_ms}"
            );
        }
    }
}

#[test]
fn a_loudness_target_is_met_within_one_lu_under_minus_one_dbtp_and_marks_stay() {
    // A quiet programme (one -24 dBFS tone) and a loud one (two tones, -3 dBFS beeps).
    let quiet = archive(
        "quiet",
        ContainerKind::Webm,
        vec![stream("q", [200, 30, 30], vec![], vec![segment(0, 10_000)])],
    );
    let marked = archive(
        "programme",
        ContainerKind::Webm,
        vec![
            stream(
                "a",
                [200, 30, 30],
                vec![3_000, 7_000],
                vec![segment(0, 10_000)],
            ),
            stream("b", [30, 30, 200], vec![5_000], vec![segment(0, 10_000)]),
        ],
    );
    for spec in [&quiet, &marked] {
        // The programme's own loudness, as recorded.
        let (_dir, off, report) = compose_sample(spec, "off.mp4", &options(None));
        let (recorded, _) = ffmpeg_r128(&off);
        assert!((report.loudness_lufs.unwrap() - recorded).abs() < 0.5);
        for target in [-16.0, -23.0] {
            let (_dir, out, report) = compose_sample(spec, "norm.mp4", &options(Some(target)));
            let (integrated, peak) = ffmpeg_r128(&out);
            println!(
                "{}: recorded {recorded} LUFS; target {target}: {integrated} LUFS, {peak} dBTP",
                spec.id
            );
            assert!(
                (integrated - target).abs() <= 1.0,
                "target {target}, measured {integrated}"
            );
            assert!(peak <= -1.0, "true peak {peak} dBTP");
            let reported = report.loudness_lufs.unwrap();
            assert!(
                (reported - integrated).abs() < 0.5,
                "report {reported}, ffmpeg {integrated}"
            );
            assert_eq!(report.duration_ms, 10_000);
            let (_, duration) = probe(&out);
            assert!((duration - 10.0).abs() < 0.05, "{duration}");
            if spec.id == "programme" && target == -16.0 {
                let d = decode(&out);
                // Onsets of the 2 kHz beep (the louder tones may cross the detector's
                // threshold too, where the beep's frequency is absent).
                let beeps: Vec<f64> = d
                    .beeps_ms()
                    .into_iter()
                    .filter(|&t| d.tone_level(2_000.0, t, t + 50.0) > 0.1)
                    .collect();
                assert_eq!(beeps.len(), 3, "{beeps:?}");
                for (got, want) in beeps.iter().zip([3_000.0, 5_000.0, 7_000.0]) {
                    near(*got, want, 20.0, "a beep after loudness normalisation");
                }
                let flashes = d.flashes_at(0.25, 0.5);
                near(flashes[0], 3_000.0, 1000.0 / 30.0, "a's flash");
            }
        }
    }
}
