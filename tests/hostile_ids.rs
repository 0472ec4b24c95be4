//! Hostile identifiers inside the metadata (not the ZIP's entry names): a manifest whose
//! `streamId`s are `../../x`, `/abs/x`, `a/b`, `..`, 300 characters long, or differ only in
//! a character the gate replaces; LiveSwitch logs whose `clientId` and `channelId` are such.
//! Through `inspect`, `compose`, `repair` (both `--align` modes and `--audio-only`) and
//! `batch`, nothing is written outside the output folder (the test lists the whole
//! temporary tree) and every name written is plain and distinct. (The service's jobs:
//! `tests/serve_hostile.rs`.)

mod common;
#[path = "harness/tree.rs"]
mod tree;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use mosaic::sample::ContainerKind;
use serde_json::Value;
use tree::{is_plain, paths_under};

/// The hostile stream ids, each a stream of the archive; the last two differ only in a
/// character the gate replaces.
fn hostile_ids() -> Vec<String> {
    vec![
        "../../x".into(),
        "/abs/x".into(),
        "a/b".into(),
        "..".into(),
        "a".repeat(300),
        "a b".into(),
        "a~b".into(),
    ]
}

/// An archive of seven 1.5 s streams whose manifest names them by `hostile_ids()` (and
/// whose archive id and one label are hostile too); the media files keep plain names.
fn hostile_archive(dir: &Path) -> PathBuf {
    let streams = (0..7)
        .map(|i| {
            let c = (i * 30) as u8;
            stream(
                &format!("s{i}"),
                [200, c, 40],
                vec![500],
                vec![segment(0, 1_500)],
            )
        })
        .collect();
    let spec = archive("plain", ContainerKind::Webm, streams);
    let sample = write_sample(dir, &spec);
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&sample).unwrap()).unwrap();
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..zip.len() {
        let mut e = zip.by_index(i).unwrap();
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).unwrap();
        entries.push((e.name().unwrap().into_owned(), bytes));
    }
    std::fs::remove_file(&sample).unwrap();
    let ids = hostile_ids();
    for (name, bytes) in &mut entries {
        if !name.ends_with(".json") {
            continue;
        }
        let mut manifest: Value = serde_json::from_slice(bytes).unwrap();
        manifest["id"] = "../../arch".into();
        for f in manifest["files"].as_array_mut().unwrap() {
            let i: usize = f["streamId"].as_str().unwrap()[1..].parse().unwrap();
            f["streamId"] = ids[i].clone().into();
            if i == 0 {
                f["connectionData"] = "../../label".into();
            }
        }
        *bytes = serde_json::to_vec(&manifest).unwrap();
    }
    let items: Vec<Item<'_>> = entries
        .iter()
        .map(|(n, b)| Item::Stored(n.as_str(), b.as_slice()))
        .collect();
    let path = dir.join("call.zip");
    write_zip(&path, &items);
    path
}

/// A LiveSwitch recordings folder of two sessions (channels `../../ch1` and `a/b`), whose
/// logs give hostile `clientId`s.
fn hostile_liveswitch(dir: &Path) -> PathBuf {
    let folder = dir.join("ls");
    std::fs::create_dir_all(&folder).unwrap();
    for (n, channel) in ["../../ch1", "a/b"].into_iter().enumerate() {
        let mut spec = mosaic::sample::liveswitch::demo();
        spec.streams.truncate(2);
        for s in &mut spec.streams {
            s.id = format!("{}-{n}", s.id);
            for seg in &mut s.segments {
                seg.stop_ms = seg.stop_ms.min(3_000);
                seg.start_ms = seg.start_ms.min(1_000);
                seg.audio_mutes.clear();
            }
            s.segments.truncate(1);
            s.marks_ms = vec![800];
        }
        let opts = mosaic::sample::liveswitch::LiveswitchOptions {
            channel_id: channel.into(),
            ..Default::default()
        };
        let part = dir.join(format!("ls-part{n}"));
        mosaic::sample::liveswitch::write_folder(&spec, &part, &opts).unwrap();
        let clients = ["../../x", "/abs/x"];
        for e in std::fs::read_dir(&part).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == "event.json" {
                continue;
            }
            let mut bytes = std::fs::read(e.path()).unwrap();
            if name.ends_with(".json") {
                let mut log: Value = serde_json::from_slice(&bytes).unwrap();
                for entry in log.as_array_mut().unwrap() {
                    let client = entry["clientId"].as_str().unwrap().to_owned();
                    let k = usize::from(!client.starts_with("client-alice"));
                    entry["clientId"] = clients[k].into();
                }
                bytes = serde_json::to_vec(&log).unwrap();
            }
            std::fs::write(folder.join(&name), bytes).unwrap();
        }
        std::fs::remove_dir_all(&part).unwrap();
    }
    folder
}

fn mosaic(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_mosaic"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mosaic {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The names of the files in `dir`, each plain, all distinct.
fn plain_files(dir: &Path) -> Vec<String> {
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    for n in &names {
        assert!(is_plain(n), "{}: {n:?} is not a plain name", dir.display());
    }
    let mut lower: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
    lower.sort();
    lower.dedup();
    assert_eq!(lower.len(), names.len(), "distinct names: {names:?}");
    names
}

#[test]
fn hostile_stream_ids_write_only_plain_names_under_the_output_folder() {
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let zip = hostile_archive(&input);
    let out = root.path().join("out");
    let o = |rel: &str| out.join(rel).to_string_lossy().into_owned();
    let zip_s = zip.to_str().unwrap();
    std::fs::create_dir_all(&out).unwrap();

    let inspected = mosaic(&["inspect", "--json", "--svg", &o("inspect.svg"), zip_s]);
    let report: Value = serde_json::from_slice(&inspected.stdout).unwrap();
    assert_eq!(report["streams"].as_array().unwrap().len(), 7, "{report}");
    mosaic(&[
        "compose",
        zip_s,
        "-o",
        &o("call.mp4"),
        "--size",
        "640x480",
        "--speed",
        "fast",
    ]);
    for (dir, extra) in [
        ("stream", vec!["--align", "stream"]),
        ("archive", vec!["--align", "archive"]),
        ("audio", vec!["--audio-only"]),
    ] {
        let mut args = vec!["repair", zip_s, "-o"];
        let target = o(&format!("repair-{dir}"));
        args.push(&target);
        args.extend(extra);
        mosaic(&args);
        let names = plain_files(&out.join(format!("repair-{dir}")));
        assert_eq!(names.len(), 7, "one file per stream: {names:?}");
        // The two ids that differ only in a replaced character stay apart.
        assert!(names.iter().any(|n| n.starts_with("a_b-h")), "{names:?}");
    }
    mosaic(&[
        "batch",
        input.to_str().unwrap(),
        "-o",
        &o("batch"),
        "--size",
        "640x480",
        "--speed",
        "fast",
    ]);
    plain_files(&out.join("batch"));

    let ls_root = root.path().join("ls-in");
    let ls = hostile_liveswitch(&ls_root);
    let ls_s = ls.to_str().unwrap();
    // Two sessions: the outputs take the (hostile) channel ids as keys, through the gate.
    mosaic(&[
        "compose",
        ls_s,
        "-o",
        &o("ls.mp4"),
        "--size",
        "640x480",
        "--speed",
        "fast",
    ]);
    mosaic(&["inspect", "--svg", &o("ls.svg"), ls_s]);
    mosaic(&["repair", ls_s, "-o", &o("ls-repair")]);
    let sessions = plain_files(&out.join("ls-repair"));
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    for s in &sessions {
        let files = plain_files(&out.join("ls-repair").join(s));
        assert_eq!(files.len(), 2, "one file per client: {files:?}");
    }
    let lsb = root.path().join("lsb-in");
    std::fs::create_dir_all(&lsb).unwrap();
    std::fs::rename(&ls, lsb.join("ls")).unwrap();
    mosaic(&[
        "batch",
        lsb.to_str().unwrap(),
        "-o",
        &o("ls-batch"),
        "--size",
        "640x480",
        "--speed",
        "fast",
    ]);

    // The whole temporary tree: inputs where they were put, everything else under out/.
    for (top, below) in paths_under(root.path(), &["in", "out", "ls-in", "lsb-in"]) {
        if top == "out" {
            assert!(
                below.iter().all(|p| is_plain(p)),
                "out/{below:?}: not plain"
            );
        }
    }
    let top = plain_files(&out);
    println!("{top:?}");
    for want in ["call.mp4", "inspect.svg"] {
        assert!(top.contains(&want.to_string()), "{top:?}");
    }
    assert_eq!(
        top.iter()
            .filter(|n| n.starts_with("ls-") && n.ends_with(".mp4"))
            .count(),
        2,
        "one composite per session: {top:?}"
    );
    assert_eq!(
        plain_files(&out.join("ls-batch")).len(),
        3,
        "two videos and report.json"
    );
}
