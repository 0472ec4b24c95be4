//! Long batches keep flat memory: eight archives composed one after another in one process
//! peak at no more than 1.3x the resident memory of one compose (glibc's per-thread arenas
//! used to make it 1.48x). Measured with `/usr/bin/time` on the real binary.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use mosaic::sample::ContainerKind;

/// Runs the binary with `args` under `/usr/bin/time`; gives its peak RSS in KiB.
fn peak_rss_kib(args: &[&str], cwd: &Path) -> u64 {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "peak-rss-kib %M"])
        .arg(env!("CARGO_BIN_EXE_mosaic"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("/usr/bin/time (package time, installed by scripts/install-deps.sh)");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {text}");
    text.lines()
        .find_map(|l| l.strip_prefix("peak-rss-kib "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in {text}"))
}

#[test]
fn a_batch_of_eight_stays_within_1_3x_one_compose() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("in");
    std::fs::create_dir_all(&inputs).unwrap();
    for i in 0..8 {
        let spec = archive(
            &format!("call-{i}"),
            ContainerKind::Webm,
            vec![
                stream("a", [200, 30, 30], vec![1_000], vec![segment(0, 6_000)]),
                stream("b", [30, 30, 200], vec![2_000], vec![segment(0, 6_000)]),
                stream("c", [30, 200, 30], vec![3_000], vec![segment(500, 6_000)]),
            ],
        );
        write_sample(&inputs, &spec);
    }
    let one = peak_rss_kib(&["compose", "in/call-0.zip", "-o", "one.mp4"], dir.path());
    let batch = peak_rss_kib(&["batch", "in", "-o", "out", "--jobs", "1"], dir.path());
    let ratio = batch as f64 / one as f64;
    println!("one compose {one} KiB, a batch of eight {batch} KiB: {ratio:.2}x");
    assert_eq!(
        std::fs::read_dir(dir.path().join("out")).unwrap().count(),
        9,
        "8 outputs and report.json"
    );
    assert!(
        ratio <= 1.3,
        "a batch of eight peaks at {ratio:.2}x one compose"
    );
}
