//! Stopping a run: SIGTERM and SIGHUP (like Ctrl-C) one second into a compose, a repair and
//! a batch stop it within a second with exit 128 + the signal, leaving nothing in the output
//! folder or the temp folder; after SIGKILL, the same command run again completes and sweeps
//! what the killed run left. Each test runs mosaic with its own TMPDIR.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::*;
use mosaic::sample::{ArchiveSpec, ContainerKind};

/// Two 640x480 cameras for 30 s: long enough that every command is still working 1 s in.
fn long_call() -> ArchiveSpec {
    let cam = |id: &str, color| {
        let mut s = stream(id, color, vec![], vec![segment(0, 30_000)]);
        s.width = 640;
        s.height = 480;
        s
    };
    archive(
        "long",
        ContainerKind::Webm,
        vec![cam("a", [200, 40, 40]), cam("b", [40, 40, 200])],
    )
}

struct Setup {
    _dir: tempfile::TempDir,
    input: PathBuf,
    out: PathBuf,
    tmp: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    write_sample(&input, &long_call());
    let out = dir.path().join("out");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&out).unwrap();
    std::fs::create_dir(&tmp).unwrap();
    Setup {
        input,
        out,
        tmp,
        _dir: dir,
    }
}

fn start(s: &Setup, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_mosaic"))
        .args(args)
        .env("TMPDIR", &s.tmp)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([format!("-{sig}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Runs `args`, sends `sig` after 1 s, and checks the exit code, the time to stop and that
/// nothing is left.
fn stopped(args: &[&str], sig: &str, code: i32) {
    let s = setup();
    let zip = s.input.join("long.zip");
    let args: Vec<String> = args
        .iter()
        .map(|a| {
            a.replace("{zip}", zip.to_str().unwrap())
                .replace("{in}", s.input.to_str().unwrap())
                .replace("{out}", s.out.to_str().unwrap())
        })
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = start(&s, &args);
    std::thread::sleep(Duration::from_millis(1_000));
    assert!(
        child.try_wait().unwrap().is_none(),
        "{args:?} finished within a second: the test needs a longer input"
    );
    assert!(
        !names(&s.tmp).is_empty() || !names(&s.out).is_empty(),
        "{args:?} is working"
    );
    let sent = Instant::now();
    signal(&child, sig);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "{args:?} did not stop"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = sent.elapsed();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(code), "{args:?}: {stderr}");
    assert!(
        took < Duration::from_secs(1),
        "{args:?} took {took:?} to stop"
    );
    assert!(
        names(&s.out).is_empty(),
        "{args:?} left {:?}",
        names(&s.out)
    );
    assert!(
        names(&s.tmp).is_empty(),
        "{args:?} left {:?} in TMPDIR",
        names(&s.tmp)
    );
}

#[test]
fn sigterm_stops_compose_within_a_second_leaving_nothing() {
    stopped(&["compose", "{zip}", "-o", "{out}/call.mp4"], "TERM", 143);
}

#[test]
fn sighup_stops_compose_like_sigterm() {
    stopped(&["compose", "{zip}", "-o", "{out}/call.webm"], "HUP", 129);
}

#[test]
fn sigterm_stops_repair_within_a_second_leaving_nothing() {
    stopped(
        &["repair", "{zip}", "-o", "{out}/tracks", "--reencode"],
        "TERM",
        143,
    );
}

#[test]
fn sigterm_stops_batch_within_a_second_leaving_nothing() {
    stopped(&["batch", "{in}", "-o", "{out}"], "TERM", 143);
}

#[test]
fn after_sigkill_the_same_command_completes_and_sweeps_the_litter() {
    let s = setup();
    let zip = s.input.join("long.zip");
    let out = s.out.join("call.mp4");
    let args = [
        "compose",
        zip.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--speed",
        "fast",
    ];
    let mut child = start(&s, &args);
    std::thread::sleep(Duration::from_millis(1_000));
    signal(&child, "KILL");
    child.wait().unwrap();
    // The killed run's litter: a hidden partial output and its work folder.
    assert_eq!(names(&s.out).len(), 1, "{:?}", names(&s.out));
    assert!(names(&s.out)[0].starts_with(".call.mp4.partial-"));
    assert_eq!(names(&s.tmp).len(), 1, "{:?}", names(&s.tmp));

    let again = start(&s, &args).wait_with_output().unwrap();
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(names(&s.out), ["call.mp4"]);
    assert!(names(&s.tmp).is_empty(), "{:?}", names(&s.tmp));
    let (_, secs) = probe(&out);
    assert!((secs - 30.0).abs() < 0.1, "{secs}");
}
