//! `mosaic serve` under trouble, with real processes, HTTP and SQLite on loopback: refused
//! calls enqueue and fetch nothing; the same callback 20 times at once makes one job; a
//! `kill -9` mid-compose loses nothing and the job completes once; SIGTERM gives the running
//! job back; notifications are retried with growing delays; bad input and expired URLs fail
//! once, at once.

mod common;
mod harness;

use std::sync::atomic::Ordering;
use std::time::Duration;

use harness::*;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_calls_enqueue_and_fetch_nothing() {
    // Private addresses are not allowed here: the file server is on loopback.
    let scene = Scene::new(Some(("arch-refused", 3)), 0, false).await;
    let (setup, server) = (&scene.setup, &scene.server);
    let svc = scene.serve();
    let body = scene.available("arch-refused");
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
    let scene = Scene::new(Some(("arch-dup", 3)), 0, true).await;
    let (setup, server, receiver) = (&scene.setup, &scene.server, &scene.receiver);
    let svc = scene.serve();
    let body = scene.available("arch-dup");
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
    one_notification(receiver, &ids[0]).await;
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
    let scene = Scene::new(Some(("arch-crash", 20)), 0, true).await;
    let (setup, receiver) = (&scene.setup, &scene.receiver);
    let mut svc = scene.serve();
    let body = scene.available("arch-crash");
    let r = post_opentok(&svc.base, &body, OPENTOK_SECRET, now_s(), "crash").await;
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["job"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_composing(setup, &svc.base, &id, 10.0).await;
    svc.kill(); // SIGKILL
    assert!(setup.outputs().is_empty(), "{:?}", setup.outputs());

    let svc = scene.serve();
    let job = wait_final(&svc.base, &id, LONG).await;
    assert_eq!(job["state"], "succeeded", "{job}\n{}", svc.log());
    assert_eq!(
        job["attempts"], 2,
        "the killed attempt and the one that finished"
    );
    let (_, duration) = probed_output(setup, &job);
    assert!((duration - 20.0).abs() < 0.1);
    assert_eq!(setup.outputs(), vec!["opentok/arch-crash.mp4".to_string()]);
    one_notification(receiver, &id).await;
    let work: Vec<_> = std::fs::read_dir(setup.path("data/work"))
        .unwrap()
        .collect();
    assert!(work.is_empty(), "the killed run's work folder is swept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_retry_with_growing_delays_and_bad_input_fails_once() {
    let scene = Scene::new(None, 3, true).await;
    let (server, receiver) = (&scene.server, &scene.receiver);
    std::fs::write(
        scene.files.join("corrupt.zip"),
        b"PK\x03\x04 this is not an archive",
    )
    .unwrap();
    let svc = scene.serve();
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
    let scene = Scene::new(None, 0, true).await;
    let server = &scene.server;
    let svc = scene.serve();
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
    let scene = Scene::new(Some(("arch-term", 20)), 0, true).await;
    let setup = &scene.setup;
    let mut svc = scene.serve();
    let body = scene.available("arch-term");
    let r = post_opentok(&svc.base, &body, OPENTOK_SECRET, now_s(), "term").await;
    let id = r.json::<Value>().await.unwrap()["job"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_composing(setup, &svc.base, &id, 10.0).await;
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

    let svc = scene.serve();
    let job = wait_final(&svc.base, &id, LONG).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(
        job["attempts"], 1,
        "a job given back is not counted as an attempt"
    );
    assert_eq!(setup.outputs(), vec!["opentok/arch-term.mp4".to_string()]);
}
