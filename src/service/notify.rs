//! Completion notifications: one queue entry per `[[notify]]` target and job outcome (so a
//! restart loses none), POSTed signed the Standard Webhooks way (`webhook-id`,
//! `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`)
//! and retried with exponential backoff (1 s, doubling, capped at 30 min by default) for at
//! most 24 h, then dead.

use std::time::Duration;

use serde_json::json;

use super::config::Config;
use super::job::NotifySpec;
use super::process::Failure;
use super::queue::{JobRow, Kind, NewJob, Outcome};
use super::worker::{Shared, now_ms, outputs_of};

/// The notification body for a job's outcome (pure).
pub fn body(job: &JobRow, outcome: &Outcome, now_ms: i64) -> Option<String> {
    let (kind, error) = match outcome {
        Outcome::Succeeded { .. } => ("job.succeeded", None),
        Outcome::Failed { error } | Outcome::Dead { error } => ("job.failed", Some(error)),
        Outcome::Retry { .. } | Outcome::Waiting => return None,
    };
    Some(
        json!({
            "type": kind,
            "timestamp": now_ms / 1000,
            "job": job.id,
            "source": job.source,
            "input": job.summary,
            "outputs": outputs_of(outcome),
            "error": error,
        })
        .to_string(),
    )
}

/// One notification job per `[[notify]]` target for a job's outcome (none for a retry), to
/// be stored with the outcome in one transaction.
pub fn for_outcome(config: &Config, job: &JobRow, outcome: &Outcome) -> Vec<NewJob> {
    // A chunk of a chunked compose: its parent notifies, once, for the whole.
    if job.kind == "process" && job.parent.is_some() {
        return Vec::new();
    }
    let Some(body) = body(job, outcome, now_ms()) else {
        return Vec::new();
    };
    let kind = if matches!(outcome, Outcome::Succeeded { .. }) {
        "succeeded"
    } else {
        "failed"
    };
    config
        .notify
        .iter()
        .enumerate()
        .map(|(target, n)| {
            let message_id = format!("msg_{}_{target}_{kind}", job.id);
            let spec = NotifySpec {
                target,
                url: n.url.clone(),
                message_id: message_id.clone(),
                body: body.clone(),
            };
            NewJob {
                kind: Kind::Notify,
                key: Some(message_id),
                source: job.source.clone(),
                summary: format!("{kind} → {}", super::fetch::redact(&n.url)),
                payload: serde_json::to_string(&spec).unwrap_or_default(),
                run_after_ms: 0,
                max_attempts: u32::MAX >> 1,
                deadline_after_ms: Some(config.notify_retry.max_age_secs as i64 * 1000),
                parent: Some(job.id.clone()),
            }
        })
        .collect()
}

/// Sends one notification; any answer but 2xx is retried.
pub async fn send(shared: &Shared, job: &JobRow) -> Result<Vec<super::job::Delivered>, Failure> {
    let spec: NotifySpec = serde_json::from_str(&job.payload)
        .map_err(|e| Failure::Final(format!("the stored notification is unreadable: {e}")))?;
    let target = shared
        .config
        .notify
        .get(spec.target)
        .filter(|t| t.url == spec.url)
        .ok_or_else(|| Failure::Final(format!("{} is no longer a notify target", spec.url)))?;
    let hook = standardwebhooks::Webhook::new(&target.secret)
        .map_err(|e| Failure::Final(format!("notify secret: {e}")))?;
    let ts = now_ms() / 1000;
    let signature = hook
        .sign(&spec.message_id, ts, spec.body.as_bytes())
        .map_err(|e| Failure::Final(format!("signing: {e}")))?;
    let response = shared
        .http
        .post(&spec.url)
        .header("content-type", "application/json")
        .header("webhook-id", &spec.message_id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .timeout(Duration::from_secs(30))
        .body(spec.body.clone())
        .send()
        .await
        .map_err(|e| {
            let shown = super::fetch::redact(&spec.url);
            Failure::Retry(format!("POST {shown}: {}", e.without_url()))
        })?;
    let status = response.status();
    let shown = super::fetch::redact(&spec.url);
    if status.is_success() {
        tracing::info!(url = %shown, status = status.as_u16(), "notified");
        Ok(Vec::new())
    } else {
        Err(Failure::Retry(format!("POST {shown}: {status}")))
    }
}
