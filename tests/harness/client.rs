//! Talking to the service as its callers do: the API, and signed webhooks.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{API_TOKEN, ENABLEX_TOKEN, LIVESWITCH_SECRET};

/// An HTTP client for the service's API: one per thread (a client is costly to build, and
/// its connections belong to the runtime of the test using it).
pub fn client() -> reqwest::Client {
    mosaic::service::install_tls_provider();
    thread_local! {
        static CLIENT: reqwest::Client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
    }
    CLIENT.with(Clone::clone)
}

pub async fn get_json(base: &str, path: &str) -> Value {
    serde_json::from_str(&get_text(base, path).await).unwrap()
}

/// POSTs a job to the API (authenticated); its answer.
pub async fn post_job(base: &str, request: &Value) -> Value {
    client()
        .post(format!("{base}/v1/jobs"))
        .bearer_auth(API_TOKEN)
        .json(request)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The body of an authenticated GET, as text (an API answer or the jobs page).
pub async fn get_text(base: &str, path: &str) -> String {
    client()
        .get(format!("{base}{path}"))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Polls a job until it reaches a final state (or `timeout`).
pub async fn wait_final(base: &str, id: &str, timeout: Duration) -> Value {
    let start = Instant::now();
    loop {
        let job = get_json(base, &format!("/v1/jobs/{id}")).await;
        let state = job["state"].as_str().unwrap_or("").to_owned();
        if matches!(state.as_str(), "succeeded" | "failed" | "dead") {
            return job;
        }
        assert!(
            start.elapsed() < timeout,
            "job {id} still {state} after {timeout:?}: {job}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// Waits until `check` holds.
pub async fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Seconds since the epoch.
pub fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// POSTs an OpenTok callback signed with `secret`, issued at `iat`, with token id `jti`.
pub async fn post_opentok(
    base: &str,
    body: &[u8],
    secret: &str,
    iat: i64,
    jti: &str,
) -> reqwest::Response {
    let token = mosaic::service::verify::opentok_token(body, secret, iat, jti);
    client()
        .post(format!("{base}/v1/hooks/opentok"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

/// POSTs an EnableX notification with the configured token.
pub async fn post_enablex(base: &str, body: &[u8]) -> reqwest::Response {
    client()
        .post(format!("{base}/v1/hooks/enablex?token={ENABLEX_TOKEN}"))
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

/// POSTs a LiveSwitch webhook signed with the application's secret.
pub async fn post_liveswitch(base: &str, body: &[u8]) -> reqwest::Response {
    post_liveswitch_as(base, body, LIVESWITCH_SECRET).await
}

/// POSTs a LiveSwitch webhook signed with `secret` (another application's).
pub async fn post_liveswitch_as(base: &str, body: &[u8], secret: &str) -> reqwest::Response {
    let sig = mosaic::service::verify::liveswitch_signature(body, secret);
    client()
        .post(format!("{base}/v1/hooks/liveswitch"))
        .header("X-ApplicationSignature", sig)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

/// An OpenTok archive status callback.
pub fn opentok_event(id: &str, status: &str, url: Option<&str>) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "id": id,
        "event": "archive",
        "createdAt": 1_600_000_000_000i64,
        "duration": 3,
        "name": "test",
        "partnerId": 123456,
        "reason": "",
        "resolution": "640x480",
        "sessionId": "2_MX40NzIwMzJ-flR1ZSBPY3Q",
        "size": 0,
        "status": status,
        "url": url,
    }))
    .unwrap()
}
