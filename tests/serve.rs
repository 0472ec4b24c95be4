//! `mosaic serve` end to end, one test per platform: a real server process on a loopback
//! port with its SQLite queue, a real file server holding generated recordings, a real
//! notification receiver. Each platform's webhook gives a composite in the output store
//! (probed: its duration is the recording's span) and a signed notification; a direct job
//! repairs and composes with its own options. (Refusals, duplicates, crashes and retries:
//! `tests/serve_resilience.rs`.)

mod common;
mod harness;

use std::sync::atomic::Ordering;

use common::*;
use harness::*;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opentok_available_callback_composes_delivers_and_notifies() {
    let scene = Scene::new(Some(("arch-available", 3)), 0, true).await;
    let (setup, receiver) = (&scene.setup, &scene.receiver);
    let svc = scene.serve();

    let body = scene.available("arch-available");
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
    let (url, duration) = probed_output(setup, &job);
    assert!(url.ends_with("/opentok/arch-available.mp4"), "{url}");
    assert!(
        (duration - 3.0).abs() < 0.1,
        "duration {duration} s, span 3 s"
    );

    let note = one_notification(receiver, &id).await;
    assert_eq!(note["type"], "job.succeeded");
    assert_eq!(note["source"], "opentok");
    assert_eq!(note["outputs"][0]["url"], url.as_str());
    assert_eq!(note["outputs"][0]["duration_ms"], 3000);
    assert!(note["error"].is_null());

    // The API, the page, the timeline drawing, health and metrics. The page opened with the
    // token gives a session cookie (never the token itself) and sends the browser on to the
    // page without the token in its address; `Secure` when behind TLS.
    mosaic::service::install_tls_provider();
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let opened = no_redirects
        .get(format!("{}/?token={API_TOKEN}", svc.base))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 303);
    assert_eq!(opened.headers()["location"], "/");
    let cookie = opened.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with("mosaic_session=") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    assert!(
        !cookie.contains(API_TOKEN) && !cookie.contains("Secure"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_owned();
    let behind_tls = no_redirects
        .get(format!("{}/?token={API_TOKEN}", svc.base))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert!(
        behind_tls.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("; Secure")
    );
    let forged = client()
        .get(format!("{}/", svc.base))
        .header(
            "cookie",
            format!("mosaic_session=1{}", &session["mosaic_session=".len()..]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        forged.status(),
        401,
        "a session value not made by the service"
    );
    let page = client()
        .get(format!("{}/", svc.base))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("archive arch-available (available)") && html.contains("succeeded"));
    assert!(
        !html.contains("http-equiv=\"refresh\""),
        "nothing runs: no refresh"
    );
    let svg = client()
        .get(format!("{}/v1/jobs/{id}/timeline.svg", svc.base))
        .header("cookie", &session)
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
    let (rec, server) = liveswitch_demo_served(&setup).await;
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
    assert!(
        url.contains(&format!("/liveswitch/{LIVESWITCH_APP}/")),
        "the application's own folder: {url}"
    );
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
    enablex_recording(&files, 3_000);
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
    let r = post_enablex(&svc.base, &body).await;
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
async fn a_direct_job_can_repair_and_compose_with_its_own_options() {
    let scene = Scene::new(Some(("arch-direct", 3)), 0, true).await;
    let (setup, server) = (&scene.setup, &scene.server);
    let svc = scene.serve();
    let request = json!({
        "url": server.url("arch-direct.zip"),
        "key": "direct-1",
        "produce": ["compose", "repair"],
        "compose": {"format": "webm", "size": "640x480", "speed": "fast"},
    });
    let first = post_job(&svc.base, &request).await;
    let again = post_job(&svc.base, &request).await;
    assert_eq!(first["job"], again["job"], "the same key is the same job");
    assert_eq!(again["duplicate"], true);
    let id = first["job"].as_str().unwrap();
    let job = wait_final(&svc.base, id, LONG).await;
    assert_eq!(job["state"], "succeeded", "{job}\n{}", svc.log());
    let outputs = setup.outputs();
    assert_eq!(outputs.len(), 3, "{outputs:?}");
    // Named by the request's key (through the gate), not by the downloaded archive's id.
    assert!(
        outputs.contains(&"api/direct-1.webm".to_string()),
        "{outputs:?}"
    );
    let repaired: Vec<_> = outputs
        .iter()
        .filter(|o| o.starts_with("api/direct-1/"))
        .collect();
    assert_eq!(repaired.len(), 2, "one file per stream: {outputs:?}");
    for o in &repaired {
        let (codecs, duration) = probe(&setup.path("out").join(o));
        assert!(codecs.contains(&"vp8".to_string()) && codecs.contains(&"opus".to_string()));
        assert!(duration > 2.0, "{o}: {duration}");
    }
    let (codecs, duration) = probe(&setup.path("out/api/direct-1.webm"));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_can_compose_hls_in_chunks() {
    hls_job("hls-1", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_can_compose_hls_in_one_pass() {
    hls_job("hls-2", false).await;
}

/// An HLS job of a 9 s archive, fanned out into 3 s chunk jobs or composed in one pass:
/// while it runs, the store holds an event playlist that lists its first segment and not
/// its last; done, the playlist and its segments under the job's output name, 9 s long.
async fn hls_job(key: &str, chunked: bool) {
    let scene = Scene::new(Some(("arch-hls", 9)), 0, true).await;
    let (setup, server) = (&scene.setup, &scene.server);
    let mut compose = json!({"format": "hls", "size": "640x480", "speed": "fast"});
    let svc = if chunked {
        compose["chunk_secs"] = json!(3);
        scene.serve()
    } else {
        // The job holds still after each segment it delivers (a debug build's test switch).
        let pause = [("TEST_MOSAIC_PAUSE", "segment:arch-hls.zip attempt 1")];
        Service::start_with("serve", &scene.config, &pause)
    };
    let request = json!({"url": server.url("arch-hls.zip"), "key": key, "compose": compose});
    let posted = post_job(&svc.base, &request).await;
    let id = posted["job"].as_str().unwrap();
    let playlist = setup.path(&format!("out/api/{key}/index.m3u8"));
    let started = std::time::Instant::now();
    let (early, job) = loop {
        let text = std::fs::read_to_string(&playlist).unwrap_or_default();
        if text.contains(".ts\n") {
            break (text, get_json(&svc.base, &format!("/v1/jobs/{id}")).await);
        }
        assert!(started.elapsed() < LONG, "no segment listed\n{}", svc.log());
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert!(
        early.contains("#EXT-X-PLAYLIST-TYPE:EVENT") && !early.contains("ENDLIST"),
        "{early:?}\n{}",
        svc.log()
    );
    if chunked {
        // Fanned out: the first chunk's segments are listed while a later one is not done.
        let chunks = job["chunks"].as_array().cloned().unwrap_or_default();
        assert_eq!(chunks.len(), 3, "{job}");
        assert_ne!(chunks[2]["state"], "succeeded", "{job}");
        assert!(
            early.contains("index-0000-1-00000.ts") && !early.contains("index-0002-"),
            "{early}"
        );
    } else {
        assert_eq!(job["state"], "running", "{job}");
        assert!(job["chunks"].is_null(), "{job}");
        assert!(
            early.contains("index-00000.ts") && !early.contains("index-00001.ts"),
            "{early}"
        );
    }
    let job = wait_final(&svc.base, id, LONG).await;
    assert_eq!(job["state"], "succeeded", "{job}\n{}", svc.log());
    // The playlist and its segments under the job's output name, and nothing else.
    let outputs = setup.outputs();
    let segments = outputs
        .iter()
        .filter(|o| o.starts_with(&format!("api/{key}/index-")) && o.ends_with(".ts"))
        .count();
    assert_eq!(segments, if chunked { 3 } else { 2 }, "{outputs:?}");
    assert_eq!(outputs.len(), segments + 1, "{outputs:?}");
    let text = std::fs::read_to_string(&playlist).unwrap();
    assert!(text.ends_with("#EXT-X-ENDLIST\n"), "{text}");
    let (codecs, duration) = probe(&playlist);
    assert!(codecs.contains(&"h264".to_string()) && codecs.contains(&"aac".to_string()));
    assert!((duration - 9.0).abs() < 0.05, "{duration}");
    let listed = job["outputs"].as_array().unwrap();
    assert_eq!(listed.len(), segments + 1, "{job}");
    assert!(
        listed[0]["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/api/{key}/index.m3u8"))
    );
    assert_eq!(listed[0]["duration_ms"], 9_000, "{job}");
}
