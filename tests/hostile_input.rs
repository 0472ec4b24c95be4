//! Bad and hostile archives: each is refused with a typed error and a clear one-line
//! message, `mosaic inspect` exits with the bad-input code, and nothing is written.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use mosaic::Error;
use mosaic::inspect::{InspectOptions, inspect_archive};

/// Inspects `zip` through the library (returning the error) and through the CLI (checking
/// exit code 65, a one-line message, empty stdout and no SVG written).
fn refuse(zip: &Path) -> Error {
    let err = inspect_archive(zip, &InspectOptions::default()).expect_err("must be refused");
    let svg = zip.with_extension("svg");
    let out = Command::new(env!("CARGO_BIN_EXE_mosaic"))
        .args(["inspect", "--json", "--svg"])
        .arg(&svg)
        .arg(zip)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(65), "exit code; stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("mosaic: inspecting "), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout");
    assert!(!svg.exists(), "no SVG written");
    let leftovers: Vec<_> = std::fs::read_dir(zip.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(!err.to_string().contains('\n'));
    err
}

fn one_file_zip(dir: &Path, name: &str, media_name: &str, media: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    let manifest = manifest_for(media_name, media.len());
    write_zip(
        &path,
        &[
            Item::Deflated("x.json", manifest.as_bytes()),
            Item::Stored(media_name, media),
        ],
    );
    path
}

#[test]
fn zip_slip_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (i, evil) in ["../../evil.webm", "/etc/evil.webm", "a/../../evil.webm"]
        .into_iter()
        .enumerate()
    {
        let path = dir.path().join(format!("slip{i}.zip"));
        write_zip(
            &path,
            &[
                Item::Deflated("x.json", manifest_for("a.webm", 1).as_bytes()),
                Item::Stored(evil, b"x"),
            ],
        );
        let err = refuse(&path);
        assert!(
            matches!(err, Error::UnsafeEntryName { .. }),
            "{evil}: {err}"
        );
    }
    assert!(!dir.path().parent().unwrap().join("evil.webm").exists());
}

#[test]
fn zip_bomb_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let zeros = vec![0u8; 32 << 20]; // 32 MiB of zeros deflate to ~32 KiB
    let path = dir.path().join("bomb.zip");
    write_zip(
        &path,
        &[
            Item::Deflated("x.json", manifest_for("a.webm", zeros.len()).as_bytes()),
            Item::Deflated("a.webm", &zeros),
        ],
    );
    let err = refuse(&path);
    assert!(matches!(err, Error::CompressionRatio { .. }), "{err}");
    assert!(err.to_string().contains("zip bomb"));
}

#[test]
fn total_size_limit_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let data = vec![7u8; 4096];
    let path = one_file_zip(dir.path(), "big.zip", "a.webm", &data);
    let limits = mosaic::archive::ArchiveLimits {
        max_total_size: 1024,
        ..Default::default()
    };
    let err = mosaic::archive::Archive::open_with_limits(&path, limits).unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
}

#[test]
fn too_many_entries_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..4_100).map(|i| format!("d{i}/")).collect();
    let mut items: Vec<Item> = names.iter().map(|n| Item::Dir(n)).collect();
    let manifest = manifest_for("a.webm", 1);
    items.push(Item::Deflated("x.json", manifest.as_bytes()));
    let path = dir.path().join("many.zip");
    write_zip(&path, &items);
    let err = refuse(&path);
    assert!(matches!(err, Error::TooManyEntries { .. }), "{err}");
}

#[test]
fn truncated_zip_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_sample(dir.path(), &mutes_spec(mosaic::sample::ContainerKind::Webm));
    let bytes = std::fs::read(&good).unwrap();
    let path = dir.path().join("truncated.zip");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = refuse(&path);
    assert!(matches!(err, Error::InvalidZip(_)), "{err}");
}

#[test]
fn not_a_zip_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("text.zip");
    std::fs::write(&path, "this is not a zip file").unwrap();
    assert!(matches!(refuse(&path), Error::InvalidZip(_)));
}

#[test]
fn no_manifest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nomanifest.zip");
    write_zip(
        &path,
        &[
            Item::Stored("a.webm", b"x"),
            Item::Deflated("sub/x.json", b"{}"),
        ],
    );
    assert!(matches!(refuse(&path), Error::NoManifest));
}

#[test]
fn invalid_manifest_json_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("badjson.zip");
    write_zip(
        &path,
        &[
            Item::Deflated("x.json", b"{\"id\": \"x\", \"files\": [tru"),
            Item::Stored("a.webm", b"x"),
        ],
    );
    let err = refuse(&path);
    assert!(matches!(err, Error::InvalidManifest { .. }), "{err}");
    assert!(err.to_string().contains("x.json"));
}

#[test]
fn manifest_missing_a_field_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nofield.zip");
    let manifest = manifest_for("a.webm", 1).replace("\"streamId\":\"s\",", "");
    write_zip(
        &path,
        &[
            Item::Deflated("x.json", manifest.as_bytes()),
            Item::Stored("a.webm", b"x"),
        ],
    );
    let err = refuse(&path);
    assert!(err.to_string().contains("streamId"), "{err}");
}

#[test]
fn manifest_listing_a_missing_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.zip");
    write_zip(
        &path,
        &[Item::Deflated(
            "x.json",
            manifest_for("gone.webm", 10).as_bytes(),
        )],
    );
    let err = refuse(&path);
    assert!(
        matches!(&err, Error::MissingFile { filename } if filename == "gone.webm"),
        "{err}"
    );
}

#[test]
fn empty_media_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = one_file_zip(dir.path(), "empty.zip", "a.webm", b"");
    assert!(matches!(refuse(&path), Error::EmptyMedia { .. }));
}

#[test]
fn garbage_named_webm_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let garbage: Vec<u8> = (0..50_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let path = one_file_zip(dir.path(), "garbage.zip", "a.webm", &garbage);
    let err = refuse(&path);
    assert!(matches!(err, Error::NotMatroska { .. }), "{err}");
    // An EBML header followed by garbage is refused too, never a panic.
    let mut ebml = vec![0x1A, 0x45, 0xDF, 0xA3, 0x84, 0x42, 0x86, 0x81, 0x01];
    ebml.extend_from_slice(&garbage);
    let path = one_file_zip(dir.path(), "garbage2.zip", "a.webm", &ebml);
    assert!(matches!(
        refuse(&path),
        Error::NotMatroska { .. } | Error::CorruptMedia { .. }
    ));
}

#[test]
fn unknown_codec_is_refused() {
    use mosaic::sample::encode::{Encoded, Packet};
    use mosaic::sample::mux::{TrackData, TrackKindData, write_live_matroska};
    let encoded = Encoded {
        codec_private: None,
        packets: vec![Packet {
            pts_ns: 0,
            dts_ns: None,
            keyframe: true,
            data: vec![0, 0, 0, 1, 0x40, 1, 2, 3],
        }],
    };
    let hevc = TrackData {
        codec_id: "V_MPEGH/ISO/HEVC",
        encoded: &encoded,
        kind: TrackKindData::Video {
            width: 64,
            height: 64,
        },
    };
    let media = write_live_matroska(Vec::new(), "matroska", Some(hevc), None, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = one_file_zip(dir.path(), "hevc.zip", "a.mkv", &media);
    let err = refuse(&path);
    assert!(
        matches!(&err, Error::UnsupportedCodec { codec, .. } if codec == "V_MPEGH/ISO/HEVC"),
        "{err}"
    );
}

#[test]
fn truncated_media_is_inspected_up_to_the_damage() {
    let dir = tempfile::tempdir().unwrap();
    let spec = mutes_spec(mosaic::sample::ContainerKind::Webm);
    let s = &spec.streams[1];
    let media = mosaic::sample::encode_segment(&spec, s, &s.segments[0]).unwrap();
    let cut = &media[..media.len() * 2 / 3];
    let path = one_file_zip(dir.path(), "cut.zip", "a.webm", cut);
    let r = inspect_archive(&path, &InspectOptions::default()).unwrap();
    let seg = &r.streams[0].segments[0];
    assert!(seg.truncated.is_some());
    let video = seg
        .tracks
        .iter()
        .find(|t| t.kind == mosaic::inspect::TrackKind::Video)
        .unwrap();
    assert!(video.frames > 20 && video.frames < 90, "{}", video.frames);
    assert!(r.warnings.iter().any(|w| w.contains("truncated")));
}

#[test]
fn missing_archive_is_a_no_input_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_mosaic"))
        .args(["inspect", "/nonexistent/archive.zip"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(66));
}

/// A VP8 track whose frames pass inspection (key frame headers, sizes) but whose data is
/// garbage: no frame decodes. That is the input's fault (exit 65, the file named, nothing
/// written), not the machine's.
#[test]
fn media_that_breaks_the_decoder_is_concealed_or_refused_with_strict() {
    use mosaic::sample::encode::{Encoded, Packet};
    use mosaic::sample::mux::{TrackData, TrackKindData, write_live_matroska};
    let frame = |i: u8| {
        // A key frame tag (partition size 0x3ff), the start code, 64x64, then noise.
        let mut data = vec![0xf0, 0x7f, 0x00, 0x9d, 0x01, 0x2a, 64, 0, 64, 0];
        data.extend((0..200u32).map(|k| (k.wrapping_mul(2_654_435_761) >> 24) as u8 ^ i));
        data
    };
    let encoded = Encoded {
        codec_private: None,
        packets: (0..60u8)
            .map(|i| Packet {
                pts_ns: i64::from(i) * 33_333_333,
                dts_ns: None,
                keyframe: true,
                data: frame(i),
            })
            .collect(),
    };
    let vp8 = TrackData {
        codec_id: "V_VP8",
        encoded: &encoded,
        kind: TrackKindData::Video {
            width: 64,
            height: 64,
        },
    };
    let media = write_live_matroska(Vec::new(), "webm", Some(vp8), None, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = one_file_zip(dir.path(), "garbled.zip", "a.webm", &media);
    let inspected = inspect_archive(&path, &InspectOptions::default()).unwrap();
    assert_eq!(inspected.streams[0].segments[0].tracks[0].frames, 60);
    let compose = |out: &Path, strict: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mosaic"));
        cmd.args([
            "compose",
            path.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .args(["--size", "640x480", "--json"]);
        if strict {
            cmd.arg("--strict");
        }
        cmd.output().unwrap()
    };

    // Frames that fail are concealed, but a stream of which no frame at all decodes is
    // the input's fault, with --strict or without.
    let out = dir.path().join("out.mp4");
    let run = compose(&out, false);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(65), "{stderr}");
    assert!(!out.exists());
    let run = compose(&out, true);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(65), "{stderr}");
    assert!(
        stderr.contains("a.webm") && stderr.contains("cannot be decoded"),
        "{stderr}"
    );
    assert!(!out.exists());
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "only the input is left");
}

/// Offsets that cannot be true (10^15 ms, a span of 25 h) and negative ones are refused by
/// every command before any work, in well under a second, naming the file and field, and
/// nothing is written; `--max-span` raises the limit.
#[test]
fn implausible_offsets_are_refused_by_every_command() {
    let spec = archive(
        "tiny",
        mosaic::sample::ContainerKind::Webm,
        vec![stream("s", [200, 40, 40], vec![], vec![segment(0, 1_000)])],
    );
    let media =
        mosaic::sample::encode_segment(&spec, &spec.streams[0], &spec.streams[0].segments[0])
            .unwrap();
    for (start, stop, expect) in [
        (0i64, 1_000_000_000_000_000i64, "files[0].stopTimeOffset"),
        (
            1_000_000_000_000_000,
            1_000_000_000_001_000,
            "files[0].stopTimeOffset",
        ),
        (-1, 1_000, "negative startTimeOffset"),
        (0, 25 * 3_600_000, "over the limit of 24 h"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let manifest = manifest_for("a.webm", media.len())
            .replace(
                "\"startTimeOffset\":0",
                &format!("\"startTimeOffset\":{start}"),
            )
            .replace(
                "\"stopTimeOffset\":1000",
                &format!("\"stopTimeOffset\":{stop}"),
            );
        let zip = dir.path().join("call.zip");
        write_zip(
            &zip,
            &[
                Item::Deflated("x.json", manifest.as_bytes()),
                Item::Stored("a.webm", &media),
            ],
        );
        let out = dir.path().join("out");
        let zip_arg = zip.to_str().unwrap();
        let out_mp4 = out.join("call.mp4");
        std::fs::create_dir(&out).unwrap();
        for args in [
            vec!["inspect", zip_arg],
            vec!["compose", zip_arg, "-o", out_mp4.to_str().unwrap()],
            vec![
                "repair",
                zip_arg,
                "-o",
                out.join("tracks").to_str().unwrap(),
            ],
        ] {
            let started = std::time::Instant::now();
            let run = Command::new(env!("CARGO_BIN_EXE_mosaic"))
                .args(&args)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&run.stderr);
            assert!(
                started.elapsed().as_secs_f64() < 1.0,
                "{args:?} took {:?}",
                started.elapsed()
            );
            assert_eq!(run.status.code(), Some(65), "{args:?}: {stderr}");
            assert!(stderr.contains(expect), "{args:?}: {stderr}");
            assert_eq!(
                std::fs::read_dir(&out).unwrap().count(),
                0,
                "{args:?} wrote nothing"
            );
        }
        // Batch records it as failed, writes only its report.
        let batch_out = dir.path().join("batch");
        let run = Command::new(env!("CARGO_BIN_EXE_mosaic"))
            .args([
                "batch",
                dir.path().to_str().unwrap(),
                "-o",
                batch_out.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(1));
        let report = std::fs::read_to_string(batch_out.join("report.json")).unwrap();
        assert!(report.contains(expect), "{report}");
        assert_eq!(std::fs::read_dir(&batch_out).unwrap().count(), 1);
    }
    // A long but true recording passes with --max-span.
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest_for("a.webm", media.len()).replace(
        "\"stopTimeOffset\":1000",
        &format!("\"stopTimeOffset\":{}", 25 * 3_600_000),
    );
    let zip = dir.path().join("long.zip");
    write_zip(
        &zip,
        &[
            Item::Deflated("x.json", manifest.as_bytes()),
            Item::Stored("a.webm", &media),
        ],
    );
    let run = Command::new(env!("CARGO_BIN_EXE_mosaic"))
        .args(["inspect", zip.to_str().unwrap(), "--max-span", "26h"])
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

/// What the fuzzer found: a SimpleBlock shorter than its own header once panicked the
/// Matroska reader. It is damage, reported, not a crash.
#[test]
fn a_block_shorter_than_its_header_is_damage_not_a_crash() {
    let bytes =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/short-block.webm"))
            .unwrap();
    let result = mosaic::inspect::inspect_container(
        &bytes[..],
        "short-block.webm",
        &InspectOptions::default(),
    );
    match result {
        Ok(report) => assert!(report.truncated.is_some(), "{report:?}"),
        Err(e) => assert!(matches!(e, Error::CorruptMedia { .. }), "{e}"),
    }
}

#[test]
fn cluster_timestamps_near_the_end_of_time_do_not_overflow() {
    // Three inputs the fuzzer made (fuzz/seeds/matroska_scan/overflow-*): a Cluster
    // Timestamp near i64::MAX overflowed the time checks in a debug build (wrapped in
    // release). Inspection now saturates: it reports what it read, or refuses the file.
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/matroska_scan");
    let mut tried = 0;
    for entry in std::fs::read_dir(&seeds).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("overflow-") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let result =
            mosaic::inspect::inspect_container(&bytes[..], &name, &InspectOptions::default());
        if let Err(e) = result {
            assert!(
                matches!(e, Error::CorruptMedia { .. } | Error::NotMatroska { .. }),
                "{name}: {e}"
            );
        }
        tried += 1;
    }
    assert_eq!(tried, 3);
}
