//! Workers (edge): each slot claims a due job, holds its lease with heartbeats while the
//! work runs, and records how the attempt ended. Processing jobs and notifications are
//! claimed by separate loops; both stop taking work at shutdown and give back what runs.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;
use tracing::Instrument;

use super::backoff::jitter;
use super::config::Config;
use super::fetch::Policy;
use super::job::{Delivered, JobSpec};
use super::metrics::Metrics;
use super::notify;
use super::process::{self, Failure, Tracker};
use super::queue::{JobRow, Kind, Outcome, Queue};
use super::store::Location;

/// What every worker and handler shares.
pub struct Shared {
    pub config: Config,
    pub queue: Arc<dyn Queue>,
    pub output: Location,
    pub policy: Policy,
    /// This process's name in leases: host, process id and a random part.
    pub owner: String,
    pub metrics: Metrics,
    pub http: reqwest::Client,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A lease owner name for this process.
pub fn owner_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".into());
    let rand = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &rand[..8])
}

/// Runs `workers` processing slots and the notification sender until `stop` turns true
/// (nothing with 0 workers: an intake-only process).
pub async fn run(shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let mut tasks = Vec::new();
    if shared.config.workers == 0 {
        return;
    }
    for slot in 0..shared.config.workers {
        let (s, st) = (shared.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            slot_loop(s, st, Kind::Process, slot).await;
        }));
    }
    for slot in 0..2 {
        let (s, st) = (shared.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            slot_loop(s, st, Kind::Notify, slot).await;
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn slot_loop(shared: Arc<Shared>, mut stop: watch::Receiver<bool>, kind: Kind, slot: usize) {
    let lease_ms = shared.config.lease_secs as i64 * 1000;
    while !*stop.borrow() {
        let claimed = shared
            .queue
            .claim(kind, &shared.owner, lease_ms, now_ms())
            .await;
        match claimed {
            Ok(Some(job)) => {
                let span = tracing::info_span!("job", job = %job.id, kind = ?kind, slot);
                run_job(&shared, job, &mut stop).instrument(span).await;
            }
            Ok(None) => {
                let wait = Duration::from_millis(shared.config.poll_ms);
                let _ = tokio::time::timeout(wait, stop.changed()).await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot claim a job");
                let _ = tokio::time::timeout(Duration::from_secs(2), stop.changed()).await;
            }
        }
    }
}

async fn run_job(shared: &Arc<Shared>, job: JobRow, stop: &mut watch::Receiver<bool>) {
    let tracker = Arc::new(Tracker::default());
    let started = std::time::Instant::now();
    tracing::info!(attempt = job.attempts, summary = %job.summary, "started");
    let work = {
        let s = shared.clone();
        let j = job.clone();
        let t = tracker.clone();
        async move {
            match j.kind.as_str() {
                "notify" => notify::send(&s, &j).await,
                _ => {
                    let spec: JobSpec = serde_json::from_str(&j.payload).map_err(|e| {
                        Failure::Final(format!("the stored job is unreadable: {e}"))
                    })?;
                    let dir = s.config.data_dir.join("work").join(format!(
                        "{}.{}",
                        j.id,
                        std::process::id()
                    ));
                    let _ = tokio::fs::remove_dir_all(&dir).await;
                    let result = process::run(&s, &j.id, &spec, &dir, &t).await;
                    let _ = tokio::fs::remove_dir_all(&dir).await;
                    result
                }
            }
        }
    };
    let mut work = std::pin::pin!(work);
    let beat = Duration::from_millis((shared.config.lease_secs * 1000 / 3).max(200));
    let mut ticker = tokio::time::interval(beat);
    ticker.tick().await;
    let mut shutting_down = false;
    let result = loop {
        tokio::select! {
            r = &mut work => break r,
            _ = ticker.tick() => {
                let until = now_ms() + shared.config.lease_secs as i64 * 1000;
                match shared.queue.heartbeat(&job.id, &shared.owner, until, tracker.percent()).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!("lease lost: another worker has the job; stopping");
                        tracker.cancel.store(true, Ordering::Relaxed);
                    }
                    Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
                }
            }
            _ = stop.changed(), if !shutting_down => {
                tracing::info!("shutting down: stopping the job and giving it back");
                shutting_down = true;
                tracker.cancel.store(true, Ordering::Relaxed);
            }
        }
    };
    crate::alloc::release_free_memory();
    let secs = started.elapsed().as_secs_f64();
    let outcome = match result {
        Ok(delivered) => Outcome::Succeeded {
            outputs: serde_json::to_string(&delivered).unwrap_or_else(|_| "[]".into()),
        },
        Err(_) if shutting_down => {
            if let Err(e) = shared.queue.release(&job.id, &shared.owner).await {
                tracing::error!(error = %e, "cannot give the job back; its lease will expire");
            }
            return;
        }
        Err(Failure::Cancelled) => {
            tracing::warn!("stopped after losing the lease");
            return;
        }
        Err(Failure::Final(error)) => Outcome::Failed { error },
        Err(Failure::Retry(error)) => retry_or_dead(shared, &job, error),
    };
    let state = match &outcome {
        Outcome::Succeeded { .. } => "succeeded",
        Outcome::Retry { .. } => "retrying",
        Outcome::Failed { .. } => "failed",
        Outcome::Dead { .. } => "dead",
    };
    match &outcome {
        Outcome::Retry { error, run_at_ms } => {
            tracing::warn!(error = %error, retry_in_ms = run_at_ms - now_ms(), "attempt failed")
        }
        Outcome::Failed { error } | Outcome::Dead { error } => {
            tracing::error!(error = %error, state, "job ended")
        }
        Outcome::Succeeded { .. } => tracing::info!(seconds = secs, "succeeded"),
    }
    let finished = shared
        .queue
        .finish(&job.id, &shared.owner, outcome.clone(), now_ms())
        .await;
    match finished {
        Ok(true) => {
            shared.metrics.finished(&job.kind, state, secs);
            if job.kind == "process" {
                notify::enqueue_for(shared, &job, &outcome).await;
            }
        }
        Ok(false) => tracing::warn!("the lease ran out before the end; another worker has the job"),
        Err(e) => tracing::error!(error = %e, "cannot record the outcome; the lease will expire"),
    }
}

/// A retry after the backoff, or dead once attempts or the deadline are used up.
fn retry_or_dead(shared: &Shared, job: &JobRow, error: String) -> Outcome {
    let backoff = if job.kind == "notify" {
        super::backoff::Backoff {
            base_ms: shared.config.notify_retry.base_ms,
            cap_ms: shared.config.notify_retry.cap_ms,
        }
    } else {
        shared.config.job_backoff()
    };
    let run_at_ms = now_ms() + backoff.delay_ms(job.attempts.max(1) as u32, jitter()) as i64;
    let past_deadline = job.deadline_ms.is_some_and(|d| run_at_ms > d);
    if job.attempts >= job.max_attempts || past_deadline {
        Outcome::Dead {
            error: format!("{error} (gave up after {} attempts)", job.attempts),
        }
    } else {
        Outcome::Retry { error, run_at_ms }
    }
}

/// What the notification says a job produced.
pub fn outputs_of(outcome: &Outcome) -> Vec<Delivered> {
    match outcome {
        Outcome::Succeeded { outputs } => serde_json::from_str(outputs).unwrap_or_default(),
        _ => Vec::new(),
    }
}
