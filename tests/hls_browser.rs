//! mosaic's HLS plays in a browser: a chunked compose to HLS, served on loopback by the
//! test, played to its end by hls.js (npm) in Debian's headless Chromium (driven by
//! playwright-core): the duration the page reports is the recording's, to the frame, with
//! no stall and no error. `scripts/test.sh` installs Chromium and the page scripts
//! (`npm ci --prefix tests/browser`).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use mosaic::sample::ContainerKind;
use serde_json::Value;

const PAGE: &str = r#"<!doctype html>
<video id="v" muted playsinline></video>
<script src="/hls.js"></script>
<script>
  const v = document.getElementById('v');
  const report = { stalls: 0, errors: [], started: false };
  const hls = new Hls();
  hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) { report.errors.push(d.details); window.done = report; } });
  hls.on(Hls.Events.MANIFEST_PARSED, () => { v.playbackRate = 4; v.play(); });
  v.addEventListener('playing', () => { report.started = true; });
  // A stall: the video waits for data after it has started, before its end.
  v.addEventListener('waiting', () => { if (report.started && !v.ended) report.stalls += 1; });
  v.addEventListener('ended', () => {
    Object.assign(report, { ended: true, duration: v.duration, currentTime: v.currentTime });
    window.done = report;
  });
  hls.loadSource('/call.m3u8');
  hls.attachMedia(v);
</script>
"#;

/// Serves `dir` (and hls.js at `/hls.js`) on 127.0.0.1 until the returned flag is set or two
/// minutes pass.
fn serve(dir: PathBuf, hls_js: PathBuf) -> (u16, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(120);
        while !stopped.load(Ordering::Relaxed) && Instant::now() < until {
            match listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nonblocking(false);
                    let (dir, hls_js) = (dir.clone(), hls_js.clone());
                    std::thread::spawn(move || answer(stream, &dir, &hls_js));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    (port, stop)
}

/// One request: a file of `dir` by its plain name, or hls.js.
fn answer(mut stream: std::net::TcpStream, dir: &Path, hls_js: &Path) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).map_or(true, |n| n == 0) || header == "\r\n" {
            break;
        }
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let name = path.trim_start_matches('/').split('?').next().unwrap_or("");
    let file = match name {
        "hls.js" => Some(hls_js.to_path_buf()),
        n if !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
        {
            Some(dir.join(n))
        }
        _ => None,
    };
    let body = file.and_then(|f| std::fs::read(f).ok());
    let kind = match Path::new(name).extension().and_then(|e| e.to_str()) {
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("ts") => "video/mp2t",
        Some("js") => "application/javascript",
        _ => "text/html",
    };
    let _ = match body {
        Some(body) => stream
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            )
            .and_then(|_| stream.write_all(&body)),
        None => stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    };
}

#[test]
fn hls_plays_to_its_end_in_chromium() {
    let browser = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let hls_js = browser.join("node_modules/hls.js/dist/hls.min.js");
    assert!(
        hls_js.exists(),
        "the page scripts are missing: npm ci --prefix tests/browser (scripts/test.sh does it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let streams = vec![
        stream(
            "ana",
            [200, 40, 40],
            vec![5_000, 21_000],
            vec![segment(0, 30_000)],
        ),
        stream(
            "ben",
            [40, 70, 210],
            vec![12_000],
            vec![segment(4_000, 30_000)],
        ),
    ];
    let zip = write_sample(dir.path(), &archive("web", ContainerKind::Webm, streams));
    let out = dir.path().join("site");
    std::fs::create_dir(&out).unwrap();
    run_ok(
        Command::new(env!("CARGO_BIN_EXE_mosaic"))
            .arg("compose")
            .arg(&zip)
            .arg("-o")
            .arg(out.join("call.m3u8"))
            .args(["--size", "640x480", "--speed", "fast", "--chunk-secs", "10"]),
    );
    std::fs::write(out.join("index.html"), PAGE).unwrap();
    let (port, stop) = serve(out.clone(), hls_js);
    let played = Command::new("node")
        .arg(browser.join("play_hls.mjs"))
        .arg(format!("http://127.0.0.1:{port}/index.html"))
        .arg("90")
        .output()
        .expect("node (scripts/install-deps.sh installs it)");
    stop.store(true, Ordering::Relaxed);
    assert!(
        played.status.success(),
        "{}",
        String::from_utf8_lossy(&played.stderr)
    );
    let report: Value = serde_json::from_slice(&played.stdout).unwrap();
    println!("{report}");
    assert_eq!(report["errors"], serde_json::json!([]), "{report}");
    assert_eq!(report["ended"], true, "{report}");
    assert_eq!(report["stalls"], 0, "{report}");
    let duration = report["duration"].as_f64().unwrap();
    near(
        duration * 1000.0,
        30_000.0,
        1000.0 / 30.0,
        "the page's duration",
    );
    near(
        report["currentTime"].as_f64().unwrap() * 1000.0,
        30_000.0,
        1000.0 / 30.0,
        "where it ended",
    );
}
