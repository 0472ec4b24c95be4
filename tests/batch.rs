//! Batch over a folder of archives: bad ones are reported and the rest done, nothing is
//! written outside OUT_DIR, re-runs skip what is finished, --force redoes it, and a killed
//! run leaves nothing that a re-run would take for finished.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

use common::*;
use mosaic::sample::ContainerKind;

fn good(dir: &Path, name: &str, seconds: i64) {
    let mut spec = archive(
        name,
        ContainerKind::Webm,
        vec![
            stream(
                "a",
                [220, 40, 40],
                vec![1_000],
                vec![segment(0, seconds * 1000)],
            ),
            stream(
                "b",
                [40, 40, 220],
                vec![],
                vec![segment(500, seconds * 1000)],
            ),
        ],
    );
    spec.id = name.into();
    write_sample(dir, &spec);
}

/// IN with two good archives, a corrupt one, a zip-slip one and one whose manifest lists a
/// missing file.
fn inputs(root: &Path) -> PathBuf {
    let input = root.join("in");
    std::fs::create_dir_all(&input).unwrap();
    good(&input, "call-a", 3);
    good(&input, "call-b", 2);
    std::fs::write(
        input.join("corrupt.zip"),
        b"PK\x03\x04 this is not really a zip",
    )
    .unwrap();
    write_zip(
        &input.join("slip.zip"),
        &[
            Item::Deflated("x.json", manifest_for("a.webm", 1).as_bytes()),
            Item::Stored("../../evil.webm", b"x"),
        ],
    );
    write_zip(
        &input.join("missing.zip"),
        &[Item::Deflated(
            "x.json",
            manifest_for("gone.webm", 10).as_bytes(),
        )],
    );
    input
}

fn batch(input: &Path, out: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mosaic"))
        .arg("batch")
        .arg(input)
        .arg("-o")
        .arg(out)
        .args(["--size", "640x480", "--speed", "fast"])
        .args(extra)
        .output()
        .unwrap()
}

fn report(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap()
}

fn status_of(report: &serde_json::Value, archive: &str) -> (String, Option<String>) {
    let row = report["archives"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["archive"].as_str().unwrap().ends_with(archive))
        .unwrap();
    (
        row["status"].as_str().unwrap().to_owned(),
        row["error"].as_str().map(str::to_owned),
    )
}

fn mtime(p: &Path) -> SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

fn tree(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn bad_archives_are_reported_the_rest_done_and_reruns_resume() {
    let root = tempfile::tempdir().unwrap();
    let input = inputs(root.path());
    let before = tree(&input);
    let out = root.path().join("out");
    let run = batch(&input, &out, &[]);
    assert_eq!(
        run.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    // The good ones are correct outputs.
    for (name, seconds) in [("call-a", 3.0), ("call-b", 2.0)] {
        let (codecs, duration) = probe(&out.join(format!("{name}.mp4")));
        assert_eq!(codecs, ["h264", "aac"]);
        assert!((duration - seconds).abs() < 0.05, "{name}: {duration}");
    }
    // The bad ones are reported with their errors.
    let r = report(&out);
    assert_eq!(r["archives"].as_array().unwrap().len(), 5);
    for (archive, says) in [
        ("corrupt.zip", "not a readable ZIP"),
        ("slip.zip", "unsafe"),
        ("missing.zip", "gone.webm"),
    ] {
        let (status, error) = status_of(&r, archive);
        assert_eq!(status, "failed", "{archive}");
        assert!(
            error.as_deref().unwrap_or("").contains(says),
            "{archive}: {error:?}"
        );
    }
    // Nothing written outside OUT_DIR: the inputs are as they were, and the root holds
    // only in/ and out/.
    assert_eq!(tree(&input), before);
    let top: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(top.len(), 2, "{top:?}");
    assert!(
        !tree(root.path())
            .iter()
            .any(|p| p.to_string_lossy().contains("evil"))
    );

    // A re-run skips the finished ones (same modification times) and retries the failed.
    let a = out.join("call-a.mp4");
    let t0 = mtime(&a);
    std::thread::sleep(std::time::Duration::from_millis(50));
    let run = batch(&input, &out, &[]);
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(mtime(&a), t0);
    let r = report(&out);
    assert_eq!(status_of(&r, "call-a.zip").0, "skipped");
    assert_eq!(status_of(&r, "corrupt.zip").0, "failed");

    // --force redoes them.
    let run = batch(&input, &out, &["--force"]);
    assert_eq!(run.status.code(), Some(1));
    assert!(mtime(&a) > t0);
    assert_eq!(status_of(&report(&out), "call-a.zip").0, "done");
}

#[test]
fn a_killed_run_leaves_nothing_a_rerun_would_skip() {
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    for name in ["k1", "k2", "k3"] {
        good(&input, name, 8);
    }
    let out = root.path().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mosaic"))
        .arg("batch")
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .args(["--size", "1920x1080", "--speed", "quality", "--jobs", "1"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2_500));
    child.kill().unwrap(); // SIGKILL: no cleanup at all
    child.wait().unwrap();
    // Whatever has a final name is complete.
    for p in tree(&out) {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".mp4") && !name.starts_with('.') {
            let (_, duration) = probe(&p);
            assert!(
                (duration - 8.0).abs() < 0.05,
                "{name} is complete: {duration}"
            );
        }
    }
    // A re-run finishes everything.
    let run = batch(&input, &out, &["--jobs", "1"]);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    for name in ["k1", "k2", "k3"] {
        let (_, duration) = probe(&out.join(format!("{name}.mp4")));
        assert!((duration - 8.0).abs() < 0.05);
    }
}

#[test]
fn repair_mode_writes_a_folder_per_archive() {
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    good(&input, "call-a", 2);
    let out = root.path().join("out");
    let run = batch(&input, &out, &["--mode", "repair"]);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let files: Vec<_> = std::fs::read_dir(out.join("call-a"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    let names: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains("partial")), "{names:?}");
}
