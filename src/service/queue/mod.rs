//! The durable queue: jobs (compositions and notifications alike), the events received, and
//! the OpenTok token ids already seen. One small trait, [`Queue`]; one implementation on
//! sqlx, for an embedded SQLite file and for PostgreSQL (where any number of workers on any
//! number of machines claim jobs with `FOR UPDATE SKIP LOCKED`).
//!
//! A claimed job carries a lease (an owner id of that claim alone, and an expiry on the
//! database's clock) that its worker renews; a job whose lease ran out (its worker died) is
//! claimable again, the lost attempt counted, so it is finished exactly once by whichever
//! claim holds the lease when it completes: completion only counts for the owner. A job whose
//! workers were lost `max_attempts` times ends dead instead of crashing worker after worker.
//! A job's outcome and its notifications are stored in one transaction.
//!
//! A chunked compose fans out: its job ends its first attempt `waiting`, storing one
//! processing job per chunk (their `parent` is it) in the same transaction; the chunk jobs
//! are claimed, retried and lost like any other, and the last of them to end makes the
//! parent due again (to stitch, or to fail with the chunk's error). Only the parent
//! notifies. A fanned-out HLS job's playlist is written under the parent's row lock
//! ([`Queue::playlist_turn`]), its count of chunks listed kept with the parent.

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

/// A job to store. Times are relative to the database's clock, which every worker shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub kind: Kind,
    /// The idempotency key: a second job with the same key is not stored.
    pub key: Option<String>,
    pub source: String,
    pub summary: String,
    pub payload: String,
    /// Due this long after it is stored.
    pub run_after_ms: i64,
    pub max_attempts: u32,
    /// Dead instead of retried when a retry would come later than this long after it is
    /// stored.
    pub deadline_after_ms: Option<i64>,
    /// The job this one reports on (notifications).
    pub parent: Option<String>,
}

/// A webhook token id to spend with what the webhook stored, in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpentToken {
    pub jti: String,
    /// Until when a replay could still pass the signature's time check (epoch ms).
    pub until_ms: i64,
}

/// What storing a webhook's job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// The job's id, and whether it is new (false: the key's job was there already).
    Job { id: String, new: bool },
    /// The token was spent before: nothing stored.
    Replay,
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
    /// How many attempts ended with the worker lost (its lease ran out).
    pub lost: i64,
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
    /// The lease's owner: this claim's own id (not shown).
    #[serde(skip)]
    pub lease_owner: Option<String>,
    #[serde(skip)]
    pub payload: String,
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    Succeeded {
        outputs: String,
    },
    /// Try again this long from now (the database's now).
    Retry {
        error: String,
        delay_ms: i64,
    },
    /// Not worth retrying (bad input).
    Failed {
        error: String,
    },
    /// Retries used up.
    Dead {
        error: String,
    },
    /// Fanned out: the job waits for its children (a chunked compose's chunk jobs, stored
    /// with this outcome) and is due again when none of them is queued or running.
    Waiting,
}

/// What [`Queue::prune`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub jobs: u64,
    pub events: u64,
    pub tokens: u64,
}

/// The notifications for a job that ended without its worker (built by the caller, stored
/// by the queue in the same transaction).
pub type NotifyFor<'a> = &'a (dyn Fn(&JobRow, &Outcome) -> Vec<NewJob> + Send + Sync);

/// The writer of a fanned-out HLS job's playlist, run by [`Queue::playlist_turn`] with how
/// many chunks the published playlist lists and the chunk jobs as committed; gives the new
/// count when it wrote the playlist.
pub type PlaylistWrite<'a> =
    &'a (dyn Fn(i64, Vec<JobRow>) -> BoxFuture<'a, Result<Option<i64>, String>> + Send + Sync);

/// The durable queue. Every lease and due time is on the database's clock.
pub trait Queue: Send + Sync {
    /// Stores a job unless one with its key exists, spending `token` in the same
    /// transaction (a token spent before stores nothing: [`Enqueued::Replay`]).
    fn enqueue(
        &self,
        job: NewJob,
        token: Option<SpentToken>,
    ) -> BoxFuture<'_, QueueResult<Enqueued>>;
    /// Takes the next due job of `kind` (or one whose lease ran out, counting that attempt
    /// as lost) under a lease for `owner`, this claim's own id, on behalf of `worker` (the
    /// process, as the API shows it).
    fn claim<'a>(
        &'a self,
        kind: Kind,
        worker: &'a str,
        owner: &'a str,
        lease_ms: i64,
    ) -> BoxFuture<'a, QueueResult<Option<JobRow>>>;
    /// Ends, as dead, the jobs of `kind` whose lease ran out with their attempts used up
    /// (a worker lost that many times: an input that crashes it), storing `notify`'s
    /// notifications with each; gives them.
    fn reap_lost<'a>(
        &'a self,
        kind: Kind,
        notify: NotifyFor<'a>,
    ) -> BoxFuture<'a, QueueResult<Vec<JobRow>>>;
    /// Renews `owner`'s lease and records progress; false when the lease was lost.
    fn heartbeat<'a>(
        &'a self,
        id: &'a str,
        owner: &'a str,
        lease_ms: i64,
        progress: f64,
    ) -> BoxFuture<'a, QueueResult<bool>>;
    /// Ends an attempt and stores `notifications` in the same transaction; false when
    /// `owner` no longer held the lease (nothing changed).
    fn finish<'a>(
        &'a self,
        id: &'a str,
        owner: &'a str,
        outcome: Outcome,
        notifications: Vec<NewJob>,
    ) -> BoxFuture<'a, QueueResult<bool>>;
    /// The processing jobs made by `parent` (a chunked compose's chunks), oldest first.
    fn children<'a>(&'a self, parent: &'a str) -> BoxFuture<'a, QueueResult<Vec<JobRow>>>;
    /// Runs `write` holding `parent`'s row, so that one writer at a time, on any machine,
    /// replaces the playlist of a fanned-out HLS job (a chunk that ended, or the job's last
    /// attempt) and none writes an older one after a newer; stores the count it gives. The
    /// inner error is `write`'s (nothing stored).
    fn playlist_turn<'a>(
        &'a self,
        parent: &'a str,
        write: PlaylistWrite<'a>,
    ) -> BoxFuture<'a, QueueResult<Result<(), String>>>;
    /// Gives a running job back (shutdown): queued again, the attempt not counted.
    fn release<'a>(&'a self, id: &'a str, owner: &'a str) -> BoxFuture<'a, QueueResult<()>>;
    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, QueueResult<Option<JobRow>>>;
    /// Newest first.
    fn list(&self, kind: Kind, limit: i64) -> BoxFuture<'_, QueueResult<Vec<JobRow>>>;
    /// (kind, state, count).
    fn counts(&self) -> BoxFuture<'_, QueueResult<Vec<(String, String, i64)>>>;
    /// Keeps a received event, spending `token` in the same transaction; false when the
    /// token was spent before (nothing kept).
    fn record_event<'a>(
        &'a self,
        source: &'a str,
        kind: &'a str,
        key: Option<&'a str>,
        body: &'a str,
        token: Option<SpentToken>,
    ) -> BoxFuture<'a, QueueResult<bool>>;
    /// The bodies of the events `source` sent under `key`, oldest first.
    fn events<'a>(
        &'a self,
        source: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, QueueResult<Vec<String>>>;
    /// Keeps the input's timeline drawing (SVG) with the job.
    fn set_timeline<'a>(&'a self, id: &'a str, svg: &'a str) -> BoxFuture<'a, QueueResult<()>>;
    fn timeline<'a>(&'a self, id: &'a str) -> BoxFuture<'a, QueueResult<Option<String>>>;
    /// Deletes events received and jobs ended more than `older_than_ms` ago, and token ids
    /// that can no longer be replayed.
    fn prune(&self, older_than_ms: i64) -> BoxFuture<'_, QueueResult<Pruned>>;
    /// The database's clock (epoch ms).
    fn now_ms(&self) -> BoxFuture<'_, QueueResult<i64>>;
}
