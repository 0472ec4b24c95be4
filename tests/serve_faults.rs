//! The queue under faults, with real processes, SQLite and PostgreSQL on loopback: an input
//! that crashes its worker ends dead after `max_attempts` lost workers instead of crashing
//! every worker forever; a notification committed with its job's outcome survives a crash
//! right after the commit; PostgreSQL stopped for 20 s in the middle of a job loses nothing;
//! a worker whose lease is taken stops within a second; an output store that refuses writes
//! fails the job clearly and leaves no partial object; a fanned-out HLS job whose chunk
//! crashes every worker fails and removes the segments and playlist it had published.
//!
//! The crashes come from the test-only switch `TEST_MOSAIC_CRASH` (`src/service/fault.rs`),
//! which exists in debug builds only.

mod common;
mod harness;

use std::time::{Duration, Instant};

use harness::*;
use serde_json::Value;

fn job_id(v: &Value) -> String {
    v["job"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_that_crashes_the_worker_ends_dead_after_max_attempts() {
    let mut scene = Scene::new(Some(("arch-kills", 2)), 0, true).await;
    scene.setup.extra = "max_attempts = 2\n".into();
    scene.config = scene
        .setup
        .config(Some(&scene.receiver.url()), "sqlite", 1, true);
    let crash = [("TEST_MOSAIC_CRASH", "input:arch-kills")];
    let mut svc = Service::start_with("serve", &scene.config, &crash);
    let body = scene.available("arch-kills");
    let r = post_opentok(&svc.base, &body, OPENTOK_SECRET, now_s(), "kills").await;
    assert_eq!(r.status(), 202);
    let id = job_id(&r.json().await.unwrap());
    // Each start takes the job (after the lost worker's lease ran out) and dies on it.
    for restart in 1..=2 {
        let status = svc.wait_exit(LONG);
        assert!(!status.success(), "crash {restart}: {status:?}");
        assert!(svc.log().contains("TEST_MOSAIC_CRASH"), "{}", svc.log());
        svc = Service::start_with("serve", &scene.config, &crash);
    }
    // The third start finds the job's workers lost twice, its attempts used up: dead, and
    // notified, while this process stays up.
    let job = wait_final(&svc.base, &id, LONG).await;
    assert_eq!(job["state"], "dead", "{job}\n{}", svc.log());
    assert_eq!(job["attempts"], 2);
    assert_eq!(job["lost"], 2);
    let error = job["last_error"].as_str().unwrap();
    assert!(error.starts_with("worker lost 2 times"), "{error}");
    let note = one_notification(&scene.receiver, &id).await;
    assert_eq!(note["type"], "job.failed");
    assert!(
        note["error"]
            .as_str()
            .unwrap()
            .contains("worker lost 2 times")
    );
    assert!(
        svc.child.try_wait().unwrap().is_none(),
        "the service runs on"
    );
    assert!(scene.setup.outputs().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_committed_with_the_outcome_survives_a_crash_right_after() {
    let scene = Scene::new(Some(("arch-commit", 2)), 0, true).await;
    let crash = [("TEST_MOSAIC_CRASH", "committed:arch-commit")];
    let mut svc = Service::start_with("serve", &scene.config, &crash);
    let body = scene.available("arch-commit");
    let r = post_opentok(&svc.base, &body, OPENTOK_SECRET, now_s(), "commit").await;
    assert_eq!(r.status(), 202);
    let id = job_id(&r.json().await.unwrap());
    let status = svc.wait_exit(LONG);
    assert!(!status.success());
    assert!(svc.log().contains("aborting at committed"), "{}", svc.log());
    // Killed before the notification could be sent (the crash comes before the notify
    // loop could take it, most of the time) or after: either way it is sent once.
    let svc = scene.serve();
    let job = wait_final(&svc.base, &id, LONG).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(
        job["attempts"], 1,
        "the outcome was committed before the crash"
    );
    let note = one_notification(&scene.receiver, &id).await;
    assert_eq!(note["type"], "job.succeeded");
    assert_eq!(
        scene.setup.outputs(),
        vec!["opentok/arch-commit.mp4".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_for_20_s_mid_job_loses_nothing() {
    let pg = Postgres::start();
    let mut scene = Scene::new(Some(("arch-pg", 20)), 0, true).await;
    scene.config = scene
        .setup
        .config(Some(&scene.receiver.url()), &pg.url(), 1, true);
    std::fs::copy(
        scene.files.join("arch-pg.zip"),
        scene.files.join("arch-late.zip"),
    )
    .unwrap();
    let svc = scene.serve();
    let body = scene.available("arch-pg");
    let r = post_opentok(&svc.base, &body, OPENTOK_SECRET, now_s(), "pg-1").await;
    assert_eq!(r.status(), 202);
    let id = job_id(&r.json().await.unwrap());
    wait_composing(&scene.setup, &svc.base, &id, 10.0).await;

    pg.halt();
    let down = Instant::now();
    // While it is down: the intake answers 503 (and says nothing of the database), health
    // too; a sender's retry with the same token works once it is back.
    let late = scene.available("arch-late");
    let r = post_opentok(&svc.base, &late, OPENTOK_SECRET, now_s(), "pg-late").await;
    let answered = down.elapsed();
    assert_eq!(r.status(), 503);
    let text = r.text().await.unwrap();
    assert!(
        !text.to_lowercase().contains("postgres") && !text.contains("127.0.0.1"),
        "{text}"
    );
    println!("503 while the database is down, answered in {answered:?}");
    assert!(answered < Duration::from_secs(10), "{answered:?}");
    let health = client()
        .get(format!("{}/healthz", svc.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 503);
    tokio::time::sleep(Duration::from_secs(20).saturating_sub(down.elapsed())).await;
    pg.resume();

    let r = post_opentok(&svc.base, &late, OPENTOK_SECRET, now_s(), "pg-late").await;
    assert_eq!(r.status(), 202, "the same token, once the database is back");
    let late_id = job_id(&r.json().await.unwrap());
    for id in [&id, &late_id] {
        let job = wait_final(&svc.base, id, Duration::from_secs(240)).await;
        assert_eq!(job["state"], "succeeded", "{job}\n{}", svc.log());
        let (_, duration) = probed_output(&scene.setup, &job);
        assert!((duration - 20.0).abs() < 0.1);
        one_notification(&scene.receiver, id).await;
    }
    assert_eq!(
        scene.setup.outputs(),
        vec![
            "opentok/arch-late.mp4".to_string(),
            "opentok/arch-pg.mp4".to_string()
        ],
        "each job completed once"
    );
    assert_eq!(scene.receiver.delivered().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_lease_is_taken_stops_within_a_second() {
    let scene = Scene::new(Some(("arch-lease", 20)), 0, true).await;
    let svc = scene.serve();
    let body = scene.available("arch-lease");
    let r = post_opentok(&svc.base, &body, OPENTOK_SECRET, now_s(), "lease").await;
    let id = job_id(&r.json().await.unwrap());
    wait_composing(&scene.setup, &svc.base, &id, 10.0).await;
    // Another claim takes the lease (as a worker that saw it run out would).
    let db = format!("sqlite://{}", scene.setup.path("data/queue.db").display());
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db).await.unwrap();
    sqlx::query("UPDATE jobs SET lease_owner = 'thief' WHERE id = $1")
        .bind(&id)
        .execute(&pool)
        .await
        .unwrap();
    let taken = Instant::now();
    wait_until("the worker to stop", LONG, || {
        svc.log().contains("stopped: the lease is lost")
    })
    .await;
    let stopped = taken.elapsed();
    // The next heartbeat (every lease/3 = 1 s) finds it; the work stops within a second of
    // that, by the log's own clock.
    let log = svc.log();
    let at = |what: &str| {
        let line = log
            .lines()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("{what}: {log}"));
        let stamp = line.split_whitespace().next().unwrap();
        chrono::DateTime::parse_from_rfc3339(stamp).unwrap_or_else(|e| panic!("{stamp}: {e}"))
    };
    let refused = at("lease lost: the queue refused the heartbeat");
    let wound_down = at("stopped: the lease is lost");
    let took = (wound_down - refused).num_milliseconds();
    println!("lease taken: stopped {stopped:?} after, {took} ms after the refused heartbeat");
    assert!(took < 1000, "{took} ms\n{log}");
    assert!(stopped < Duration::from_secs(3), "{stopped:?}");
    assert!(scene.setup.outputs().is_empty(), "nothing delivered");
    // The thief never renews: its lease runs out and the job is done once, by a new claim.
    let job = wait_final(&svc.base, &id, LONG).await;
    assert_eq!(job["state"], "succeeded", "{job}\n{}", svc.log());
    assert_eq!(job["lost"], 1, "{job}");
    assert_eq!(
        scene.setup.outputs(),
        vec!["opentok/arch-lease.mp4".to_string()]
    );
}

/// Makes `dir` refuse writes: read-only, and for root (whom permissions do not stop)
/// immutable. Gives how, or `None` when neither holds here.
fn refuse_writes(dir: &std::path::Path) -> Option<&'static str> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let probe = dir.join("probe");
    if std::fs::write(&probe, b"x").is_err() {
        return Some("read-only");
    }
    std::fs::remove_file(&probe).unwrap();
    let immutable = std::process::Command::new("chattr")
        .arg("+i")
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    if immutable && std::fs::write(&probe, b"x").is_err() {
        return Some("immutable");
    }
    None
}

fn allow_writes(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::process::Command::new("chattr")
        .arg("-i")
        .arg(dir)
        .status();
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_store_that_refuses_writes_fails_clearly_and_leaves_nothing() {
    let mut scene = Scene::new(Some(("arch-ro", 2)), 0, true).await;
    scene.setup.extra = "max_attempts = 3\n".into();
    scene.config = scene
        .setup
        .config(Some(&scene.receiver.url()), "sqlite", 1, true);
    let out = scene.setup.path("out");
    let how = refuse_writes(&out);
    let how = how.expect("neither a read-only nor an immutable folder refuses writes here");
    println!("the output folder is {how}");
    let svc = scene.serve();
    let body = scene.available("arch-ro");
    let r = post_opentok(&svc.base, &body, OPENTOK_SECRET, now_s(), "ro").await;
    let id = job_id(&r.json().await.unwrap());
    let job = wait_final(&svc.base, &id, LONG).await;
    allow_writes(&out);
    assert_eq!(job["state"], "dead", "{job}\n{}", svc.log());
    assert_eq!(job["attempts"], 3, "retried: {job}");
    let error = job["last_error"].as_str().unwrap();
    assert!(
        error.contains("the output store refused opentok/arch-ro.mp4"),
        "{error}"
    );
    assert_eq!(
        tree(&out),
        Vec::<std::path::PathBuf>::new(),
        "no partial object"
    );
    let note = one_notification(&scene.receiver, &id).await;
    assert_eq!(note["type"], "job.failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hls_job_whose_chunk_crashes_every_worker_fails_and_leaves_nothing() {
    let mut scene = Scene::new(Some(("arch-hls-kills", 9)), 0, true).await;
    scene.setup.extra = "max_attempts = 2\n".into();
    scene.config = scene
        .setup
        .config(Some(&scene.receiver.url()), "sqlite", 1, true);
    // The first two chunks publish their segments and the playlist; the last one kills the
    // worker each time it starts.
    let crash = [("TEST_MOSAIC_CRASH", "input:(chunk 3 of 3)")];
    let mut svc = Service::start_with("serve", &scene.config, &crash);
    let request = serde_json::json!({
        "url": scene.server.url("arch-hls-kills.zip"),
        "key": "hls-kills",
        "compose": {"format": "hls", "size": "640x480", "speed": "fast", "chunk_secs": 3},
    });
    let id = job_id(&post_job(&svc.base, &request).await);
    let playlist = scene.setup.path("out/api/hls-kills/index.m3u8");
    for restart in 1..=2 {
        let status = svc.wait_exit(LONG);
        assert!(!status.success(), "crash {restart}: {status:?}");
        if restart == 1 {
            let text = std::fs::read_to_string(&playlist).unwrap();
            assert!(text.contains("index-0001-1-00000.ts"), "{text}");
        }
        svc = Service::start_with("serve", &scene.config, &crash);
    }
    // The chunk ends dead; the job fails with its error, and what it had published is gone.
    let job = wait_final(&svc.base, &id, LONG).await;
    assert_eq!(job["state"], "failed", "{job}\n{}", svc.log());
    let error = job["last_error"].as_str().unwrap();
    assert!(
        error.starts_with("chunk 2 ended dead: worker lost 2 times"),
        "{error}"
    );
    let note = one_notification(&scene.receiver, &id).await;
    assert_eq!(note["type"], "job.failed");
    assert_eq!(scene.setup.outputs(), Vec::<String>::new());
}
