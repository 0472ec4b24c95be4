//! Damaged media in one stream's file: bits flipped in the middle, the file cut inside a
//! cluster, a cluster whose size lies (too small, too large), garbage between two clusters.
//! Inspection skips the damaged region and resumes at the next cluster, naming it; compose
//! exits 0 with the full duration, the other stream's marks in place and the damaged
//! stream's sound after the damage in place, the damage in its `--json` warnings;
//! `--strict` refuses it (65, nothing written). A stream of which no video frame can be
//! decoded shows its placeholder, its sound in place, and is warned about.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use mosaic::sample::{ArchiveSpec, ContainerKind};

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

/// [`compose`] without `--strict`, which must succeed (the damage is skipped, not fatal).
fn compose_ok(zip: &Path, out: &Path) -> std::process::Output {
    let run = compose(zip, out, false);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    run
}

/// The two-stream, 9 s archive every case damages: `a` (marks 1 s, 7 s) stays intact;
/// `b` (marks 2 s, 8 s) is in two clusters, from 0 s and from 5 s. Gives the unzipped folder.
fn spec() -> ArchiveSpec {
    archive(
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
    )
}

fn sample(dir: &Path) -> std::path::PathBuf {
    let spec = spec();
    let folder = dir.join("call");
    std::fs::create_dir(&folder).unwrap();
    let zip = write_sample(dir, &spec);
    let status = Command::new("unzip")
        .args(["-q", zip.to_str().unwrap(), "-d", folder.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    folder
}

/// `--strict` refuses the damaged archive: exit 65 naming b.webm and `why`, no output.
fn strict_refuses(folder: &Path, out: &Path, why: &str) {
    let run = compose(folder, out, true);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(65), "{stderr}");
    assert!(
        stderr.contains("b.webm") && stderr.contains(why),
        "{stderr}"
    );
    assert!(!out.exists());
}

/// A pseudo-random byte sequence (deterministic).
fn noise(seed: u64) -> impl Iterator<Item = u64> {
    let mut x = seed;
    std::iter::repeat_with(move || {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        x >> 29
    })
}

/// Damages `b.webm` with `damage` (given its bytes and its clusters' offsets), then checks
/// inspection, compose (exit 0, 9 s, `a`'s marks, `b`'s surviving beeps, the warning) and
/// `--strict` (65, nothing written).
fn check(damage: impl Fn(&mut Vec<u8>, &[usize]), b_beeps: &[f64], warning: &str) {
    let dir = tempfile::tempdir().unwrap();
    let folder = sample(dir.path());
    let file = folder.join("b.webm");
    let mut bytes = std::fs::read(&file).unwrap();
    let starts = clusters(&bytes);
    assert_eq!(starts.len(), 2, "b.webm's clusters: {starts:?}");
    damage(&mut bytes, &starts);
    std::fs::write(&file, &bytes).unwrap();

    let r = mosaic::inspect::inspect_archive(&folder, &Default::default()).unwrap();
    let seg = r.segment("b.webm").unwrap();
    assert!(
        !seg.damage.is_empty() || seg.truncated.is_some(),
        "the damage is reported"
    );

    let out = dir.path().join("out.mp4");
    let run = compose_ok(&folder, &out);
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["duration_ms"], 9_000);
    let (_, duration) = probe(&out);
    assert!((duration - 9.0).abs() < 0.1, "{duration}");
    let warnings = report["warnings"].to_string();
    assert!(warnings.contains(warning), "{warnings}");
    let d = decode(&out);
    // a's marks (left half) untouched; b's beeps that survive, in place.
    let a = d.flashes_at(0.25, 0.5);
    assert_eq!(a.len(), 2, "{a:?}");
    for (got, want) in a.iter().zip([1_000.0, 7_000.0]) {
        assert!((got - want).abs() <= 1000.0 / 30.0, "{a:?}");
    }
    let beeps = d.beeps_ms();
    // Within 2 ms: the packet lost at a cut once put every later sound of b 20 ms early (the
    // mixer closed the hole), and the Opus priming kept at the start 6.4 ms late.
    for want in [1_000.0, 7_000.0].iter().chain(b_beeps) {
        assert!(
            beeps.iter().any(|b| (b - want).abs() <= 2.0),
            "beep at {want}: {beeps:?}"
        );
    }

    std::fs::remove_file(&out).unwrap();
    strict_refuses(&folder, &out, "--strict");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("out"))
        .collect();
    assert!(left.is_empty(), "nothing written: {left:?}");
}

#[test]
fn flipped_bits_in_one_file_are_skipped_and_named() {
    // 300 flipped bits in the first cluster's middle, well before the next cluster: reading
    // resumes at the next block after each damaged one, so b's beeps at 2 s (between two
    // damaged regions) and 8 s survive. (When reading resumed only at the next cluster, the
    // 2 s beep and all of the first cluster after the first flip were lost.)
    check(
        |bytes, starts| {
            let (from, to) = (starts[0] + 3_000, starts[1] - 2_000);
            assert!(to > from + 1_000, "{starts:?}");
            for x in noise(7).take(300) {
                let at = from + (x >> 4) as usize % (to - from);
                bytes[at] ^= 1 << (x % 8);
            }
        },
        &[2_000.0, 8_000.0],
        "b.webm: damaged",
    );
}

#[test]
fn a_file_cut_inside_a_cluster_keeps_what_came_before() {
    check(
        |bytes, starts| {
            let cut = (starts[1] + bytes.len()) / 2;
            bytes.truncate(cut);
        },
        &[2_000.0],
        "b.webm: truncated",
    );
}

#[test]
fn a_cluster_whose_size_is_too_small_is_skipped_to_the_next() {
    // The first cluster says it holds 1000 bytes; it holds 28 kB.
    check(
        |bytes, starts| {
            let size_at = starts[0] + 4;
            bytes[size_at..size_at + 8].copy_from_slice(&[1, 0, 0, 0, 0, 0, 0x03, 0xE8]);
        },
        &[8_000.0],
        "b.webm: damaged",
    );
}

#[test]
fn a_cluster_whose_size_is_too_large_still_gives_the_next_one() {
    // The first cluster says it holds 1 MiB, more than the whole file.
    check(
        |bytes, starts| {
            let size_at = starts[0] + 4;
            bytes[size_at..size_at + 8].copy_from_slice(&[1, 0, 0, 0, 0, 0x10, 0, 0]);
        },
        &[2_000.0, 8_000.0],
        "b.webm: damaged",
    );
}

#[test]
fn garbage_between_two_clusters_is_skipped() {
    check(
        |bytes, starts| {
            let garbage: Vec<u8> = noise(11).take(3_000).map(|x| x as u8).collect();
            bytes.splice(starts[1]..starts[1], garbage);
        },
        &[2_000.0, 8_000.0],
        "b.webm: damaged",
    );
}

#[test]
fn a_video_of_which_nothing_can_be_decoded_shows_the_placeholder() {
    let spec = spec();
    let dir = tempfile::tempdir().unwrap();
    let folder = sample(dir.path());
    // b again, every video frame's payload replaced: a container that reads, a video that
    // does not decode, real sound.
    let b = &spec.streams[1];
    let mut tracks = mosaic::sample::encode_tracks(&spec, b, &b.segments[0]).unwrap();
    let (video, ..) = tracks.video.as_mut().unwrap();
    for p in &mut video.packets {
        p.data.iter_mut().for_each(|byte| *byte = 0x55);
    }
    let bytes = mosaic::sample::mux::write_live_matroska(
        Vec::new(),
        tracks.doc_type,
        tracks.video_track(),
        tracks.audio_track(),
        None,
    )
    .unwrap();
    std::fs::write(folder.join("b.webm"), bytes).unwrap();

    let out = dir.path().join("out.mp4");
    let run = compose_ok(&folder, &out);
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["duration_ms"], 9_000);
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("b.webm: no frame of its video can be decoded"),
        "{warnings}"
    );
    let d = decode(&out);
    // b's tile (the right half) is the placeholder: dark blue-grey, not b's blue.
    let rgb = d.rgb_at(d.frame_at(4_000.0), 0.75, 0.3);
    let placeholder = [48.0, 48.0, 64.0];
    let off = rgb
        .iter()
        .zip(placeholder)
        .map(|(a, b): (&f64, f64)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(off < 40.0, "b's tile at 4 s: {rgb:?}, not the placeholder");
    let a = d.flashes_at(0.25, 0.5);
    assert_eq!(a.len(), 2, "{a:?}");
    let beeps = d.beeps_ms();
    for want in [1_000.0, 2_000.0, 7_000.0, 8_000.0] {
        assert!(
            beeps.iter().any(|b| (b - want).abs() <= 2.0),
            "beep at {want}: {beeps:?}"
        );
    }

    std::fs::remove_file(&out).unwrap();
    strict_refuses(&folder, &out, "decoded");
}

/// One block of a generated file: where its element starts and ends, its track and time.
#[derive(Debug, Clone, Copy)]
struct BlockAt {
    start: usize,
    end: usize,
    track: u64,
    ms: i64,
}

/// An EBML number at `b[at..]`: (value, length), the length marker kept for IDs.
fn ebml(b: &[u8], at: usize, keep_marker: bool) -> (u64, usize) {
    let len = b[at].leading_zeros() as usize + 1;
    let mut v = u64::from(b[at]) & if keep_marker { 0xff } else { 0xff >> len };
    for &x in &b[at + 1..at + len] {
        v = (v << 8) | u64::from(x);
    }
    (v, len)
}

/// Every SimpleBlock of an undamaged generated file, in storage order (a walk of the EBML
/// tree: Segment and Cluster entered, everything else skipped by its size).
fn blocks(b: &[u8]) -> Vec<BlockAt> {
    const SEGMENT: u64 = 0x1853_8067;
    const CLUSTER: u64 = 0x1F43_B675;
    let (mut at, mut cluster_ms, mut out) = (0, 0i64, Vec::new());
    while at < b.len() {
        let (id, id_len) = ebml(b, at, true);
        let (size, size_len) = ebml(b, at + id_len, false);
        let body = at + id_len + size_len;
        let unknown = size == (1u64 << (7 * size_len)) - 1;
        match id {
            SEGMENT | CLUSTER => {
                at = body;
                continue;
            }
            0xE7 => {
                let ts = b[body..body + size as usize]
                    .iter()
                    .fold(0u64, |v, &x| (v << 8) | u64::from(x));
                cluster_ms = ts as i64;
            }
            0xA3 => {
                let (track, l) = ebml(b, body, false);
                let rel = i16::from_be_bytes([b[body + l], b[body + l + 1]]);
                out.push(BlockAt {
                    start: at,
                    end: body + size as usize,
                    track,
                    ms: cluster_ms + i64::from(rel),
                });
            }
            _ => {}
        }
        assert!(
            !unknown,
            "an element of unknown size other than Segment or Cluster"
        );
        at = body + size as usize;
    }
    out
}

/// The audio frames' times of a file as the scan reads them (ms).
fn audio_frames_ms(bytes: &[u8]) -> (Vec<i64>, mosaic::inspect::ContainerReport) {
    let mut times = Vec::new();
    let report = mosaic::inspect::matroska::scan_frames(
        std::io::Cursor::new(bytes),
        "b.webm",
        &Default::default(),
        &mut |f| {
            if f.kind == mosaic::inspect::TrackKind::Audio {
                times.push(f.pts_ns.div_euclid(1_000_000));
            }
            Ok(())
        },
    )
    .unwrap();
    (times, report)
}

/// Damages `b.webm` with `damage` (given its bytes and blocks; it gives the damaged bytes'
/// range in the original file and the bytes inserted there), then checks that damage costs
/// only what is damaged: every audio frame whose block starts after the last damaged byte is
/// read, the loss is reported forwards and no longer than the damaged blocks plus one block
/// either side, and compose keeps every beep after it within 20 ms (`check`).
fn check_local(damage: impl Fn(&mut Vec<u8>, &[BlockAt]) -> (usize, usize), b_beeps: &[f64]) {
    let dir = tempfile::tempdir().unwrap();
    let folder = sample(dir.path());
    let file = folder.join("b.webm");
    let original = std::fs::read(&file).unwrap();
    let all = blocks(&original);
    let mut bytes = original.clone();
    let (first_bad, last_bad) = damage(&mut bytes, &all);
    std::fs::write(&file, &bytes).unwrap();
    let shift = bytes.len() as i64 - original.len() as i64;

    let (want, _) = audio_frames_ms(&original);
    let (got, report) = audio_frames_ms(&bytes);
    // The blocks the damage touched, and one block either side: the most that may be lost.
    let touched: Vec<&BlockAt> = all
        .iter()
        .filter(|b| b.end > first_bad && b.start <= last_bad)
        .collect();
    let before = all.iter().rev().find(|b| b.end <= first_bad).unwrap();
    let after = all.iter().find(|b| b.start > last_bad).unwrap();
    println!(
        "damaged bytes {first_bad}..={last_bad}: blocks {:?}; {} of {} audio frames read",
        touched.iter().map(|b| (b.track, b.ms)).collect::<Vec<_>>(),
        got.len(),
        want.len()
    );
    println!("reported: {:?}", report.damage);
    let audio_track = 2;
    for b in all
        .iter()
        .filter(|b| b.track == audio_track && b.start > last_bad)
    {
        assert!(
            got.contains(&b.ms),
            "the audio frame at {} ms after the damage is lost",
            b.ms
        );
    }
    assert!(!report.damage.is_empty(), "the damage is reported");
    for d in &report.damage {
        let (from, to) = (d.from_ms.unwrap(), d.to_ms.unwrap());
        assert!(from <= to, "backwards: {d}");
        assert!(
            from >= before.ms - 40 && to <= after.ms + 40,
            "{d}: more than the damaged blocks ({}..{} ms) and one block either side",
            before.ms,
            after.ms
        );
        let (a, z) = (d.from_byte as i64, d.to_byte as i64);
        assert!(
            a >= before.start as i64 && z <= after.end as i64 + shift,
            "{d}: bytes beyond the damaged blocks and one block either side ({}..{})",
            before.start,
            after.end as i64 + shift
        );
    }
    drop(dir);
    // The same damage through compose: exit 0, the marks, and b's beeps that survive.
    check(
        |bytes, _| {
            let all = blocks(bytes);
            let _ = damage(bytes, &all);
        },
        b_beeps,
        "b.webm: damaged",
    );
}

#[test]
fn damage_at_the_head_of_a_cluster_costs_only_its_blocks() {
    // The second cluster (5 s long, from 5 s) loses the headers of its first three blocks:
    // everything after them is read, the beep at 8 s in place. (Reading used to resume only at
    // the next cluster: there is none, so the file was cut at 5 s.)
    check_local(
        |bytes, all| {
            let head: Vec<&BlockAt> = all.iter().filter(|b| b.ms >= 5_000).take(3).collect();
            for (i, b) in head.iter().enumerate() {
                // ID, size and track, and a time byte of the third.
                for (k, at) in [b.start, b.start + 1, b.start + 2].into_iter().enumerate() {
                    bytes[at] ^= [0x5a, 0x33, 0x0f][(i + k) % 3];
                }
            }
            (head[0].start, head[2].start + 2)
        },
        &[2_000.0, 8_000.0],
    );
}

#[test]
fn a_block_whose_size_lies_costs_only_itself() {
    // A block in the first cluster's middle says it holds 3000 bytes more than it does.
    check_local(
        |bytes, all| {
            let b = all.iter().find(|b| b.ms >= 2_500 && b.track == 2).unwrap();
            let len = bytes[b.start + 1].leading_zeros() as usize + 1;
            let (size, _) = ebml(bytes, b.start + 1, false);
            let lie = size + 3_000;
            for k in 0..len {
                let shift = 8 * (len - 1 - k);
                bytes[b.start + 1 + k] = ((lie >> shift) & 0xff) as u8;
            }
            bytes[b.start + 1] |= 0x80 >> (len - 1);
            (b.start, b.start + len)
        },
        &[2_000.0, 8_000.0],
    );
}

#[test]
fn garbage_inside_a_cluster_costs_only_itself() {
    // 2000 bytes of noise between two blocks of the first cluster, at 3 s.
    check_local(
        |bytes, all| {
            let b = all.iter().find(|b| b.ms >= 3_000).unwrap();
            let garbage: Vec<u8> = noise(23).take(2_000).map(|x| x as u8).collect();
            bytes.splice(b.start..b.start, garbage);
            (b.start, b.start - 1)
        },
        &[2_000.0, 8_000.0],
    );
}

#[test]
fn a_cluster_whose_timestamp_jumps_away_from_its_neighbours_is_damage() {
    // b, 14 s in three 5 s clusters; the second's Timestamp (5000) is damaged to 65535 ms,
    // far from both neighbours (0 and 10000): its frames would land a minute late. It is
    // reported and left out; the third cluster's frames keep their times.
    let spec = archive(
        "jump",
        ContainerKind::Webm,
        vec![
            stream("a", [200, 40, 40], vec![1_000], vec![segment(0, 14_000)]),
            stream(
                "b",
                [40, 40, 200],
                vec![2_000, 12_000],
                vec![segment(0, 14_000)],
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
    let file = folder.join("b.webm");
    let mut bytes = std::fs::read(&file).unwrap();
    let starts = clusters(&bytes);
    assert_eq!(starts.len(), 3, "b.webm's clusters: {starts:?}");
    // The Timestamp element right after the second cluster's ID and size.
    let size_len = bytes[starts[1] + 4].leading_zeros() as usize + 1;
    let ts = starts[1] + 4 + size_len;
    assert_eq!(
        &bytes[ts..ts + 4],
        &[0xE7, 0x82, 0x13, 0x88],
        "Timestamp 5000"
    );
    bytes[ts + 2] = 0xFF;
    bytes[ts + 3] = 0xFF;
    std::fs::write(&file, &bytes).unwrap();

    let (times, report) = audio_frames_ms(&bytes);
    println!("{:?}", report.damage);
    assert!(times.iter().all(|&t| t < 14_100), "no frame a minute late");
    assert!(
        times.iter().any(|&t| (10_000..10_100).contains(&t)),
        "the third cluster read"
    );
    assert_eq!(report.damage.len(), 1, "{:?}", report.damage);
    let d = &report.damage[0];
    assert!(d.reason.contains("implausible"), "{d}");
    assert_eq!(
        (d.from_byte, d.to_byte),
        (starts[1] as u64, starts[2] as u64),
        "the second cluster"
    );
    assert!(
        d.from_ms.unwrap() < 5_000 && (10_000..10_100).contains(&d.to_ms.unwrap()),
        "{d}"
    );

    let out = dir.path().join("out.mp4");
    compose_ok(&folder, &out);
    let (_, duration) = probe(&out);
    assert!((duration - 14.0).abs() < 0.1, "{duration}");
    let beeps = decode(&out).beeps_ms();
    for want in [1_000.0, 2_000.0, 12_000.0] {
        assert!(
            beeps.iter().any(|b| (b - want).abs() <= 20.0),
            "beep at {want}: {beeps:?}"
        );
    }
}
