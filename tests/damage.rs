//! Damaged media: bits flipped in the middle of one stream's file. Inspection skips the
//! damaged region and resumes at the next cluster, naming it; compose exits 0 with the full
//! duration, the other stream's marks in place and the damaged stream's sound after the
//! damage in place, the damage in its `--json` warnings; `--strict` refuses it (65, nothing
//! written).

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use mosaic::sample::ContainerKind;

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

#[test]
fn flipped_bits_in_one_file_are_skipped_and_named() {
    let spec = archive(
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
    );
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("call");
    std::fs::create_dir(&folder).unwrap();
    let zip = write_sample(dir.path(), &spec);
    let status = Command::new("unzip")
        .args(["-q", zip.to_str().unwrap(), "-d", folder.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    // 300 flipped bits in the first cluster's middle, well before the next cluster.
    let file = folder.join("b.webm");
    let mut bytes = std::fs::read(&file).unwrap();
    let starts = clusters(&bytes);
    assert!(starts.len() >= 2, "{starts:?}");
    let (from, to) = (starts[0] + 3_000, starts[1] - 2_000);
    assert!(to > from + 1_000, "{starts:?}");
    let mut x: u64 = 7;
    for _ in 0..300 {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let at = from + (x >> 33) as usize % (to - from);
        bytes[at] ^= 1 << ((x >> 29) % 8);
    }
    std::fs::write(&file, &bytes).unwrap();

    let r = mosaic::inspect::inspect_archive(&folder, &Default::default()).unwrap();
    let seg = r.segment("b.webm").unwrap();
    assert!(seg.truncated.is_none(), "{:?}", seg.truncated);
    assert!(!seg.damage.is_empty(), "the damage is reported");
    let audio = seg
        .tracks
        .iter()
        .find(|t| t.kind == mosaic::inspect::TrackKind::Audio)
        .unwrap();
    assert!(
        audio.last_ms.unwrap() > 8_500,
        "read on after the damage: {audio:?}"
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
    let warnings = report["warnings"].to_string();
    assert!(warnings.contains("b.webm: damaged"), "{warnings}");
    let d = decode(&out);
    // a's marks (left half) untouched; b's beep after the damage in place.
    let a = d.flashes_at(0.25, 0.5);
    assert_eq!(a.len(), 2, "{a:?}");
    for (got, want) in a.iter().zip([1_000.0, 7_000.0]) {
        assert!((got - want).abs() <= 1000.0 / 30.0, "{a:?}");
    }
    let beeps = d.beeps_ms();
    for want in [1_000.0, 7_000.0, 8_000.0] {
        assert!(
            beeps.iter().any(|b| (b - want).abs() <= 20.0),
            "beep at {want}: {beeps:?}"
        );
    }

    std::fs::remove_file(&out).unwrap();
    let run = compose(&folder, &out, true);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(65), "{stderr}");
    assert!(
        stderr.contains("b.webm") && stderr.contains("--strict"),
        "{stderr}"
    );
    assert!(!out.exists());
}
