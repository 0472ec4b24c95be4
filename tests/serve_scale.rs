//! Scale-out: PostgreSQL (Debian's package, started by the test on a loopback port) shared by
//! an intake-only `mosaic serve` and two `mosaic worker` processes with their own data
//! folders, as on separate machines. Ten jobs: all done, each once, by both workers.
//! And load: 1,000 distinct signed callbacks in 10 s, each acknowledged with its own job.

mod common;
mod harness;

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use harness::*;
use mosaic::sample::ContainerKind;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_postgres_split_ten_jobs_and_do_none_twice() {
    let pg = Postgres::start();
    let setup = Setup::new();
    let files = setup.path("files");
    std::fs::create_dir_all(&files).unwrap();
    for i in 0..10 {
        let spec = archive(
            &format!("scale-{i}"),
            ContainerKind::Webm,
            vec![stream(
                "a",
                [200, 30, 30],
                vec![500],
                vec![segment(0, 2_000)],
            )],
        );
        write_sample(&files, &spec);
    }
    let server = FileServer::start(&files).await;
    let intake = setup.config(None, &pg.url(), 0, true);
    let workers = start_workers(&setup, &intake, &["w1", "w2"]);
    let svc = Service::start("serve", &intake);
    let mut ids = Vec::new();
    for i in 0..10 {
        let r = client()
            .post(format!("{}/v1/jobs", svc.base))
            .bearer_auth(API_TOKEN)
            .json(
                &json!({"url": server.url(&format!("scale-{i}.zip")), "key": format!("scale-{i}")}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        ids.push(
            r.json::<Value>().await.unwrap()["job"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let mut done_by = BTreeSet::new();
    for id in &ids {
        let job = wait_final(&svc.base, id, Duration::from_secs(300)).await;
        assert_eq!(
            job["state"],
            "succeeded",
            "{job}\n{}\n{}",
            workers[0].log(),
            workers[1].log()
        );
        assert_eq!(job["attempts"], 1, "done once: {job}");
        done_by.insert(job["worker"].as_str().unwrap().to_owned());
    }
    assert_eq!(done_by.len(), 2, "both workers took jobs: {done_by:?}");
    assert_eq!(
        server.hits.load(Ordering::SeqCst),
        10,
        "each input fetched once"
    );
    let outputs = setup.outputs();
    assert_eq!(outputs.len(), 10, "{outputs:?}");
    assert!(
        outputs
            .iter()
            .all(|o| o.starts_with("api/scale-") && o.ends_with(".mp4")),
        "named by each request's key: {outputs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_signed_callbacks_in_ten_seconds_each_make_one_job() {
    let setup = Setup::new();
    // An intake only: the load is on the HTTP side and the queue.
    let svc = Service::start("serve", &setup.config(None, "sqlite", 0, true));
    let base = svc.base.clone();
    let started = Instant::now();
    let mut sends = Vec::new();
    for i in 0..1000 {
        // 100 a second, evenly.
        let due = started + Duration::from_millis(i * 10);
        tokio::time::sleep_until(due.into()).await;
        let base = base.clone();
        sends.push(tokio::spawn(async move {
            let body = opentok_event(&format!("load-{i}"), "uploaded", None);
            let t = Instant::now();
            let r = post_opentok(&base, &body, OPENTOK_SECRET, now_s(), &format!("load-{i}")).await;
            let status = r.status().as_u16();
            let id = r.json::<Value>().await.unwrap()["job"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            (status, t.elapsed(), id)
        }));
    }
    let mut latencies = Vec::new();
    let mut ids = BTreeSet::new();
    for s in sends {
        let (status, latency, id) = s.await.unwrap();
        assert_eq!(status, 202, "{}", svc.log());
        latencies.push(latency.as_secs_f64() * 1000.0);
        ids.insert(id);
    }
    let total = started.elapsed();
    latencies.sort_by(f64::total_cmp);
    let p = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "1000 callbacks in {:.2} s: intake latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        total.as_secs_f64(),
        p(0.5),
        p(0.99),
        latencies[latencies.len() - 1]
    );
    assert_eq!(ids.len(), 1000, "one job each");
    let metrics = client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("mosaic_jobs{kind=\"process\",state=\"queued\"} 1000"),
        "{metrics}"
    );
}
