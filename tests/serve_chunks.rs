//! A chunked compose through the queue: an intake-only `mosaic serve` and two `mosaic
//! worker` processes (their own data folders, as on separate machines) on a PostgreSQL the
//! test starts itself. One 18 s recording with `chunk_secs = 3` fans out into six chunk jobs;
//! both workers take chunks; one worker is killed (`kill -9`) in the middle of a chunk: that
//! chunk alone is done again, the stitch makes the whole output (its duration, every flash
//! within a frame and every beep within 20 ms), and one notification is sent, for the whole.

mod common;
mod harness;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;
use harness::*;
use mosaic::sample::ContainerKind;
use serde_json::json;

const MARKS: [i64; 5] = [2_900, 3_100, 8_950, 12_050, 16_500];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_one_chunked_job_and_a_killed_chunk_is_redone_alone() {
    let pg = Postgres::start();
    let setup = Setup::new();
    let files = setup.path("files");
    std::fs::create_dir_all(&files).unwrap();
    let spec = archive(
        "long-call",
        ContainerKind::Webm,
        vec![
            stream("a", [200, 30, 30], MARKS.to_vec(), vec![segment(0, 18_000)]),
            stream("b", [30, 30, 200], vec![], vec![segment(4_000, 14_000)]),
        ],
    );
    write_sample(&files, &spec);
    let server = FileServer::start(&files).await;
    let receiver = Receiver::start(0).await;
    let intake = setup.config(Some(&receiver.url()), &pg.url(), 0, true);
    let mut workers = start_workers(&setup, &intake, &["w1", "w2"]);
    let svc = Service::start("serve", &intake);
    let request = json!({
        "url": server.url("long-call.zip"),
        "key": "long-call",
        "compose": {"size": "640x480", "speed": "fast", "chunk_secs": 3},
    });
    let posted = post_job(&svc.base, &request).await;
    let id = posted["job"].as_str().unwrap().to_owned();

    // Kill the first worker in the middle of a chunk, once it has finished one.
    let w1 = format!("-{}-", workers[0].child.id());
    let started = Instant::now();
    let killed = loop {
        let job = get_json(&svc.base, &format!("/v1/jobs/{id}")).await;
        let chunks = job["chunks"].as_array().cloned().unwrap_or_default();
        let on_w1 = |state: &str| {
            chunks.iter().find(|c| {
                c["state"] == state && c["worker"].as_str().is_some_and(|w| w.contains(&w1))
            })
        };
        if let (Some(_), Some(running)) = (on_w1("succeeded"), on_w1("running")) {
            workers[0].kill();
            break running["index"].as_u64().unwrap();
        }
        assert!(
            job["state"] != "succeeded" && started.elapsed() < LONG,
            "the first worker never finished a chunk and started another: {job}\n{}\n{}",
            workers[0].log(),
            workers[1].log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let job = wait_final(&svc.base, &id, Duration::from_secs(240)).await;
    assert_eq!(job["state"], "succeeded", "{job}\n{}", workers[1].log());
    let chunks = job["chunks"].as_array().unwrap();
    assert_eq!(chunks.len(), 6, "{job}");
    let mut by = BTreeSet::new();
    for c in chunks {
        assert_eq!(c["state"], "succeeded", "{c}");
        let redone = c["index"].as_u64() == Some(killed);
        assert_eq!(c["attempts"], if redone { 2 } else { 1 }, "{c}");
        by.insert(c["worker"].as_str().unwrap().contains(&w1));
    }
    assert_eq!(by.len(), 2, "both workers' chunks: {job}");
    assert_eq!(
        [chunks[0]["from_ms"].clone(), chunks[5]["to_ms"].clone()],
        [json!(0), json!(18_000)]
    );

    // The whole output, to the frame and the beep; the chunks gone from the store.
    let (url, duration) = probed_output(&setup, &job);
    near(
        duration * 1000.0,
        18_000.0,
        1000.0 / 30.0,
        "the output's duration",
    );
    let d = decode(&output_path(&setup, &url));
    assert_eq!(d.frames.len(), 540);
    let flashes = d.flashes_at(0.25, 0.5);
    for m in MARKS {
        assert!(
            flashes
                .iter()
                .any(|&f| (f - m as f64).abs() <= 1000.0 / 30.0),
            "a flash at {m}: {flashes:?}"
        );
    }
    let beeps = d.beeps_ms();
    assert_eq!(beeps.len(), MARKS.len(), "{beeps:?}");
    for (b, m) in beeps.iter().zip(MARKS) {
        near(*b, m as f64, 20.0, "a beep");
    }
    let outputs = setup.outputs();
    assert_eq!(
        outputs,
        vec!["api/long-call.mp4".to_string()],
        "{outputs:?}"
    );
    let note = one_notification(&receiver, &id).await;
    assert_eq!(note["type"], "job.succeeded");
    // No notification for any chunk.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.delivered().len(), 1);
}
