//! Workers (edge): each slot claims a due job under a lease of that claim's own, holds it
//! with heartbeats while the work runs, and records how the attempt ended together with its
//! notifications. Processing jobs and notifications are claimed by separate loops; both stop
//! taking work at shutdown and give back what runs.
//!
//! A lease is kept or the work stops: a heartbeat the queue refuses (the lease was taken
//! over, or the job ended without us) stops the job's work within a second, and so does a
//! lease that ran out while the database could not be reached (another worker may take the
//! job from then on). A stopped attempt records nothing: the claim that holds the lease does.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

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
    /// This process's name: host, process id and a random part. Each claim's lease owner
    /// is this name and a random part of the claim's own.
    pub owner: String,
    pub metrics: Metrics,
    pub http: reqwest::Client,
}

/// Milliseconds since the Unix epoch, by this machine's clock (for what it shows and
/// signs; leases and due times are the database's).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A name for this process.
pub fn owner_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".into());
    let rand = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &rand[..8])
}

/// A lease owner id for one claim.
fn claim_owner(process: &str) -> String {
    let rand = uuid::Uuid::new_v4().simple().to_string();
    format!("{process}/{}", &rand[..12])
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

/// Deletes what is past `retention_days` (events, used token ids, ended jobs) at start and
/// then every hour, until the stop signal.
pub async fn prune_loop(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let older_than_ms = shared.config.retention_days as i64 * 86_400_000;
    while !*stop.borrow() {
        match shared.queue.prune(older_than_ms).await {
            Ok(p) if p != Default::default() => {
                tracing::info!(
                    jobs = p.jobs,
                    events = p.events,
                    tokens = p.tokens,
                    "pruned"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot prune the queue"),
        }
        let _ = tokio::time::timeout(Duration::from_secs(3600), stop.changed()).await;
    }
}

async fn slot_loop(shared: Arc<Shared>, mut stop: watch::Receiver<bool>, kind: Kind, slot: usize) {
    let lease_ms = shared.config.lease_secs as i64 * 1000;
    let notify_for = {
        let s = shared.clone();
        move |job: &JobRow, outcome: &Outcome| notify::for_outcome(&s.config, job, outcome)
    };
    while !*stop.borrow() {
        match shared.queue.reap_lost(kind, &notify_for).await {
            Ok(dead) => {
                for job in dead {
                    tracing::error!(job = %job.id, error = ?job.last_error, "job ended: its workers were lost");
                    shared.metrics.finished(&job.kind, "dead", 0.0);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot look for lost jobs"),
        }
        let owner = claim_owner(&shared.owner);
        match shared
            .queue
            .claim(kind, &shared.owner, &owner, lease_ms)
            .await
        {
            Ok(Some(job)) => {
                let span = tracing::info_span!("job", job = %job.id, kind = ?kind, slot);
                run_job(&shared, job, &owner, &mut stop)
                    .instrument(span)
                    .await;
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

/// Why a job's work was stopped before it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopped {
    Shutdown,
    /// The queue refused the heartbeat: another claim holds the lease, or none does.
    LeaseRefused,
    /// The lease ran out while the queue could not be reached.
    LeaseExpired,
}

/// How long stopped work may take to wind down before it is dropped.
const STOP_GRACE: Duration = Duration::from_millis(800);

async fn run_job(shared: &Arc<Shared>, job: JobRow, owner: &str, stop: &mut watch::Receiver<bool>) {
    let tracker = Arc::new(Tracker::default());
    let started = Instant::now();
    tracing::info!(attempt = job.attempts, summary = %job.summary, "started");
    let work_dir =
        shared
            .config
            .data_dir
            .join("work")
            .join(format!("{}.{}", job.id, std::process::id()));
    let work = {
        let (s, j, t, dir) = (
            shared.clone(),
            job.clone(),
            tracker.clone(),
            work_dir.clone(),
        );
        async move {
            match j.kind.as_str() {
                "notify" => notify::send(&s, &j).await,
                _ => {
                    let spec: JobSpec = serde_json::from_str(&j.payload).map_err(|e| {
                        Failure::Final(format!("the stored job is unreadable: {e}"))
                    })?;
                    let _ = tokio::fs::remove_dir_all(&dir).await;
                    super::fault::crash_if("input", &j.summary);
                    process::run(&s, &j, &spec, &dir, &t).await
                }
            }
        }
    };
    let (result, stopped) = hold_lease(shared, &job, owner, work, &tracker, stop).await;
    let _ = tokio::fs::remove_dir_all(&work_dir).await;
    crate::alloc::release_free_memory();
    let secs = started.elapsed().as_secs_f64();
    // A chunk job's outputs, for its turn at the playlist once its success is recorded.
    let mut succeeded_chunk = Vec::new();
    let outcome = match (result, stopped) {
        (_, Some(Stopped::Shutdown)) => {
            if let Err(e) = shared.queue.release(&job.id, owner).await {
                tracing::error!(error = %e, "cannot give the job back; its lease will expire");
            }
            return;
        }
        (_, Some(why)) => {
            tracing::warn!(
                ?why,
                "stopped: the lease is lost; the claim that holds it finishes the job"
            );
            return;
        }
        (None, None) => return,
        (Some(Ok(delivered)), None) => {
            let outputs = serde_json::to_string(&delivered).unwrap_or_else(|_| "[]".into());
            if job.parent.is_some() {
                succeeded_chunk = delivered;
            }
            Outcome::Succeeded { outputs }
        }
        (Some(Err(Failure::Cancelled)), None) => return,
        (Some(Err(Failure::Final(error))), None) => Outcome::Failed { error },
        (Some(Err(Failure::FanOut(chunks))), None) => {
            // The chunk jobs are stored with the parent's waiting, in one transaction.
            tracing::info!(chunks = chunks.len(), "fanned out into chunk jobs");
            finish_fanned_out(shared, &job, owner, chunks, secs, stop).await;
            return;
        }
        (Some(Err(Failure::Retry(error))), None) => retry_or_dead(shared, &job, error).await,
    };
    if record(shared, &job, owner, outcome, secs, stop).await && !succeeded_chunk.is_empty() {
        super::hls_chunks::chunk_recorded(shared, &job, &succeeded_chunk).await;
    }
}

/// Runs `work` while renewing the job's lease; gives its result, or why it was stopped
/// (then the result, if the work still ended within [`STOP_GRACE`]).
async fn hold_lease<F>(
    shared: &Shared,
    job: &JobRow,
    owner: &str,
    work: F,
    tracker: &Tracker,
    stop: &mut watch::Receiver<bool>,
) -> (Option<Result<Vec<Delivered>, Failure>>, Option<Stopped>)
where
    F: std::future::Future<Output = Result<Vec<Delivered>, Failure>>,
{
    let lease = Duration::from_secs(shared.config.lease_secs);
    let mut work = std::pin::pin!(work);
    let beat = (lease / 3).max(Duration::from_millis(200));
    let mut next_beat = Instant::now() + beat;
    // The lease runs out `lease` after the last renewal was sent, at the latest.
    let mut held_until = Instant::now() + lease;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let stopped = loop {
        tokio::select! {
            r = &mut work => return (Some(r), None),
            _ = stop.changed() => break Stopped::Shutdown,
            _ = tick.tick() => {
                let now = Instant::now();
                if now >= held_until {
                    tracing::warn!("the lease ran out while the queue could not be reached; stopping");
                    break Stopped::LeaseExpired;
                }
                if now < next_beat {
                    continue;
                }
                next_beat = now + beat;
                let renew = shared.queue.heartbeat(&job.id, owner, lease.as_millis() as i64, tracker.percent());
                match tokio::time::timeout(beat, renew).await {
                    Ok(Ok(true)) => held_until = now + lease,
                    Ok(Ok(false)) => {
                        tracing::warn!("lease lost: the queue refused the heartbeat; stopping");
                        break Stopped::LeaseRefused;
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "heartbeat failed"),
                    Err(_) => tracing::warn!("heartbeat timed out"),
                }
            }
        }
    };
    tracker.cancel.store(true, Ordering::Relaxed);
    let wound_down = tokio::time::timeout(STOP_GRACE, &mut work).await.ok();
    (wound_down, Some(stopped))
}

/// Stores the attempt's outcome and its notifications in one transaction, trying again
/// while the queue cannot be reached (until shutdown: then the lease runs out and the job
/// is done again); whether it was stored.
async fn record(
    shared: &Shared,
    job: &JobRow,
    owner: &str,
    outcome: Outcome,
    secs: f64,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let state = match &outcome {
        Outcome::Succeeded { .. } => "succeeded",
        Outcome::Retry { .. } => "retrying",
        Outcome::Failed { .. } => "failed",
        Outcome::Dead { .. } => "dead",
        Outcome::Waiting => "waiting",
    };
    match &outcome {
        Outcome::Retry { error, delay_ms } => {
            tracing::warn!(error = %error, retry_in_ms = delay_ms, "attempt failed")
        }
        Outcome::Failed { error } | Outcome::Dead { error } => {
            tracing::error!(error = %error, state, "job ended")
        }
        Outcome::Succeeded { .. } => tracing::info!(seconds = secs, "succeeded"),
        Outcome::Waiting => tracing::info!(seconds = secs, "waiting for its chunks"),
    }
    let notifications = match job.kind.as_str() {
        "process" => notify::for_outcome(&shared.config, job, &outcome),
        _ => Vec::new(),
    };
    store_outcome(
        shared,
        job,
        owner,
        outcome,
        notifications,
        state,
        secs,
        stop,
    )
    .await
}

/// A chunked compose's first attempt: waiting, its chunk jobs stored with it.
async fn finish_fanned_out(
    shared: &Shared,
    job: &JobRow,
    owner: &str,
    chunks: Vec<super::queue::NewJob>,
    secs: f64,
    stop: &mut watch::Receiver<bool>,
) {
    store_outcome(
        shared,
        job,
        owner,
        Outcome::Waiting,
        chunks,
        "waiting",
        secs,
        stop,
    )
    .await;
}

/// Stores an attempt's outcome with the jobs it makes (notifications, chunks) in one
/// transaction, trying again while the queue cannot be reached (until shutdown); whether
/// it was stored.
#[allow(clippy::too_many_arguments)]
async fn store_outcome(
    shared: &Shared,
    job: &JobRow,
    owner: &str,
    outcome: Outcome,
    notifications: Vec<super::queue::NewJob>,
    state: &str,
    secs: f64,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let mut wait = Duration::from_millis(500);
    loop {
        let finished = shared
            .queue
            .finish(&job.id, owner, outcome.clone(), notifications.clone())
            .await;
        match finished {
            Ok(true) => {
                shared.metrics.finished(&job.kind, state, secs);
                super::fault::crash_if("committed", &job.summary);
                return true;
            }
            Ok(false) => {
                tracing::warn!("the lease ran out before the end; another worker has the job");
                return false;
            }
            Err(e) => {
                tracing::error!(error = %e, retry_in_ms = wait.as_millis() as u64, "cannot record the outcome yet");
            }
        }
        if tokio::time::timeout(wait, stop.changed()).await.is_ok() {
            tracing::warn!(
                "shutting down before the outcome was recorded; the job will be done again"
            );
            return false;
        }
        wait = (wait * 2).min(Duration::from_secs(10));
    }
}

/// A retry after the backoff, or dead once attempts or the deadline are used up.
async fn retry_or_dead(shared: &Shared, job: &JobRow, error: String) -> Outcome {
    let backoff = if job.kind == "notify" {
        super::backoff::Backoff {
            base_ms: shared.config.notify_retry.base_ms,
            cap_ms: shared.config.notify_retry.cap_ms,
        }
    } else {
        shared.config.job_backoff()
    };
    let delay_ms = backoff.delay_ms(job.attempts.max(1) as u32, jitter()) as i64;
    // The deadline is on the database's clock.
    let past_deadline = match job.deadline_ms {
        Some(deadline) => {
            let now = shared.queue.now_ms().await.unwrap_or_else(|_| now_ms());
            now + delay_ms > deadline
        }
        None => false,
    };
    if job.attempts >= job.max_attempts || past_deadline {
        Outcome::Dead {
            error: format!("{error} (gave up after {} attempts)", job.attempts),
        }
    } else {
        Outcome::Retry { error, delay_ms }
    }
}

/// What the notification says a job produced.
pub fn outputs_of(outcome: &Outcome) -> Vec<Delivered> {
    match outcome {
        Outcome::Succeeded { outputs } => serde_json::from_str(outputs).unwrap_or_default(),
        _ => Vec::new(),
    }
}
