//! The HTTP side (edge): webhook intake, the jobs API, health, metrics and the jobs page.
//!
//! Every hook is verified on its raw body before anything in it is trusted; a job is
//! answered 202 only once it is stored. Answers: 202 stored (or already stored: the same
//! job), 200 recorded without work, 400 malformed, 401 bad or missing signature or token,
//! 413 over the body limit.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::intake::{self, Decision, Malformed};
use super::job::{Fetch, JobSpec, Origin};
use super::queue::{Enqueued, JobRow, Kind, NewJob, SpentToken};
use super::verify::{self, Refused};
use super::worker::{Shared, now_ms};
use super::{config::ComposeConfig, config::Product, page};

type AppState = State<Arc<Shared>>;

/// The routes.
pub fn router(shared: Arc<Shared>) -> Router {
    let limit = shared.config.body_limit;
    // Everything but the hooks (signed their own way), health and metrics needs the token.
    let api = Router::new()
        .route("/", get(jobs_page))
        .route("/v1/jobs", post(create_job).get(list_jobs))
        .route("/v1/jobs/{id}", get(get_job))
        .route("/v1/jobs/{id}/timeline.svg", get(timeline))
        .route_layer(middleware::from_fn_with_state(
            shared.clone(),
            require_token,
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/hooks/opentok", post(opentok_hook))
        .route("/v1/hooks/liveswitch", post(liveswitch_hook))
        .route("/v1/hooks/enablex", post(enablex_hook))
        .merge(api)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            refuse_oversize,
        ))
        .with_state(shared)
}

/// How much of a body declared over the limit is read (and thrown away) before the 413.
const DRAIN_MAX: u64 = 16 << 20;

/// How long reading it may take.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// A body whose `Content-Length` is over the limit gets its 413 at once, before any handler;
/// what the client still sends is read and thrown away first (up to [`DRAIN_MAX`], within
/// [`DRAIN_TIME`]). A server that answers and closes with the body unread resets the
/// connection, and the client, still sending, sees the reset instead of the answer.
async fn refuse_oversize(State(shared): AppState, request: Request, next: Next) -> Response {
    let declared = header_str(request.headers(), header::CONTENT_LENGTH.as_str())
        .and_then(|v| v.parse::<u64>().ok());
    let limit = shared.config.body_limit as u64;
    let Some(length) = declared.filter(|&n| n > limit) else {
        return next.run(request).await;
    };
    if length <= DRAIN_MAX {
        use futures_util::StreamExt;
        let mut body = request.into_body().into_data_stream();
        let drain = async { while let Some(Ok(_)) = body.next().await {} };
        let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
    }
    answer(
        StatusCode::PAYLOAD_TOO_LARGE,
        json!({"error": format!("the body is {length} bytes; the limit is {limit}")}),
    )
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn unauthorized(shared: &Shared, source: &str, e: Refused) -> Response {
    shared.metrics.intake(source, "unauthorized");
    tracing::warn!(source, reason = %e, "refused");
    answer(StatusCode::UNAUTHORIZED, json!({"error": e.0}))
}

fn bad_request(shared: &Shared, source: &str, e: Malformed) -> Response {
    shared.metrics.intake(source, "malformed");
    answer(StatusCode::BAD_REQUEST, json!({"error": e.0}))
}

/// 503, with the database's own text in the log only: callers (signed or not) learn that
/// the queue is unavailable and to try again, nothing about the database.
fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "queue unavailable");
    let mut r = answer(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"error": "the queue is unavailable; try again later"}),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    r
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Stores what a verified hook asks for, spending its token (if it carried one) in the same
/// transaction, and answers.
async fn decide(
    shared: &Shared,
    source: &str,
    decision: Decision,
    body: &[u8],
    token: Option<SpentToken>,
) -> Response {
    let replay = |shared: &Shared, jti: &str| {
        unauthorized(
            shared,
            source,
            Refused(format!("token {jti} was already used (a replay)")),
        )
    };
    let jti = token.as_ref().map(|t| t.jti.clone()).unwrap_or_default();
    match decision {
        Decision::Enqueue { key, spec } => {
            let stores = shared.config.stores_for(spec.origin);
            for f in &spec.fetch {
                match super::fetch::check_url(&f.from, &shared.policy, &stores).await {
                    Err(e) if !e.retry => {
                        return bad_request(shared, source, Malformed(e.message));
                    }
                    _ => {}
                }
            }
            let job = NewJob {
                kind: Kind::Process,
                key: Some(key),
                source: source.into(),
                summary: spec.summary.clone(),
                payload: serde_json::to_string(&spec).unwrap_or_default(),
                run_after_ms: 0,
                max_attempts: shared.config.max_attempts,
                deadline_after_ms: None,
                parent: None,
            };
            match shared.queue.enqueue(job, token).await {
                Ok(Enqueued::Replay) => replay(shared, &jti),
                Ok(Enqueued::Job { id, new: created }) => {
                    let result = if created { "accepted" } else { "duplicate" };
                    shared.metrics.intake(source, result);
                    tracing::info!(job = %id, source, result, "hook");
                    answer(
                        StatusCode::ACCEPTED,
                        json!({"job": id, "duplicate": !created, "status": format!("/v1/jobs/{id}")}),
                    )
                }
                Err(e) => unavailable(e),
            }
        }
        Decision::Record {
            kind,
            events_key,
            reason,
        } => {
            let text = String::from_utf8_lossy(body);
            let stored = shared
                .queue
                .record_event(source, &kind, events_key.as_deref(), &text, token)
                .await;
            match stored {
                Ok(true) => {}
                Ok(false) => return replay(shared, &jti),
                Err(e) => return unavailable(e),
            }
            shared.metrics.intake(source, "recorded");
            answer(StatusCode::OK, json!({"recorded": kind, "note": reason}))
        }
    }
}

async fn opentok_hook(State(shared): AppState, headers: HeaderMap, body: Bytes) -> Response {
    let cfg = &shared.config.opentok;
    let signed = match verify::opentok(
        header_str(&headers, "authorization"),
        &body,
        cfg.secret.as_deref(),
        cfg.allow_unsigned,
        now_ms(),
    ) {
        Ok(s) => s,
        Err(e) => return unauthorized(&shared, "opentok", e),
    };
    // The token is spent with what the call stores, not before: a call answered 503 can be
    // sent again with the same token.
    let token = signed.jti.map(|jti| SpentToken {
        jti,
        until_ms: signed.remember_until_ms,
    });
    let decision =
        intake::json_object(&body).and_then(|obj| intake::opentok(&obj, cfg.storage.as_deref()));
    match decision {
        Ok(d) => decide(&shared, "opentok", d, &body, token).await,
        Err(e) => bad_request(&shared, "opentok", e),
    }
}

async fn liveswitch_hook(State(shared): AppState, headers: HeaderMap, body: Bytes) -> Response {
    // The body is read only for the application id, to pick the secret.
    let obj = match intake::json_object(&body) {
        Ok(o) => o,
        Err(e) => return bad_request(&shared, "liveswitch", e),
    };
    let app = intake::liveswitch_application_id(&obj);
    if let Err(e) = verify::liveswitch(
        header_str(&headers, "x-applicationsignature"),
        &body,
        app.as_deref(),
        &shared.config.liveswitch.secrets,
    ) {
        return unauthorized(&shared, "liveswitch", e);
    }
    // Verified with that application's secret: the application is the tenant.
    let app = app.unwrap_or_default();
    match intake::liveswitch(&obj, &app) {
        Ok(d) => decide(&shared, "liveswitch", d, &body, None).await,
        Err(e) => bad_request(&shared, "liveswitch", e),
    }
}

async fn enablex_hook(
    State(shared): AppState,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let given = query
        .get("token")
        .map(String::as_str)
        .or_else(|| header_str(&headers, "x-mosaic-token"));
    if let Err(e) = verify::token(given, shared.config.enablex.token.as_deref()) {
        return unauthorized(&shared, "enablex", e);
    }
    let decision = intake::json_object(&body).and_then(|obj| intake::enablex(&obj, &body));
    match decision {
        Ok(d) => decide(&shared, "enablex", d, &body, None).await,
        Err(e) => bad_request(&shared, "enablex", e),
    }
}

/// Lets a request through only with the API token (401 otherwise: JSON for the API, a
/// line of text for the page).
async fn require_token(
    State(shared): AppState,
    Query(query): Query<HashMap<String, String>>,
    request: Request,
    next: Next,
) -> Response {
    match api_auth(&shared, request.headers(), &query) {
        // The page opened with ?token=: a session cookie instead, and the token out of the
        // address bar (and the browser's history).
        Ok(()) if request.uri().path() == "/" && query.contains_key("token") => {
            start_session(&shared, request.headers())
        }
        Ok(()) => next.run(request).await,
        Err(e) if request.uri().path() == "/" => (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{e}: open /?token=<api_token>\n"),
        )
            .into_response(),
        Err(e) => unauthorized(&shared, "api", e),
    }
}

/// The session cookie's name.
const SESSION_COOKIE: &str = "mosaic_session";

/// The API token from `Authorization: Bearer` or `?token=`, or a valid session cookie.
fn api_auth(
    shared: &Shared,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<(), Refused> {
    let bearer = header_str(headers, "authorization").and_then(|h| h.strip_prefix("Bearer "));
    let expected = shared.config.api_token.as_deref();
    if let (Some(token), None, None) = (expected, bearer, query.get("token")) {
        let session = header_str(headers, "cookie").and_then(|c| {
            c.split(';')
                .filter_map(|p| p.trim().strip_prefix(&format!("{SESSION_COOKIE}=")))
                .next()
        });
        if session.is_some_and(|s| verify::session_valid(s, token, now_ms() / 1000)) {
            return Ok(());
        }
    }
    verify::token(bearer.or(query.get("token").map(String::as_str)), expected)
}

/// Whether the client reached us over TLS: directly (never, today) or through a proxy that
/// says so.
fn over_tls(headers: &HeaderMap) -> bool {
    header_str(headers, "x-forwarded-proto").is_some_and(|p| {
        p.split(',')
            .next()
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
    })
}

/// A new page session: its cookie (`Secure` over TLS), and a redirect to the page without
/// the token in its address.
fn start_session(shared: &Shared, headers: &HeaderMap) -> Response {
    let token = shared.config.api_token.as_deref().unwrap_or_default();
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let value = verify::session_value(token, now_ms() / 1000, &nonce);
    let secure = if over_tls(headers) { "; Secure" } else { "" };
    let cookie = format!(
        "{SESSION_COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        verify::SESSION_S
    );
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    if let Ok(v) = cookie.parse() {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// A direct request: `{"url": "...", "key"?: "...", "produce"?: [...], "compose"?: {...}}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectJob {
    /// An archive ZIP: `http(s)://…` or an object-store URL under a configured store.
    url: String,
    /// An idempotency key; the same key again gives the same job.
    key: Option<String>,
    produce: Option<Vec<Product>>,
    compose: Option<ComposeConfig>,
}

async fn create_job(State(shared): AppState, body: Bytes) -> Response {
    let req: DirectJob = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return bad_request(
                &shared,
                "api",
                Malformed(format!("the body is not a job request: {e}")),
            );
        }
    };
    if let Some(c) = &req.compose
        && let Err(e) = c.to_options()
    {
        return bad_request(&shared, "api", Malformed(e.to_string()));
    }
    let spec = JobSpec {
        origin: Origin::Api,
        summary: super::fetch::redact(&req.url),
        fetch: vec![Fetch {
            from: req.url.clone(),
            to: "input.zip".into(),
            size: None,
            expires: false,
        }],
        pending: Vec::new(),
        events_key: None,
        descriptor: None,
        open: "input.zip".into(),
        produce: req.produce,
        compose: req.compose,
        // An idempotency key names the output (through the gate); without one, the job id.
        chunk: None,
        output: req
            .key
            .as_deref()
            .map(|k| format!("api/{}", crate::names::plain_name(k))),
    };
    let key = req
        .key
        .map(|k| format!("api:{k}"))
        .unwrap_or_else(|| format!("api:{}", uuid::Uuid::new_v4().simple()));
    let decision = Decision::Enqueue {
        key,
        spec: Box::new(spec),
    };
    decide(&shared, "api", decision, &body, None).await
}

async fn list_jobs(State(shared): AppState) -> Response {
    match shared.queue.list(Kind::Process, 200).await {
        Ok(jobs) => answer(StatusCode::OK, json!({ "jobs": jobs })),
        Err(e) => unavailable(e),
    }
}

async fn get_job(State(shared): AppState, Path(id): Path<String>) -> Response {
    match shared.queue.get(&id).await {
        Ok(Some(job)) => {
            let children = match shared.queue.children(&job.id).await {
                Ok(c) => c,
                Err(e) => return unavailable(e),
            };
            answer(StatusCode::OK, with_chunks(&job, &children))
        }
        Ok(None) => answer(StatusCode::NOT_FOUND, json!({"error": "no such job"})),
        Err(e) => unavailable(e),
    }
}

/// A job as the API shows it; a chunked compose's with its chunks (`index`, `from_ms`,
/// `to_ms`, `state`, `worker`, `attempts`) and, while it waits for them, its progress as
/// the share of chunks done.
fn with_chunks(job: &JobRow, children: &[JobRow]) -> Value {
    let mut shown = json!(job);
    if children.is_empty() {
        return shown;
    }
    let mut parts: Vec<(Option<super::job::ChunkPart>, &JobRow)> = children
        .iter()
        .map(|c| {
            let part = serde_json::from_str::<JobSpec>(&c.payload)
                .ok()
                .and_then(|s| s.chunk);
            (part, c)
        })
        .collect();
    parts.sort_by_key(|(part, _)| part.map(|p| p.index));
    let chunks: Vec<Value> = parts
        .into_iter()
        .map(|(part, c)| {
            json!({
                "index": part.map(|p| p.index),
                "from_ms": part.map(|p| p.from_ms),
                "to_ms": part.map(|p| p.to_ms),
                "state": c.state,
                "worker": c.worker,
                "attempts": c.attempts,
                "job": c.id,
            })
        })
        .collect();
    let done = children.iter().filter(|c| c.state == "succeeded").count();
    if job.state == "waiting" {
        shown["progress"] = json!(90.0 * done as f64 / children.len() as f64);
    }
    shown["chunks"] = json!(chunks);
    shown
}

async fn timeline(State(shared): AppState, Path(id): Path<String>) -> Response {
    match shared.queue.timeline(&id).await {
        Ok(Some(svg)) => ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response(),
        Ok(None) => answer(
            StatusCode::NOT_FOUND,
            json!({"error": "no timeline (yet): it is drawn once the input is fetched"}),
        ),
        Err(e) => unavailable(e),
    }
}

async fn jobs_page(State(shared): AppState) -> Response {
    let jobs = match shared.queue.list(Kind::Process, 200).await {
        Ok(j) => j,
        Err(e) => return unavailable(e),
    };
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page::render(&jobs, now_ms()),
    )
        .into_response()
}

async fn healthz(State(shared): AppState) -> Response {
    match shared.queue.counts().await {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => unavailable(e),
    }
}

async fn metrics(State(shared): AppState) -> Response {
    match shared.queue.counts().await {
        Ok(counts) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            shared.metrics.render(&counts),
        )
            .into_response(),
        Err(e) => unavailable(e),
    }
}
