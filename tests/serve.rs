//! `mosaic serve` end to end: a real server process on a loopback port with its SQLite
//! queue, a real file server holding generated recordings, a real notification receiver.
//! Each platform's webhook gives a composite in the output store (probed: its duration is
//! the recording's span) and a signed notification; refused calls enqueue and fetch
//! nothing; duplicates make one job; a `kill -9` mid-compose loses nothing; notifications
//! are retried with growing delays; bad input fails once.

mod common;
mod harness;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use harness::*;
use mosaic::sample::ContainerKind;
use serde_json::{Value, json};

const LONG: Duration = Duration::from_secs(120);

/// A 3 s, two-camera OpenTok archive written as `<dir>/<id>.zip`.
fn short_archive(dir: &Path, id: &str, seconds: i64) -> std::path::PathBuf {
    let ms = seconds * 1000;
    let spec = archive(
        id,
        ContainerKind::Webm,
        vec![
            stream("a", [200, 30, 30], vec![1_000], vec![segment(0, ms)]),
            stream("b", [30, 30, 200], vec![1_500], vec![segment(500, ms)]),
        ],
    );
    write_sample(dir, &spec)
}

fn output_path(setup: &Setup, url: &str) -> std::path::PathBuf {
    let out = format!("file://{}/", setup.path("out").display());
    let rel = url
        .strip_prefix(&out)
        .unwrap_or_else(|| panic!("{url} is not under {out}"));
    setup.path("out").join(rel)
}

/// The job's one output: where it is, and its probed duration.
fn probed_output(setup: &Setup, job: &Value) -> (String, f64) {
    let outputs = job["outputs"].as_array().expect("outputs");
    assert_eq!(outputs.len(), 1, "{job}");
    let url = outputs[0]["url"].as_str().unwrap().to_owned();
    let path = output_path(setup, &url);
    assert_eq!(
        outputs[0]["bytes"].as_u64().unwrap(),
        std::fs::metadata(&path).unwrap().len()
    );
    let (codecs, duration) = probe(&path);
    assert_eq!(codecs, vec!["h264".to_string(), "aac".to_string()], "{url}");
    (url, duration)
}

async fn one_notification(receiver: &Receiver, job: &str) -> Value {
    wait_until("the notification", LONG, || {
        receiver.delivered().iter().any(|r| r.body["job"] == job)
    })
    .await;
    let got: Vec<_> = receiver
        .delivered()
        .into_iter()
        .filter(|r| r.body["job"] == job)
        .collect();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].verified,
        "the Standard Webhooks signature must verify"
    );
    got[0].body.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opentok_available_callback_composes_delivers_and_notifies() {
    let setup = Setup::new();
    let files = setup.path("files");
    std::fs::create_dir_all(&files).unwrap();
    short_archive(&files, "arch-available", 3);
    let server = FileServer::start(&files).await;
    let receiver = Receiver::start(0).await;
    let svc = Service::start(
        "serve",
        &setup.config(Some(&receiver.url()), "sqlite", 1, true),
    );

    let body = opentok_event(
        "arch-available",
        "available",
        Some(&server.url("arch-available.zip")),
    );
    let started = std::time::Instant::now();
    let r = post_opentok(&svc.base, &body, OPENTOK_SECRET, now_s(), "jti-1").await;
    let acked = started.elapsed();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["job"]
        .as_str()
        .unwrap()
        .to_owned();
    println!("acknowledged in {acked:?}");

    let job = wait_final(&svc.base, &id, LONG).await;
    assert_eq!(job["state"], "succeeded", "{job}\n{}", svc.log());
    assert_eq!(job["attempts"], 1);
    assert_eq!(job["progress"], 100.0);
    let (url, duration) = probed_output(&setup, &job);
    assert!(url.ends_with("/opentok/arch-available.mp4"), "{url}");
    assert!(
        (duration - 3.0).abs() < 0.1,
        "duration {duration} s, span 3 s"
    );

    let note = one_notification(&receiver, &id).await;
    assert_eq!(note["type"], "job.succeeded");
    assert_eq!(note["source"], "opentok");
    assert_eq!(note["outputs"][0]["url"], url.as_str());
    assert_eq!(note["outputs"][0]["duration_ms"], 3000);
    assert!(note["error"].is_null());

    // The API, the page, the timeline drawing, health and metrics.
    let page = client()
        .get(format!("{}/?token={API_TOKEN}", svc.base))
        .send()
        .await
        .unwrap();
    assert!(
        page.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("mosaic_token=")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("archive arch-available (available)") && html.contains("succeeded"));
    assert!(
        !html.contains("http-equiv=\"refresh\""),
        "nothing runs: no refresh"
    );
    let svg = client()
        .get(format!("{}/v1/jobs/{id}/timeline.svg", svc.base))
        .header("cookie", format!("mosaic_token={API_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    assert!(svg.text().await.unwrap().starts_with("<svg"));
    let unauthorized = client()
        .get(format!("{}/v1/jobs/{id}", svc.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
    let health = client()
        .get(format!("{}/healthz", svc.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let metrics = client()
        .get(format!("{}/metrics", svc.base))
        .send()
        .await
        .unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains("mosaic_jobs{kind=\"process\",state=\"succeeded\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("mosaic_intake_total{source=\"opentok\",result=\"accepted\"} 1"));
    assert_eq!(
        setup.outputs(),
        vec!["opentok/arch-available.mp4".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opentok_uploaded_callback_reads_the_storage() {
    let setup = Setup::new();
    let place = setup.path("storage/123456/arch-uploaded");
    std::fs::create_dir_all(&place).unwrap();
    let zip = short_archive(&place, "arch-uploaded", 3);
    std::fs::rename(zip, place.join("archive.zip")).unwrap();
    let receiver = Receiver::start(0).await;
    let svc = Service::start(
        "serve",
        &setup.config(Some(&receiver.url()), "sqlite", 1, false),
    );

    // "stopped" needs no work: recorded, answered 200.
    let stopped = opentok_event("arch-uploaded", "stopped", None);
    let r = post_opentok(&svc.base, &stopped, OPENTOK_SECRET, now_s(), "jti-s").await;
    assert_eq!(r.status(), 200);
    let body = opentok_event("arch-uploaded", "uploaded", None);
    let r = post_opentok(&svc.base, &body, OPENTOK_SECRET, now_s(), "jti-u").await;
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["job"]
        .as_str()
        .unwrap()
        .to_owned();
    let job = wait_final(&svc.base, &id, LONG).await;
    assert_eq!(job["state"], "succeeded", "{job}\n{}", svc.log());
    let (url, duration) = probed_output(&setup, &job);
    assert!(url.ends_with("/opentok/arch-uploaded.mp4"));
    assert!((duration - 3.0).abs() < 0.1);
    assert_eq!(
        one_notification(&receiver, &id).await["type"],
        "job.succeeded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liveswitch_event_composes_from_urls_and_earlier_events() {
    let setup = Setup::new();
    let rec = setup.path("files");
    mosaic::sample::liveswitch::write_folder(
        &mosaic::sample::liveswitch::demo(),
        &rec,
        &Default::default(),
    )
    .unwrap();
    let server = FileServer::start(&rec).await;
    let receiver = Receiver::start(0).await;
    let svc = Service::start(
        "serve",
        &setup.config(Some(&receiver.url()), "sqlite", 1, true),
    );

    let mut event: Value =
        serde_json::from_slice(&std::fs::read(rec.join("event.json")).unwrap()).unwrap();
    let channel = event["channelRecording"].clone();
    let mut earlier = Vec::new();
    for (i, c) in event["connectionRecordings"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        for (kind, ext) in [("audio", "mka"), ("video", "mkv")] {
            // The event names some files; the others are found by connection id.
            let name = c[format!("{kind}FileName")]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{}-0.{ext}", c["connectionId"].as_str().unwrap()));
            if !rec.join(&name).exists() {
                continue;
            }
            let url = server.url(&name);
            if i == 0 && kind == "video" {
                // This URL arrives only in a per-connection event, before the ready event.
                earlier.push(json!({
                    "type": "connection.recording.video.ready",
                    "channelRecording": channel,
                    "connectionRecording": {"connectionId": c["connectionId"], "videoUrl": url,
                        "applicationId": LIVESWITCH_APP},
                }));
            } else {
                c[format!("{kind}Url")] = json!(url);
            }
        }
    }
    for e in &earlier {
        let r = post_liveswitch(&svc.base, &serde_json::to_vec(e).unwrap()).await;
        assert_eq!(r.status(), 200);
    }
    let r = post_liveswitch(&svc.base, &serde_json::to_vec(&event).unwrap()).await;
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["job"]
        .as_str()
        .unwrap()
        .to_owned();
    let job = wait_final(&svc.base, &id, LONG).await;
    assert_eq!(job["state"], "succeeded", "{job}\n{}", svc.log());
    let (url, duration) = probed_output(&setup, &job);
    assert!(url.contains("/liveswitch/sample-channel-"), "{url}");
    // The demo session lasts 8 s.
    assert!((duration - 8.0).abs() < 0.1, "duration {duration}");
    let note = one_notification(&receiver, &id).await;
    assert_eq!(note["source"], "liveswitch");
    assert_eq!(
        server.hits.load(Ordering::SeqCst),
        7,
        "every file fetched once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enablex_notification_composes_its_files() {
    let setup = Setup::new();
    let files = setup.path("files");
    let spec = archive(
        "enablex",
        ContainerKind::Webm,
        vec![
            stream("p1", [200, 30, 30], vec![1_000], vec![segment(0, 3_000)]),
            stream("p2", [30, 30, 200], vec![1_500], vec![segment(0, 3_000)]),
        ],
    );
    mosaic::sample::enablex::write_folder(&spec, &files, "room-7", "conf-42").unwrap();
    let server = FileServer::start(&files).await;
    let receiver = Receiver::start(0).await;
    let svc = Service::start(
        "serve",
        &setup.config(Some(&receiver.url()), "sqlite", 1, true),
    );
    let mut n: Value =
        serde_json::from_slice(&std::fs::read(files.join("notification.json")).unwrap()).unwrap();
    n["recording"] = json!([server.url("p1.webm"), server.url("p2.webm")]);
    let body = serde_json::to_vec(&n).unwrap();

    let without = client()
        .post(format!("{}/v1/hooks/enablex", svc.base))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(without.status(), 401);
    let r = client()
        .post(format!(
            "{}/v1/hooks/enablex?token={ENABLEX_TOKEN}",
            svc.base
        ))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["job"]
        .as_str()
        .unwrap()
        .to_owned();
    let roomdrop = json!({"type": "roomdrop", "room_id": "room-7", "conf_num": "conf-42"});
    let r = client()
        .post(format!("{}/v1/hooks/enablex", svc.base))
        .header("X-Mosaic-Token", ENABLEX_TOKEN)
        .body(roomdrop.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let job = wait_final(&svc.base, &id, LONG).await;
    assert_eq!(job["state"], "succeeded", "{job}\n{}", svc.log());
    let (url, duration) = probed_output(&setup, &job);
    assert!(url.ends_with("/enablex/room-7-conf-42.mp4"), "{url}");
    assert!((duration - 3.0).abs() < 0.1);
    assert_eq!(one_notification(&receiver, &id).await["source"], "enablex");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_calls_enqueue_and_fetch_nothing() {
    let setup = Setup::new();
    let files = setup.path("files");
    std::fs::create_dir_all(&files).unwrap();
    short_archive(&files, "arch-refused", 3);
    let server = FileServer::start(&files).await;
    // Private addresses are not allowed here: the file server is on loopback.
    let svc = Service::start("serve", &setup.config(None, "sqlite", 1, false));
    let body = opentok_event(
        "arch-refused",
        "available",
        Some(&server.url("arch-refused.zip")),
    );
    let post = |headers: Vec<(&'static str, String)>, body: Vec<u8>| {
        let mut req = client()
            .post(format!("{}/v1/hooks/opentok", svc.base))
            .body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let signed = |body: &[u8], secret: &str, iat: i64, jti: &str| {
        vec![(
            "authorization",
            format!(
                "Bearer {}",
                mosaic::service::verify::opentok_token(body, secret, iat, jti)
            ),
        )]
    };
    let now = now_s();
    assert_eq!(
        post(signed(&body, "wrong-secret", now, "a"), body.clone()).await,
        401,
        "wrong secret"
    );
    let mut tampered = body.clone();
    let at = tampered.len() - 3;
    tampered[at] ^= 1;
    assert_eq!(
        post(signed(&body, OPENTOK_SECRET, now, "b"), tampered).await,
        401,
        "tampered body"
    );
    assert_eq!(
        post(signed(&body, OPENTOK_SECRET, now - 600, "c"), body.clone()).await,
        401,
        "iat 10 min old"
    );
    assert_eq!(post(vec![], body.clone()).await, 401, "missing header");
    let big = vec![b' '; 2 << 20];
    assert_eq!(
        post(signed(&big, OPENTOK_SECRET, now, "d"), big).await,
        413,
        "oversize body"
    );
    let bad = b"{\"id\": ".to_vec();
    assert_eq!(
        post(signed(&bad, OPENTOK_SECRET, now, "e"), bad).await,
        400,
        "malformed JSON"
    );
    assert_eq!(
        post(signed(&body, OPENTOK_SECRET, now, "f"), body.clone()).await,
        400,
        "private URL"
    );
    let stopped = opentok_event("arch-refused", "stopped", None);
    assert_eq!(
        post(signed(&stopped, OPENTOK_SECRET, now, "g"), stopped.clone()).await,
        200
    );
    assert_eq!(
        post(signed(&stopped, OPENTOK_SECRET, now, "g"), stopped).await,
        401,
        "replayed jti"
    );
    // LiveSwitch: a wrong signature; EnableX: a wrong token.
    let ls = json!({"type": "connection.recordings.ready", "channelRecording": {"applicationId": LIVESWITCH_APP}});
    let r = client()
        .post(format!("{}/v1/hooks/liveswitch", svc.base))
        .header(
            "X-ApplicationSignature",
            mosaic::service::verify::liveswitch_signature(b"other", LIVESWITCH_SECRET),
        )
        .body(ls.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client()
        .post(format!("{}/v1/hooks/enablex?token=nope", svc.base))
        .body("{\"type\":\"recording\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    tokio::time::sleep(Duration::from_millis(500)).await;
    let jobs = get_json(&svc.base, "/v1/jobs").await;
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 0, "{jobs}");
    assert_eq!(server.hits.load(Ordering::SeqCst), 0, "nothing fetched");
    assert!(setup.outputs().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_callback_twenty_times_at_once_makes_one_job() {
    let setup = Setup::new();
    let files = setup.path("files");
    std::fs::create_dir_all(&files).unwrap();
    short_archive(&files, "arch-dup", 3);
    let server = FileServer::start(&files).await;
    let receiver = Receiver::start(0).await;
    let svc = Service::start(
        "serve",
        &setup.config(Some(&receiver.url()), "sqlite", 1, true),
    );
    let body = opentok_event("arch-dup", "available", Some(&server.url("arch-dup.zip")));
    let sends = (0..20).map(|i| {
        let (base, body) = (svc.base.clone(), body.clone());
        // Each redelivery carries its own token, as a sender's retries do.
        tokio::spawn(async move {
            post_opentok(&base, &body, OPENTOK_SECRET, now_s(), &format!("dup-{i}")).await
        })
    });
    let mut ids = Vec::new();
    for s in sends {
        let r = s.await.unwrap();
        assert_eq!(r.status(), 202);
        ids.push(
            r.json::<Value>().await.unwrap()["job"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let job = wait_final(&svc.base, &ids[0], LONG).await;
    assert_eq!(job["state"], "succeeded");
    one_notification(&receiver, &ids[0]).await;
    assert_eq!(
        get_json(&svc.base, "/v1/jobs").await["jobs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(setup.outputs(), vec!["opentok/arch-dup.mp4".to_string()]);
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_compose_then_a_restart_completes_the_job_once() {
    let setup = Setup::new();
    let files = setup.path("files");
    std::fs::create_dir_all(&files).unwrap();
    short_archive(&files, "arch-crash", 20);
    let server = FileServer::start(&files).await;
    let receiver = Receiver::start(0).await;
    let config = setup.config(Some(&receiver.url()), "sqlite", 1, true);
    let mut svc = Service::start("serve", &config);
    let body = opentok_event(
        "arch-crash",
        "available",
        Some(&server.url("arch-crash.zip")),
    );
    let r = post_opentok(&svc.base, &body, OPENTOK_SECRET, now_s(), "crash").await;
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["job"]
        .as_str()
        .unwrap()
        .to_owned();
    let start = std::time::Instant::now();
    loop {
        let job = get_json(&svc.base, &format!("/v1/jobs/{id}")).await;
        if job["state"] == "running" && job["progress"].as_f64().unwrap() > 10.0 {
            break;
        }
        assert!(
            job["state"] != "succeeded",
            "finished before the kill: make the archive longer"
        );
        assert!(start.elapsed() < LONG);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    svc.kill(); // SIGKILL
    assert!(setup.outputs().is_empty(), "{:?}", setup.outputs());

    let svc = Service::start("serve", &config);
    let job = wait_final(&svc.base, &id, LONG).await;
    assert_eq!(job["state"], "succeeded", "{job}\n{}", svc.log());
    assert_eq!(
        job["attempts"], 2,
        "the killed attempt and the one that finished"
    );
    let (_, duration) = probed_output(&setup, &job);
    assert!((duration - 20.0).abs() < 0.1);
    assert_eq!(setup.outputs(), vec!["opentok/arch-crash.mp4".to_string()]);
    one_notification(&receiver, &id).await;
    let work: Vec<_> = std::fs::read_dir(setup.path("data/work"))
        .unwrap()
        .collect();
    assert!(work.is_empty(), "the killed run's work folder is swept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_retry_with_growing_delays_and_bad_input_fails_once() {
    let setup = Setup::new();
    let files = setup.path("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(
        files.join("corrupt.zip"),
        b"PK\x03\x04 this is not an archive",
    )
    .unwrap();
    let server = FileServer::start(&files).await;
    let receiver = Receiver::start(3).await;
    let svc = Service::start(
        "serve",
        &setup.config(Some(&receiver.url()), "sqlite", 1, true),
    );
    let r = client()
        .post(format!("{}/v1/jobs", svc.base))
        .bearer_auth(API_TOKEN)
        .json(&json!({"url": server.url("corrupt.zip")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["job"]
        .as_str()
        .unwrap()
        .to_owned();
    let job = wait_final(&svc.base, &id, LONG).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["attempts"], 1, "bad input is not retried");
    assert!(job["last_error"].as_str().unwrap().contains("ZIP"), "{job}");

    wait_until("a delivered notification", LONG, || {
        !receiver.delivered().is_empty()
    })
    .await;
    let got = receiver.got.lock().unwrap().clone();
    assert_eq!(got.len(), 4, "three failures, then success");
    assert!(got.iter().all(|r| r.verified));
    assert_eq!(got[3].body["type"], "job.failed");
    assert!(got[3].body["error"].as_str().unwrap().contains("ZIP"));
    let gaps: Vec<f64> = got
        .windows(2)
        .map(|w| (w[1].at - w[0].at).as_secs_f64())
        .collect();
    println!("notification retry gaps: {gaps:?}");
    assert!(
        gaps[0] >= 0.3 && gaps[1] > gaps[0] && gaps[2] > gaps[1],
        "{gaps:?}"
    );
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_download_url_fails_at_once_with_a_clear_error() {
    let setup = Setup::new();
    let files = setup.path("files");
    std::fs::create_dir_all(&files).unwrap();
    let server = FileServer::start(&files).await;
    let svc = Service::start("serve", &setup.config(None, "sqlite", 1, true));
    let url = format!(
        "http://{}/expired/archive.zip?Expires=1&Signature=x",
        server.addr
    );
    let body = opentok_event("arch-expired", "available", Some(&url));
    let r = post_opentok(&svc.base, &body, OPENTOK_SECRET, now_s(), "exp").await;
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["job"]
        .as_str()
        .unwrap()
        .to_owned();
    let job = wait_final(&svc.base, &id, LONG).await;
    assert_eq!(job["state"], "failed");
    assert_eq!(job["attempts"], 1);
    let err = job["last_error"].as_str().unwrap();
    assert!(err.contains("403") && err.contains("expired"), "{err}");
    assert!(
        !err.contains("Signature"),
        "credentials in the query stay out of errors: {err}"
    );
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_gives_the_running_job_back_and_a_restart_does_it() {
    let setup = Setup::new();
    let files = setup.path("files");
    std::fs::create_dir_all(&files).unwrap();
    short_archive(&files, "arch-term", 20);
    let server = FileServer::start(&files).await;
    let config = setup.config(None, "sqlite", 1, true);
    let mut svc = Service::start("serve", &config);
    let body = opentok_event("arch-term", "available", Some(&server.url("arch-term.zip")));
    let r = post_opentok(&svc.base, &body, OPENTOK_SECRET, now_s(), "term").await;
    let id = r.json::<Value>().await.unwrap()["job"]
        .as_str()
        .unwrap()
        .to_owned();
    let start = std::time::Instant::now();
    loop {
        let job = get_json(&svc.base, &format!("/v1/jobs/{id}")).await;
        if job["state"] == "running" && job["progress"].as_f64().unwrap() > 10.0 {
            break;
        }
        assert!(job["state"] != "succeeded", "finished before the signal");
        assert!(start.elapsed() < LONG);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let signalled = std::time::Instant::now();
    let status = svc.terminate();
    let took = signalled.elapsed();
    assert!(status.success(), "{status:?}\n{}", svc.log());
    assert!(took < Duration::from_secs(3), "stopped in {took:?}");
    assert!(setup.outputs().is_empty());
    let work: Vec<_> = std::fs::read_dir(setup.path("data/work"))
        .unwrap()
        .collect();
    assert!(work.is_empty(), "the work folder is removed");

    let svc = Service::start("serve", &config);
    let job = wait_final(&svc.base, &id, LONG).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(
        job["attempts"], 1,
        "a job given back is not counted as an attempt"
    );
    assert_eq!(setup.outputs(), vec!["opentok/arch-term.mp4".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_job_can_repair_and_compose_with_its_own_options() {
    let setup = Setup::new();
    let files = setup.path("files");
    std::fs::create_dir_all(&files).unwrap();
    short_archive(&files, "arch-direct", 3);
    let server = FileServer::start(&files).await;
    let svc = Service::start("serve", &setup.config(None, "sqlite", 1, true));
    let request = json!({
        "url": server.url("arch-direct.zip"),
        "key": "direct-1",
        "produce": ["compose", "repair"],
        "compose": {"format": "webm", "size": "640x480", "speed": "fast"},
    });
    let post = || {
        client()
            .post(format!("{}/v1/jobs", svc.base))
            .bearer_auth(API_TOKEN)
            .json(&request)
            .send()
    };
    let first: Value = post().await.unwrap().json().await.unwrap();
    let again: Value = post().await.unwrap().json().await.unwrap();
    assert_eq!(first["job"], again["job"], "the same key is the same job");
    assert_eq!(again["duplicate"], true);
    let id = first["job"].as_str().unwrap();
    let job = wait_final(&svc.base, id, LONG).await;
    assert_eq!(job["state"], "succeeded", "{job}\n{}", svc.log());
    let outputs = setup.outputs();
    assert_eq!(outputs.len(), 3, "{outputs:?}");
    assert!(
        outputs.contains(&"opentok/arch-direct.webm".to_string()),
        "{outputs:?}"
    );
    let repaired: Vec<_> = outputs
        .iter()
        .filter(|o| o.starts_with("opentok/arch-direct/"))
        .collect();
    assert_eq!(repaired.len(), 2, "one file per stream: {outputs:?}");
    for o in &repaired {
        let (codecs, duration) = probe(&setup.path("out").join(o));
        assert!(codecs.contains(&"vp8".to_string()) && codecs.contains(&"opus".to_string()));
        assert!(duration > 2.0, "{o}: {duration}");
    }
    let (codecs, duration) = probe(&setup.path("out/opentok/arch-direct.webm"));
    assert_eq!(codecs, vec!["vp8".to_string(), "opus".to_string()]);
    assert!((duration - 3.0).abs() < 0.1);
    let bad = client()
        .post(format!("{}/v1/jobs", svc.base))
        .bearer_auth(API_TOKEN)
        .json(&json!({"url": server.url("x.zip"), "compose": {"layout": "spiral"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}
