//! A chunked compose through the queue: an intake-only `mosaic serve` and two `mosaic
//! worker` processes (their own data folders, as on separate machines) on a PostgreSQL the
//! test starts itself. In each test both workers take chunks and one worker is killed
//! (`kill -9`) in the middle of a chunk: that chunk alone is done again, the whole output is
//! complete (its duration, every flash within a frame and every beep within 20 ms), and one
//! notification is sent, for the whole.
//!
//! - MP4: 18 s in 3 s chunks, six chunk jobs whose pictures the stitch joins.
//! - HLS: 24 s in 8 s chunks, three chunk jobs that each write their own segments (6 s and
//!   2 s); the last chunk's worker is killed after it delivered its first segment (a debug
//!   build's test switch holds it there); the event playlist lists the first chunks'
//!   segments while it is still to be redone; the segment the killed attempt left is gone at
//!   the end.

mod common;
mod harness;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use harness::*;
use mosaic::sample::ContainerKind;
use serde_json::{Value, json};

/// One chunked job posted to an intake-only service with two workers on PostgreSQL.
struct Chunked {
    workers: Vec<Service>,
    svc: Service,
    receiver: Receiver,
    _server: FileServer,
    setup: Setup,
    _pg: Postgres,
    id: String,
}

impl Chunked {
    /// A `ms`-long two-camera recording (the first flashes and beeps at `marks`, the second
    /// there from 4 s to 14 s) posted as job `key` with `compose`, to workers with `env`.
    async fn post(
        key: &str,
        ms: i64,
        marks: &[i64],
        compose: Value,
        env: &[(&str, &str)],
    ) -> Chunked {
        let pg = Postgres::start();
        let setup = Setup::new();
        let files = setup.path("files");
        std::fs::create_dir_all(&files).unwrap();
        let spec = archive(
            key,
            ContainerKind::Webm,
            vec![
                stream("a", [200, 30, 30], marks.to_vec(), vec![segment(0, ms)]),
                stream("b", [30, 30, 200], vec![], vec![segment(4_000, 14_000)]),
            ],
        );
        write_sample(&files, &spec);
        let server = FileServer::start(&files).await;
        let receiver = Receiver::start(0).await;
        let intake = setup.config(Some(&receiver.url()), &pg.url(), 0, true);
        let workers = start_workers_with(&setup, &intake, &["w1", "w2"], env);
        let svc = Service::start("serve", &intake);
        let request = json!({
            "url": server.url(&format!("{key}.zip")),
            "key": key,
            "compose": compose,
        });
        let posted = post_job(&svc.base, &request).await;
        let id = posted["job"].as_str().unwrap().to_owned();
        Chunked {
            workers,
            svc,
            receiver,
            _server: server,
            setup,
            _pg: pg,
            id,
        }
    }

    async fn job(&self) -> Value {
        get_json(&self.svc.base, &format!("/v1/jobs/{}", self.id)).await
    }

    /// The part of worker `i`'s name that is its process.
    fn worker_mark(&self, i: usize) -> String {
        format!("-{}-", self.workers[i].child.id())
    }

    fn logs(&self) -> String {
        format!("{}\n{}", self.workers[0].log(), self.workers[1].log())
    }

    /// Kills (`kill -9`) a worker that has finished a chunk and is running another for
    /// which `ready` holds; gives the worker and the chunk's index.
    async fn kill_mid_chunk(&mut self, ready: impl Fn(u64) -> bool) -> (usize, u64) {
        let started = Instant::now();
        loop {
            let job = self.job().await;
            let chunks = job["chunks"].as_array().cloned().unwrap_or_default();
            for w in 0..self.workers.len() {
                let mark = self.worker_mark(w);
                let on = |state: &str| {
                    chunks.iter().find(|c| {
                        c["state"] == state
                            && c["worker"].as_str().is_some_and(|n| n.contains(&mark))
                            && (state != "running" || ready(c["index"].as_u64().unwrap()))
                    })
                };
                if let (Some(_), Some(running)) = (on("succeeded"), on("running")) {
                    let index = running["index"].as_u64().unwrap();
                    self.workers[w].kill();
                    return (w, index);
                }
            }
            assert!(
                job["state"] != "succeeded" && started.elapsed() < LONG,
                "no worker finished a chunk and was seen in the middle of another: {job}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The job, succeeded: `n` chunks covering `[0, ms)`, the killed one done twice (by the
    /// other worker), the others once, both workers' among them.
    async fn succeeded(&self, n: usize, ms: i64, killed: (usize, u64)) -> Value {
        let job = wait_final(&self.svc.base, &self.id, Duration::from_secs(240)).await;
        assert_eq!(job["state"], "succeeded", "{job}\n{}", self.logs());
        let chunks = job["chunks"].as_array().unwrap();
        assert_eq!(chunks.len(), n, "{job}");
        let mut by = BTreeSet::new();
        for c in chunks {
            assert_eq!(c["state"], "succeeded", "{c}");
            let redone = c["index"].as_u64() == Some(killed.1);
            assert_eq!(c["attempts"], if redone { 2 } else { 1 }, "{c}");
            by.insert(c["worker"].as_str().unwrap().contains(&self.worker_mark(0)));
        }
        assert_eq!(by.len(), 2, "both workers' chunks: {job}");
        assert_eq!(
            [chunks[0]["from_ms"].clone(), chunks[n - 1]["to_ms"].clone()],
            [json!(0), json!(ms)]
        );
        job
    }

    /// One notification, for the whole job; none for any chunk.
    async fn notified_once(&self) -> Value {
        let note = one_notification(&self.receiver, &self.id).await;
        assert_eq!(note["type"], "job.succeeded");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(self.receiver.delivered().len(), 1);
        note
    }
}

/// `decoded` lasts `ms` at 30 fps, its sound starts with its picture, and it flashes within a
/// frame and beeps within 20 ms of `marks` (counted from its first frame and sample: a
/// demuxed MPEG-TS starts where its clock does).
fn check_marks(decoded: &Decoded, ms: i64, marks: &[i64]) {
    assert_eq!(decoded.frames.len() as i64, ms * 30 / 1000);
    let origin = decoded.frames[0].0 as f64 / 1e6;
    near(
        decoded.audio_start_ns as f64 / 1e6,
        origin,
        1.0,
        "the sound's start",
    );
    let flashes: Vec<f64> = decoded
        .flashes_at(0.25, 0.5)
        .iter()
        .map(|f| f - origin)
        .collect();
    for &m in marks {
        assert!(
            flashes
                .iter()
                .any(|&f| (f - m as f64).abs() <= 1000.0 / 30.0),
            "a flash at {m}: {flashes:?}"
        );
    }
    let beeps: Vec<f64> = decoded.beeps_ms().iter().map(|b| b - origin).collect();
    assert_eq!(beeps.len(), marks.len(), "{beeps:?}");
    for (b, &m) in beeps.iter().zip(marks) {
        near(*b, m as f64, 20.0, "a beep");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_one_chunked_job_and_a_killed_chunk_is_redone_alone() {
    const MARKS: [i64; 5] = [2_900, 3_100, 8_950, 12_050, 16_500];
    let compose = json!({"size": "640x480", "speed": "fast", "chunk_secs": 3});
    let mut run = Chunked::post("long-call", 18_000, &MARKS, compose, &[]).await;
    let killed = run.kill_mid_chunk(|_| true).await;
    let job = run.succeeded(6, 18_000, killed).await;

    // The whole output, to the frame and the beep; the chunks gone from the store.
    let (url, duration) = probed_output(&run.setup, &job);
    near(
        duration * 1000.0,
        18_000.0,
        1000.0 / 30.0,
        "the output's duration",
    );
    check_marks(&decode(&output_path(&run.setup, &url)), 18_000, &MARKS);
    let outputs = run.setup.outputs();
    assert_eq!(
        outputs,
        vec!["api/long-call.mp4".to_string()],
        "{outputs:?}"
    );
    run.notified_once().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hls_job_fans_out_and_its_playlist_grows_as_chunks_end() {
    const MARKS: [i64; 6] = [1_000, 7_900, 8_150, 15_900, 16_150, 22_000];
    const MS: i64 = 24_000;
    let compose = json!({"format": "hls", "size": "640x480", "speed": "fast", "chunk_secs": 8});
    // The last chunk's first attempt holds still (3 s, a debug build's test switch) after
    // each segment it delivers: its worker is killed there, its first segment in the store,
    // the rest not.
    let pause = [("TEST_MOSAIC_PAUSE", "segment:(chunk 3 of 3) attempt 1")];
    let mut run = Chunked::post("hls-call", MS, &MARKS, compose, &pause).await;
    let folder = run.setup.path("out/api/hls-call");
    let playlist = folder.join("index.m3u8");
    let first_of = |index: u64| folder.join(format!("index-{index:04}-1-00000.ts"));
    let killed = run
        .kill_mid_chunk(|index| index == 2 && first_of(index).exists())
        .await;
    let left_behind = first_of(killed.1);
    assert!(left_behind.exists());

    // While the killed chunk waits for its lease to run out, the event playlist lists the
    // chunks before it and not it.
    let started = Instant::now();
    let early = loop {
        let text = std::fs::read_to_string(&playlist).unwrap_or_default();
        let job = run.job().await;
        if text.contains(".ts\n") {
            break (text, job);
        }
        assert!(
            job["state"] != "succeeded" && started.elapsed() < LONG,
            "no segment listed before the end: {job}\n{}",
            run.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (text, job) = early;
    println!("while composing (chunk {} killed):\n{text}", killed.1);
    assert_ne!(job["state"], "succeeded", "{job}");
    assert!(text.contains("#EXT-X-PLAYLIST-TYPE:EVENT"), "{text}");
    assert!(text.contains("index-0000-1-00000.ts\n"), "{text}");
    assert!(
        !text.contains(&format!("index-{:04}-", killed.1)) && !text.contains("ENDLIST"),
        "{text}"
    );

    let job = run.succeeded(3, MS, killed).await;
    let done = std::fs::read_to_string(&playlist).unwrap();
    assert!(done.ends_with("#EXT-X-ENDLIST\n"), "{done}");
    let listed: Vec<&str> = done.lines().filter(|l| l.ends_with(".ts")).collect();
    assert_eq!(listed.len(), 6, "a 6 s and a 2 s segment a chunk: {done}");
    assert!(
        listed.contains(&format!("index-{:04}-2-00000.ts", killed.1).as_str()),
        "the redone chunk's segments: {done}"
    );
    // The store holds the playlist and what it lists: the killed attempt's segment is gone.
    let mut want: Vec<String> = listed.iter().map(|n| format!("api/hls-call/{n}")).collect();
    want.push("api/hls-call/index.m3u8".into());
    want.sort();
    assert_eq!(run.setup.outputs(), want);
    assert!(!left_behind.exists());

    // ffmpeg plays it to its end; back to back its segments are the whole call.
    near(
        probe(&playlist).1 * 1000.0,
        MS as f64,
        1000.0 / 30.0,
        "the playlist's duration",
    );
    run_ok(
        Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&playlist)
            .args(["-f", "null", "-"]),
    );
    let all = run.setup.path("all.ts");
    join_segments(&folder, &listed, &all);
    check_marks(&decode(&all), MS, &MARKS);

    // The job (and its one notification) lists the playlist, then every segment.
    let outputs = job["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), listed.len() + 1, "{job}");
    assert!(
        outputs[0]["url"]
            .as_str()
            .unwrap()
            .ends_with("/api/hls-call/index.m3u8")
    );
    assert_eq!(outputs[0]["duration_ms"], MS, "{job}");
    let note = run.notified_once().await;
    assert_eq!(
        note["outputs"].as_array().map(Vec::len),
        Some(outputs.len()),
        "{note}"
    );
}

/// The segments `names` of `folder`, back to back in one MPEG-TS file `to`.
fn join_segments(folder: &Path, names: &[&str], to: &Path) {
    let mut bytes = Vec::new();
    for name in names {
        bytes.extend(std::fs::read(folder.join(name)).unwrap());
    }
    std::fs::write(to, bytes).unwrap();
}
