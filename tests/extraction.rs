//! A ZIP's stored entries are read where they lie: composing an archive needs no temporary
//! copy of its media (a 2 GB archive does not need 2 GB more disk); compressed entries are
//! still expanded into the run's work folder, and both compose alike. Measured by watching
//! the run's temporary folder (its own `TMPDIR`) while it works.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::*;
use mosaic::sample::ContainerKind;

fn tree_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => tree_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Composes `zip` to WebM with its own temporary folder; gives the folder's peak size.
fn peak_temp_bytes(zip: &Path, out: &Path, tmp: &Path) -> u64 {
    std::fs::create_dir_all(tmp).unwrap();
    let peak = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (peak, done, tmp) = (peak.clone(), done.clone(), tmp.to_path_buf());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(tree_bytes(&tmp), Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        })
    };
    let run = Command::new(env!("CARGO_BIN_EXE_mosaic"))
        .args([
            "compose",
            zip.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .args(["--size", "640x480", "--speed", "fast"])
        .env("TMPDIR", tmp)
        .output()
        .unwrap();
    done.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    peak.load(Ordering::Relaxed)
}

#[test]
fn stored_entries_are_read_in_place_and_compressed_ones_expanded() {
    let spec = archive(
        "in-place",
        ContainerKind::Webm,
        vec![
            stream("a", [200, 30, 30], vec![1_000], vec![segment(0, 6_000)]),
            stream("b", [30, 30, 200], vec![2_000], vec![segment(0, 6_000)]),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let stored = write_sample(dir.path(), &spec); // the generator stores media entries
    // The same entries, deflated.
    let folder = dir.path().join("files");
    std::fs::create_dir(&folder).unwrap();
    let status = Command::new("unzip")
        .args([
            "-q",
            stored.to_str().unwrap(),
            "-d",
            folder.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let names: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let data: Vec<Vec<u8>> = names
        .iter()
        .map(|n| std::fs::read(folder.join(n)).unwrap())
        .collect();
    let media_bytes: u64 = names
        .iter()
        .zip(&data)
        .filter(|(n, _)| n.ends_with(".webm"))
        .map(|(_, d)| d.len() as u64)
        .sum();
    let items: Vec<Item<'_>> = names
        .iter()
        .zip(&data)
        .map(|(n, d)| Item::Deflated(n, d))
        .collect();
    let deflated = dir.path().join("deflated.zip");
    write_zip(&deflated, &items);

    let stored_peak = peak_temp_bytes(
        &stored,
        &dir.path().join("a.webm"),
        &dir.path().join("tmp-a"),
    );
    let deflated_peak = peak_temp_bytes(
        &deflated,
        &dir.path().join("b.webm"),
        &dir.path().join("tmp-b"),
    );
    println!(
        "media {media_bytes} B; temporary folder peak: stored {stored_peak} B, deflated {deflated_peak} B"
    );
    assert!(
        stored_peak < media_bytes / 10,
        "stored entries were copied: {stored_peak} B"
    );
    assert!(
        deflated_peak >= media_bytes,
        "deflated entries are expanded: {deflated_peak} B"
    );
    for out in ["a.webm", "b.webm"] {
        let (codecs, duration) = probe(&dir.path().join(out));
        assert_eq!(codecs, ["vp8", "opus"]);
        assert!((duration - 6.0).abs() < 0.1, "{out}: {duration}");
    }
    let (a, b) = (
        decode(&dir.path().join("a.webm")),
        decode(&dir.path().join("b.webm")),
    );
    assert_eq!(a.flashes_at(0.25, 0.5).len(), 1);
    assert_eq!(a.beeps_ms().len(), b.beeps_ms().len());
    for (x, y) in a.beeps_ms().iter().zip(b.beeps_ms()) {
        assert!((x - y).abs() < 1.0, "the same sound either way");
    }
}
