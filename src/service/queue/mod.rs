//! The durable queue: jobs (compositions and notifications alike), the events received, and
//! the OpenTok token ids already seen. One small trait, [`Queue`]; one implementation on
//! sqlx, for an embedded SQLite file and for PostgreSQL (where any number of workers on any
//! number of machines claim jobs with `FOR UPDATE SKIP LOCKED`).
//!
//! A claimed job carries a lease (owner and expiry) that its worker renews; a job whose
//! lease ran out (its worker died) is claimable again, so it is finished exactly once by
//! whichever worker holds the lease when it completes: completion only counts for the owner.

mod sql;

use futures_util::future::BoxFuture;
use serde::Serialize;

pub use sql::SqlQueue;

/// The queue's errors: the database's, named.
#[derive(Debug, thiserror::Error)]
#[error("queue: {0}")]
pub struct QueueError(String);

impl From<sqlx::Error> for QueueError {
    fn from(e: sqlx::Error) -> Self {
        QueueError(e.to_string())
    }
}

pub type QueueResult<T> = Result<T, QueueError>;

/// What kind of work a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Fetch, compose or repair, deliver.
    Process,
    /// POST one notification.
    Notify,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Process => "process",
            Kind::Notify => "notify",
        }
    }
}

/// A job to store.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: Kind,
    /// The idempotency key: a second job with the same key is not stored.
    pub key: Option<String>,
    pub source: String,
    pub summary: String,
    pub payload: String,
    pub run_at_ms: i64,
    pub max_attempts: u32,
    /// After this, the job is dead instead of retried.
    pub deadline_ms: Option<i64>,
    /// The job this one reports on (notifications).
    pub parent: Option<String>,
}

/// A stored job, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct JobRow {
    pub id: String,
    pub kind: String,
    pub key: Option<String>,
    pub source: String,
    pub summary: String,
    /// queued, running, succeeded, failed (not worth retrying) or dead (retries used up).
    pub state: String,
    pub attempts: i64,
    pub max_attempts: i64,
    /// 0 to 100.
    pub progress: f64,
    pub last_error: Option<String>,
    /// JSON list of delivered outputs.
    pub outputs: Option<serde_json::Value>,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    pub run_at_ms: i64,
    pub deadline_ms: Option<i64>,
    pub parent: Option<String>,
    /// The worker that holds (or last held) the job.
    pub worker: Option<String>,
    #[serde(skip)]
    pub payload: String,
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    Succeeded {
        outputs: String,
    },
    /// Try again at `run_at_ms`.
    Retry {
        error: String,
        run_at_ms: i64,
    },
    /// Not worth retrying (bad input).
    Failed {
        error: String,
    },
    /// Retries used up.
    Dead {
        error: String,
    },
}

/// The durable queue.
pub trait Queue: Send + Sync {
    /// Stores a job unless one with its key exists; gives the job's id and whether it is new.
    fn enqueue(&self, job: NewJob) -> BoxFuture<'_, QueueResult<(String, bool)>>;
    /// Takes the next due job of `kind` (or one whose lease ran out) for `owner`.
    fn claim<'a>(
        &'a self,
        kind: Kind,
        owner: &'a str,
        lease_ms: i64,
        now_ms: i64,
    ) -> BoxFuture<'a, QueueResult<Option<JobRow>>>;
    /// Renews `owner`'s lease and records progress; false when the lease was lost.
    fn heartbeat<'a>(
        &'a self,
        id: &'a str,
        owner: &'a str,
        lease_until_ms: i64,
        progress: f64,
    ) -> BoxFuture<'a, QueueResult<bool>>;
    /// Ends an attempt; false when `owner` no longer held the lease (nothing changed).
    fn finish<'a>(
        &'a self,
        id: &'a str,
        owner: &'a str,
        outcome: Outcome,
        now_ms: i64,
    ) -> BoxFuture<'a, QueueResult<bool>>;
    /// Gives a running job back (shutdown): queued again, the attempt not counted.
    fn release<'a>(&'a self, id: &'a str, owner: &'a str) -> BoxFuture<'a, QueueResult<()>>;
    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, QueueResult<Option<JobRow>>>;
    /// Newest first.
    fn list(&self, kind: Kind, limit: i64) -> BoxFuture<'_, QueueResult<Vec<JobRow>>>;
    /// (kind, state, count).
    fn counts(&self) -> BoxFuture<'_, QueueResult<Vec<(String, String, i64)>>>;
    /// Keeps a received event.
    fn record_event<'a>(
        &'a self,
        source: &'a str,
        kind: &'a str,
        key: Option<&'a str>,
        body: &'a str,
        now_ms: i64,
    ) -> BoxFuture<'a, QueueResult<()>>;
    /// The bodies of the events kept under `key`, oldest first.
    fn events<'a>(&'a self, key: &'a str) -> BoxFuture<'a, QueueResult<Vec<String>>>;
    /// Keeps the input's timeline drawing (SVG) with the job.
    fn set_timeline<'a>(&'a self, id: &'a str, svg: &'a str) -> BoxFuture<'a, QueueResult<()>>;
    fn timeline<'a>(&'a self, id: &'a str) -> BoxFuture<'a, QueueResult<Option<String>>>;
    /// Remembers a token id until `until_ms`; false if it was already remembered (a replay).
    fn remember_token<'a>(
        &'a self,
        jti: &'a str,
        until_ms: i64,
        now_ms: i64,
    ) -> BoxFuture<'a, QueueResult<bool>>;
}
