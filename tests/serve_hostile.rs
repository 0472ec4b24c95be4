//! `mosaic serve` against hostile and careless callers, with real processes, HTTP and SQLite
//! on loopback: identifiers from a webhook never become paths; the webhook, not the bytes
//! downloaded, decides what a job is and where it writes; nothing is overwritten; one
//! LiveSwitch application cannot claim or feed another's job; placeholder, short and empty
//! secrets are refused at start; a pre-signed URL's query appears nowhere; slow clients do
//! not hold the intake.

mod common;
mod harness;

use std::io::{Read, Write};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use harness::*;
use mosaic::sample::ContainerKind;
use serde_json::{Value, json};

/// Adds a LiveSwitch application and its secret to a configuration file.
fn add_liveswitch_app(config: &std::path::Path, app: &str, secret: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    let text = text.replace(
        "[liveswitch.secrets]\n",
        &format!("[liveswitch.secrets]\n{app:?} = {secret:?}\n"),
    );
    std::fs::write(config, text).unwrap();
}

fn job_id(v: &Value) -> String {
    v["job"].as_str().unwrap().to_owned()
}

const HOSTILE_APP: &str = "../../app";
const HOSTILE_APP_SECRET: &str = "hostile-application-secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_ids_in_a_webhook_write_only_plain_names_under_the_output_store() {
    let mut setup = Setup::new();
    setup.extra = "produce = [\"compose\", \"repair\"]\n".into();
    let (rec, server) = liveswitch_demo_served(&setup).await;
    let receiver = Receiver::start(0).await;
    let config = setup.config(Some(&receiver.url()), "sqlite", 1, true);
    add_liveswitch_app(&config, HOSTILE_APP, HOSTILE_APP_SECRET);
    let svc = Service::start("serve", &config);

    // Every identifier hostile: application, channel, recording, connections, clients.
    let mut event = liveswitch_event(&rec, &server);
    event["channelRecording"]["applicationId"] = HOSTILE_APP.into();
    event["channelRecording"]["id"] = "../../rec".into();
    event["channelRecording"]["channelId"] = "/abs/ch".into();
    let clients = ["../../x", "/abs/x", ".."];
    for (i, c) in event["connectionRecordings"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        let client = c["clientId"].as_str().unwrap().to_owned();
        let k = ["client-alice", "client-bob", "client-carol"]
            .iter()
            .position(|n| *n == client)
            .unwrap();
        c["applicationId"] = HOSTILE_APP.into();
        c["channelId"] = "/abs/ch".into();
        c["clientId"] = clients[k].into();
        c["connectionId"] = format!("../conn/{i}").into();
        let c = c.as_object_mut().unwrap();
        c.remove("audioFileName");
        c.remove("videoFileName");
    }
    let body = serde_json::to_vec(&event).unwrap();
    let r = post_liveswitch_as(&svc.base, &body, HOSTILE_APP_SECRET).await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let id = job_id(&r.json().await.unwrap());
    let job = wait_final(&svc.base, &id, LONG).await;
    assert_eq!(job["state"], "succeeded", "{job}\n{}", svc.log());

    let outputs = setup.outputs();
    println!("{outputs:#?}");
    // A composite and one repaired file per participant (three clients).
    assert_eq!(outputs.len(), 4, "{outputs:?}");
    for o in &outputs {
        let parts: Vec<&str> = o.split('/').collect();
        assert_eq!(parts[0], "liveswitch", "{o}");
        assert!(
            parts[1].starts_with("app-h"),
            "the application through the gate: {o}"
        );
        assert!(
            parts[2].starts_with("rec-h"),
            "the recording through the gate: {o}"
        );
        assert!(parts.iter().all(|p| is_plain(p)), "{o}");
    }
    // The whole folder of the service: nothing outside its own parts.
    let tops = ["data", "out", "files", "storage", "mosaic.toml"];
    for (top, under) in paths_under(setup.dir.path(), &tops) {
        if top == "out" {
            if under.first().map(String::as_str) == Some(".mosaic-staging") {
                let staged = under.iter().fold(setup.path("out"), |p, c| p.join(c));
                assert!(staged.is_dir(), "a staging file left behind: {under:?}");
                continue;
            }
            assert!(under.iter().all(|p| is_plain(p)), "out/{under:?}");
        }
    }
    assert_eq!(
        one_notification(&receiver, &id).await["type"],
        "job.succeeded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enablex_notification_with_opentok_fields_is_processed_as_enablex() {
    let setup = Setup::new();
    let files = setup.path("files");
    enablex_recording(&files, 2_000);
    let server = FileServer::start(&files).await;
    let svc = Service::start("serve", &setup.config(None, "sqlite", 1, true));
    let mut n: Value =
        serde_json::from_slice(&std::fs::read(files.join("notification.json")).unwrap()).unwrap();
    n["recording"] = json!([server.url("p1.webm"), server.url("p2.webm")]);
    // What an OpenTok manifest holds: read by content, the job would be an OpenTok archive
    // named "victim" (written to opentok/victim.mp4).
    n["id"] = "victim".into();
    n["createdAt"] = 1_600_000_000_000i64.into();
    n["files"] = json!([{"streamId": "../../evil", "filename": "p1.webm",
        "startTimeOffset": 0, "stopTimeOffset": 2000}]);
    let r = post_enablex(&svc.base, &serde_json::to_vec(&n).unwrap()).await;
    assert_eq!(r.status(), 202);
    let id = job_id(&r.json().await.unwrap());
    let job = wait_final(&svc.base, &id, LONG).await;
    assert_eq!(job["state"], "succeeded", "{job}\n{}", svc.log());
    assert_eq!(
        setup.outputs(),
        vec!["enablex/room-7-conf-42.mp4".to_string()],
        "an EnableX output, named by the verified notification"
    );
    let (_, duration) = probed_output(&setup, &job);
    assert!((duration - 2.0).abs() < 0.1, "{duration}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_already_in_the_output_store_is_never_overwritten() {
    let scene = Scene::new(Some(("arch-keep", 2)), 0, true).await;
    let setup = &scene.setup;
    let mine = setup.path("out/opentok/arch-keep.mp4");
    std::fs::create_dir_all(mine.parent().unwrap()).unwrap();
    std::fs::write(&mine, b"someone else's file").unwrap();
    let svc = scene.serve();
    let body = scene.available("arch-keep");
    let r = post_opentok(&svc.base, &body, OPENTOK_SECRET, now_s(), "keep-1").await;
    assert_eq!(r.status(), 202);
    let id = job_id(&r.json().await.unwrap());
    let job = wait_final(&svc.base, &id, LONG).await;
    assert_eq!(job["state"], "succeeded", "{job}\n{}", svc.log());
    assert_eq!(std::fs::read(&mine).unwrap(), b"someone else's file");
    let beside = format!("opentok/arch-keep-{id}.mp4");
    assert_eq!(
        setup.outputs(),
        vec![beside.clone(), "opentok/arch-keep.mp4".to_string()]
    );
    let (url, duration) = probed_output(setup, &job);
    assert!(url.ends_with(&beside), "{url}");
    assert!((duration - 2.0).abs() < 0.1);
    assert!(
        svc.log().contains("the output name is taken"),
        "{}",
        svc.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_application_cannot_claim_or_feed_another_applications_job() {
    let setup = Setup::new();
    let (rec, server) = liveswitch_demo_served(&setup).await;
    let evil_dir = setup.path("evil");
    std::fs::create_dir_all(&evil_dir).unwrap();
    std::fs::write(evil_dir.join("planted.mkv"), b"not a recording").unwrap();
    let evil = FileServer::start(&evil_dir).await;
    let config = setup.config(None, "sqlite", 1, true);
    add_liveswitch_app(&config, "app-a", "secret-of-application-a");
    let svc = Service::start("serve", &config);

    // B's (the configured sample application's) recording, its first video URL still to
    // come in a per-connection event.
    let mut b_event = liveswitch_event(&rec, &server);
    let whole = b_event.clone();
    let recording = b_event["channelRecording"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = b_event["connectionRecordings"][0].clone();
    let connection = first["connectionId"].as_str().unwrap().to_owned();
    let b_video = first["videoUrl"].as_str().unwrap().to_owned();
    b_event["connectionRecordings"][0]
        .as_object_mut()
        .unwrap()
        .remove("videoUrl");

    // A, with a secret of its own, sends the same recording id first: a ready event with all
    // its URLs (its own job, under its own key) and a per-connection event giving B's
    // connection a planted URL.
    let mut a_event = whole;
    a_event["channelRecording"]["applicationId"] = "app-a".into();
    for c in a_event["connectionRecordings"].as_array_mut().unwrap() {
        c["applicationId"] = "app-a".into();
    }
    let a_secret = "secret-of-application-a";
    let r = post_liveswitch_as(&svc.base, &serde_json::to_vec(&a_event).unwrap(), a_secret).await;
    assert_eq!(r.status(), 202);
    let a_job = job_id(&r.json().await.unwrap());
    let planted = json!({
        "type": "connection.recording.video.ready",
        "channelRecording": a_event["channelRecording"],
        "connectionRecording": {"applicationId": "app-a", "connectionId": connection,
            "channelRecordingId": recording, "videoUrl": evil.url("planted.mkv")},
    });
    let r = post_liveswitch_as(&svc.base, &serde_json::to_vec(&planted).unwrap(), a_secret).await;
    assert_eq!(r.status(), 200);

    let r = post_liveswitch(&svc.base, &serde_json::to_vec(&b_event).unwrap()).await;
    assert_eq!(r.status(), 202);
    let b: Value = r.json().await.unwrap();
    assert_eq!(
        b["duplicate"], false,
        "A's job did not pre-claim B's key: {b}"
    );
    let b_job = job_id(&b);
    assert_ne!(a_job, b_job);
    let a_row = get_json(&svc.base, &format!("/v1/jobs/{a_job}")).await;
    let b_row = get_json(&svc.base, &format!("/v1/jobs/{b_job}")).await;
    assert_eq!(a_row["key"], format!("liveswitch:app-a:{recording}"));
    assert_eq!(
        b_row["key"],
        format!("liveswitch:{LIVESWITCH_APP}:{recording}")
    );

    // B's job waits for its own URL (A's planted one is not B's), then gets it from B.
    let started = Instant::now();
    loop {
        let waiting = get_json(&svc.base, &format!("/v1/jobs/{b_job}")).await;
        if waiting["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("no video URL yet")
        {
            break;
        }
        assert!(
            waiting["state"] == "queued" || waiting["state"] == "running",
            "{waiting}"
        );
        assert!(started.elapsed() < LONG, "{waiting}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let own = json!({
        "type": "connection.recording.video.ready",
        "channelRecording": b_event["channelRecording"],
        "connectionRecording": {"applicationId": LIVESWITCH_APP, "connectionId": connection,
            "channelRecordingId": recording, "videoUrl": b_video},
    });
    let r = post_liveswitch(&svc.base, &serde_json::to_vec(&own).unwrap()).await;
    assert_eq!(r.status(), 200);
    let job = wait_final(&svc.base, &b_job, LONG).await;
    assert_eq!(job["state"], "succeeded", "{job}\n{}", svc.log());
    let (url, duration) = probed_output(&setup, &job);
    assert!(
        url.contains(&format!("/liveswitch/{LIVESWITCH_APP}/")),
        "{url}"
    );
    assert!((duration - 8.0).abs() < 0.1);
    assert_eq!(
        evil.hits.load(Ordering::SeqCst),
        0,
        "A's planted URL never fetched"
    );
}

/// An edit of a configuration file's text.
type Edit = fn(String) -> String;

/// Environment variables set for a run.
type Env = &'static [(&'static str, &'static str)];

/// Runs `mosaic serve` with a configuration that must be refused; gives its stderr.
fn refused(setup: &Setup, edit: impl Fn(String) -> String, env: &[(&str, &str)]) -> String {
    let config = setup.config(None, "sqlite", 1, true);
    let text = edit(std::fs::read_to_string(&config).unwrap());
    std::fs::write(&config, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mosaic"))
        .args(["serve", "--config"])
        .arg(&config)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "must not start: {stderr}");
    stderr
}

#[test]
fn empty_short_and_placeholder_secrets_are_refused_at_start_naming_the_key() {
    let setup = Setup::new();
    let same: Edit = |t| t;
    let cases: [(Edit, Env, &str); 7] = [
        (|t| t.replace(API_TOKEN, ""), &[], "api_token: is empty"),
        (same, &[("MOSAIC_API_TOKEN", "")], "api_token: is empty"),
        (
            |t| t.replace(API_TOKEN, "short"),
            &[],
            "api_token: is 5 bytes long",
        ),
        (
            |t| t.replace(OPENTOK_SECRET, "project-signature-secret"),
            &[],
            "opentok.secret: is the documented example",
        ),
        (
            |t| t.replace(ENABLEX_TOKEN, "a-long-random-token"),
            &[],
            "enablex.token: is the documented example",
        ),
        (
            |t| t.replace(LIVESWITCH_SECRET, "tiny"),
            &[],
            "liveswitch.secrets.\"mosaic-sample-app\": is 4 bytes long",
        ),
        (
            same,
            &[
                (
                    "MOSAIC_NOTIFY_0_SECRET",
                    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                ),
                ("MOSAIC_NOTIFY_0_URL", "http://127.0.0.1:9/hook"),
            ],
            "notify[0].secret: is the documented example",
        ),
    ];
    for (edit, env, want) in cases {
        let stderr = refused(&setup, edit, env);
        assert!(stderr.contains(want), "{want}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_presigned_urls_query_and_credentials_appear_nowhere_after_a_failed_download() {
    let mut scene = Scene::new(None, 0, true).await;
    scene.setup.extra = "max_attempts = 2\n".into();
    scene.config = scene
        .setup
        .config(Some(&scene.receiver.url()), "sqlite", 1, true);
    let svc = scene.serve();
    // A port nothing listens on: the connection is refused (reqwest's error names the URL).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused_url = format!(
        "http://someone:hunter2pass@127.0.0.1:{closed}/a.zip?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=SECRETSIG123"
    );
    let r = client()
        .post(format!("{}/v1/jobs", svc.base))
        .bearer_auth(API_TOKEN)
        .json(&json!({"url": refused_url}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let first = job_id(&r.json().await.unwrap());
    // An expired pre-signed URL (403).
    let expired = format!(
        "http://{}/expired/archive.zip?Expires=1&Signature=SECRETSIG456",
        scene.server.addr
    );
    let body = opentok_event("arch-secret", "available", Some(&expired));
    let r = post_opentok(&svc.base, &body, OPENTOK_SECRET, now_s(), "leak").await;
    assert_eq!(r.status(), 202);
    let second = job_id(&r.json().await.unwrap());
    for id in [&first, &second] {
        let job = wait_final(&svc.base, id, LONG).await;
        assert!(job["state"] == "dead" || job["state"] == "failed", "{job}");
    }
    wait_until("both notifications", LONG, || {
        scene.receiver.delivered().len() >= 2
    })
    .await;

    let jobs = get_text(&svc.base, "/v1/jobs").await;
    let one = get_text(&svc.base, &format!("/v1/jobs/{first}")).await;
    let page = get_text(&svc.base, "/").await;
    let notes: String = scene
        .receiver
        .delivered()
        .iter()
        .map(|r| r.body.to_string())
        .collect();
    assert!(jobs.contains("refused") || jobs.contains("error"), "{jobs}");
    for (what, text) in [
        ("the log", svc.log()),
        ("GET /v1/jobs", jobs),
        ("GET /v1/jobs/{id}", one),
        ("the page", page),
        ("the notifications", notes),
    ] {
        for secret in ["SECRETSIG", "AKIAEXAMPLE", "hunter2pass", "Signature="] {
            assert!(!text.contains(secret), "{secret} in {what}:\n{text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_do_not_hold_the_intake_and_idle_connections_are_closed() {
    let mut setup = Setup::new();
    setup.extra = "[http]\nheader_timeout_secs = 3\nmax_connections = 1024\n".into();
    let config = setup.config(None, "sqlite", 0, true);
    let svc = Service::start("serve", &config);
    let addr = svc.base.trim_start_matches("http://").to_owned();

    // 500 connections trickling a request's headers, a byte a second, and one idle.
    let mut slow = Vec::new();
    for _ in 0..500 {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.write_all(b"P").unwrap();
        slow.push(s);
    }
    let idle = std::net::TcpStream::connect(&addr).unwrap();
    let opened = Instant::now();
    let trickle = std::thread::spawn(move || {
        let header = b"OST /v1/hooks/opentok HTTP/1.1\r\nHost: x\r\nX-Slow: ";
        let mut closed = vec![None; slow.len()];
        for (i, &byte) in header
            .iter()
            .chain(b"aaaaaaaaaaaaaaaaaaaa".iter())
            .enumerate()
        {
            std::thread::sleep(Duration::from_secs(1));
            for (k, s) in slow.iter_mut().enumerate() {
                if closed[k].is_none() && s.write_all(&[byte]).is_err() {
                    closed[k] = Some(i + 1);
                }
            }
            if closed.iter().all(Option::is_some) {
                break;
            }
        }
        (closed, opened.elapsed())
    });

    tokio::time::sleep(Duration::from_millis(500)).await;
    let body = opentok_event("arch-slow", "stopped", None);
    let sent = Instant::now();
    let r = post_opentok(&svc.base, &body, OPENTOK_SECRET, now_s(), "slow-1").await;
    let took = sent.elapsed();
    assert_eq!(r.status(), 200);
    println!("a signed webhook with 500 slow connections open: answered in {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");

    // The idle connection is closed by the server within the header timeout (3 s).
    let idle_closed = tokio::task::spawn_blocking(move || {
        let mut idle = idle;
        idle.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        let mut buf = [0u8; 64];
        let n = idle.read(&mut buf);
        (n.map_err(|e| e.kind()), opened.elapsed())
    })
    .await
    .unwrap();
    println!("idle connection: {idle_closed:?}");
    assert!(
        matches!(
            idle_closed.0,
            Ok(0) | Err(std::io::ErrorKind::ConnectionReset)
        ),
        "{idle_closed:?}"
    );
    assert!(idle_closed.1 < Duration::from_secs(5), "{idle_closed:?}");
    // Each slow connection was cut: writing to it failed within a few seconds of the
    // header timeout (the kernel lets a write or two through after the close).
    let (closed, _) = tokio::task::spawn_blocking(move || trickle.join().unwrap())
        .await
        .unwrap();
    let latest = closed
        .iter()
        .map(|c| c.unwrap_or(usize::MAX))
        .max()
        .unwrap();
    println!("slow connections cut after at most {latest} s of trickling");
    assert!(latest <= 8, "{closed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_are_bounded_in_total_and_each_source_reads_only_its_stores() {
    let mut setup = Setup::new();
    let files = setup.path("files");
    let spec = archive(
        "enablex",
        ContainerKind::Webm,
        vec![
            stream("p1", [200, 30, 30], vec![500], vec![segment(0, 1_500)]),
            stream("p2", [30, 30, 200], vec![700], vec![segment(0, 1_500)]),
        ],
    );
    mosaic::sample::enablex::write_folder(&spec, &files, "room-cap", "conf-1").unwrap();
    let size = |n: &str| std::fs::metadata(files.join(n)).unwrap().len();
    // Each file fits the per-file limit; the two together do not fit the job's total.
    let cap = size("p1.webm") + size("p2.webm") / 2;
    setup.extra = format!("[fetch]\nmax_total_bytes = {cap}\n");
    let server = FileServer::start(&files).await;
    let svc = Service::start("serve", &setup.config(None, "sqlite", 1, true));
    let mut n: Value =
        serde_json::from_slice(&std::fs::read(files.join("notification.json")).unwrap()).unwrap();
    n["recording"] = json!([server.url("p1.webm"), server.url("p2.webm")]);
    let r = post_enablex(&svc.base, &serde_json::to_vec(&n).unwrap()).await;
    assert_eq!(r.status(), 202);
    let job = wait_final(&svc.base, &job_id(&r.json().await.unwrap()), LONG).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert!(
        job["last_error"]
            .as_str()
            .unwrap()
            .contains("job's total download limit"),
        "{job}"
    );
    assert!(setup.outputs().is_empty());

    // opentok.storage is OpenTok's: a direct job may not name it (no input_stores here).
    let inside = format!(
        "file://{}/123456/arch/archive.zip",
        setup.path("storage").display()
    );
    let r = client()
        .post(format!("{}/v1/jobs", svc.base))
        .bearer_auth(API_TOKEN)
        .json(&json!({ "url": inside }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let why = r.text().await.unwrap();
    assert!(
        why.contains("under a store configured for this source"),
        "{why}"
    );
}
