//! [`Queue`] on sqlx, for an embedded SQLite file and for PostgreSQL: the same statements on
//! both, but for the claim, where PostgreSQL skips rows other workers hold locked, and the
//! clock: every time is the database's (`{NOW}` in the statements), so workers on machines
//! whose clocks differ agree on leases and due times.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};

use super::{
    Enqueued, JobRow, Kind, NewJob, NotifyFor, Outcome, Pruned, Queue, QueueResult, SpentToken,
};

/// The queue on sqlx: SQLite or PostgreSQL.
pub struct SqlQueue {
    /// Reads (and, on PostgreSQL, writes).
    pool: AnyPool,
    /// Writes. SQLite takes one writer at a time: one connection queues this process's
    /// writes in order instead of letting them collide and sleep in SQLite's busy handler.
    writer: AnyPool,
    postgres: bool,
}

/// How long a caller waits for a PostgreSQL connection before the queue counts as
/// unavailable (the intake then answers 503 instead of holding the sender while the
/// database is down). SQLite is a local file: a wait there is only this process's own
/// writes queueing for the one writer, so it may take longer.
const ACQUIRE_TIMEOUT_POSTGRES: Duration = Duration::from_secs(5);
const ACQUIRE_TIMEOUT_SQLITE: Duration = Duration::from_secs(30);

const SCHEMA: [&str; 5] = [
    "CREATE TABLE IF NOT EXISTS jobs (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        key TEXT UNIQUE,
        source TEXT NOT NULL,
        summary TEXT NOT NULL,
        payload TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts BIGINT NOT NULL DEFAULT 0,
        max_attempts BIGINT NOT NULL,
        run_at BIGINT NOT NULL,
        deadline BIGINT,
        lease_owner TEXT,
        lease_until BIGINT,
        progress DOUBLE PRECISION NOT NULL DEFAULT 0,
        last_error TEXT,
        outputs TEXT,
        parent TEXT,
        created_ms BIGINT NOT NULL,
        started_ms BIGINT,
        finished_ms BIGINT,
        worker TEXT,
        timeline TEXT,
        lost BIGINT NOT NULL DEFAULT 0
    )",
    "CREATE INDEX IF NOT EXISTS jobs_due ON jobs (kind, state, run_at)",
    "CREATE TABLE IF NOT EXISTS events (
        id TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        kind TEXT NOT NULL,
        key TEXT,
        body TEXT NOT NULL,
        received_ms BIGINT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS events_key ON events (source, key)",
    "CREATE TABLE IF NOT EXISTS tokens (jti TEXT PRIMARY KEY, until_ms BIGINT NOT NULL)",
];

/// Columns added since the first schema, for queues created before them.
const MIGRATIONS: [&str; 1] = ["ALTER TABLE jobs ADD COLUMN lost BIGINT NOT NULL DEFAULT 0"];

const COLUMNS: &str = "id, kind, key, source, summary, payload, state, attempts, max_attempts, \
    lost, run_at, deadline, progress, last_error, outputs, parent, created_ms, started_ms, \
    finished_ms, worker, lease_owner";

/// The database's now in epoch milliseconds, as SQL.
const NOW_SQLITE: &str = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS BIGINT)";
const NOW_POSTGRES: &str = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";

/// A due job, or a running one whose lease ran out with attempts left: leased to $1 (for
/// worker $4) for $2 ms. A lost lease counts as a lost attempt, named in `last_error`.
const CLAIM: &str = "UPDATE jobs SET
        lost = lost + CASE WHEN state = 'running' THEN 1 ELSE 0 END,
        last_error = CASE WHEN state = 'running'
            THEN 'the worker was lost during attempt ' || CAST(attempts AS TEXT)
            ELSE last_error END,
        state = 'running', lease_owner = $1, lease_until = {NOW} + $2,
        attempts = attempts + 1, started_ms = COALESCE(started_ms, {NOW}), worker = $4
    WHERE id = (SELECT id FROM jobs WHERE kind = $3
        AND ((state = 'queued' AND run_at <= {NOW})
            OR (state = 'running' AND lease_until < {NOW} AND attempts < max_attempts))
        ORDER BY run_at, created_ms LIMIT 1 {LOCK})
    RETURNING {COLUMNS}";

/// Running jobs of a kind whose lease ran out with their attempts used up: dead.
const REAP: &str = "UPDATE jobs SET state = 'dead', lost = lost + 1,
        last_error = 'worker lost ' || CAST(lost + 1 AS TEXT) || ' times (after ' ||
            CAST(attempts AS TEXT) || ' attempts; the input may crash the worker)' ||
            COALESCE('; before: ' || last_error, ''),
        finished_ms = {NOW}, lease_owner = NULL, lease_until = NULL, progress = 0
    WHERE kind = $1 AND state = 'running' AND lease_until < {NOW} AND attempts >= max_attempts
    RETURNING {COLUMNS}";

/// Spends a token id unless it is spent and still within its window.
const SPEND_TOKEN: &str = "INSERT INTO tokens (jti, until_ms) VALUES ($1, $2)
    ON CONFLICT (jti) DO UPDATE SET until_ms = excluded.until_ms
    WHERE tokens.until_ms < {NOW}";

const INSERT_JOB: &str = "INSERT INTO jobs (id, kind, key, source, summary, payload, state,
        max_attempts, run_at, deadline, parent, created_ms)
    VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, {NOW} + $8, {NOW} + $9, $10, {NOW})
    ON CONFLICT (key) DO NOTHING";

/// The statements with the backend's clock and lock filled in.
struct Statements {
    claim: String,
    reap: String,
    spend_token: String,
    insert_job: String,
    now: &'static str,
}

impl Statements {
    fn new(postgres: bool) -> Statements {
        let now = if postgres { NOW_POSTGRES } else { NOW_SQLITE };
        let fill = |sql: &str| {
            sql.replace("{NOW}", now)
                .replace("{COLUMNS}", COLUMNS)
                .replace(
                    "{LOCK}",
                    if postgres {
                        "FOR UPDATE SKIP LOCKED"
                    } else {
                        ""
                    },
                )
        };
        Statements {
            claim: fill(CLAIM),
            reap: fill(REAP),
            spend_token: fill(SPEND_TOKEN),
            insert_job: fill(INSERT_JOB),
            now,
        }
    }
}

fn statements(postgres: bool) -> &'static Statements {
    static SQLITE: std::sync::OnceLock<Statements> = std::sync::OnceLock::new();
    static POSTGRES: std::sync::OnceLock<Statements> = std::sync::OnceLock::new();
    let cell = if postgres { &POSTGRES } else { &SQLITE };
    cell.get_or_init(|| Statements::new(postgres))
}

impl SqlQueue {
    /// Opens (and creates) the queue: `sqlite:<path>` or a `postgres://` URL.
    pub async fn open(url: &str, max_connections: u32) -> QueueResult<Arc<SqlQueue>> {
        sqlx::any::install_default_drivers();
        let postgres = url.starts_with("postgres");
        let acquire = if postgres {
            ACQUIRE_TIMEOUT_POSTGRES
        } else {
            ACQUIRE_TIMEOUT_SQLITE
        };
        let options = || AnyPoolOptions::new().acquire_timeout(acquire);
        let pool = options()
            .max_connections(max_connections)
            .connect(url)
            .await?;
        let writer = if postgres {
            pool.clone()
        } else {
            // Readers do not wait for the writer; every commit is on disk before 202.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
            options().max_connections(1).connect(url).await?
        };
        for statement in SCHEMA {
            sqlx::query(statement).execute(&writer).await?;
        }
        for statement in MIGRATIONS {
            if let Err(e) = sqlx::query(statement).execute(&writer).await {
                let text = e.to_string();
                if !text.contains("duplicate column") && !text.contains("already exists") {
                    return Err(e.into());
                }
            }
        }
        Ok(Arc::new(SqlQueue {
            pool,
            writer,
            postgres,
        }))
    }

    fn sql(&self) -> &'static Statements {
        statements(self.postgres)
    }
}

fn row_to_job(row: &sqlx::any::AnyRow) -> QueueResult<JobRow> {
    let outputs: Option<String> = row.try_get("outputs")?;
    Ok(JobRow {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        key: row.try_get("key")?,
        source: row.try_get("source")?,
        summary: row.try_get("summary")?,
        payload: row.try_get("payload")?,
        state: row.try_get("state")?,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        lost: row.try_get("lost")?,
        run_at_ms: row.try_get("run_at")?,
        deadline_ms: row.try_get("deadline")?,
        progress: row.try_get("progress")?,
        last_error: row.try_get("last_error")?,
        outputs: outputs.and_then(|o| serde_json::from_str(&o).ok()),
        parent: row.try_get("parent")?,
        created_ms: row.try_get("created_ms")?,
        started_ms: row.try_get("started_ms")?,
        finished_ms: row.try_get("finished_ms")?,
        worker: row.try_get("worker")?,
        lease_owner: row.try_get("lease_owner")?,
    })
}

type Tx<'c> = sqlx::Transaction<'c, sqlx::Any>;

/// Spends a token in `tx`; false when it was spent before.
async fn spend(tx: &mut Tx<'_>, sql: &Statements, token: &SpentToken) -> QueueResult<bool> {
    let n = sqlx::query(sqlx::AssertSqlSafe(sql.spend_token.clone()))
        .bind(&token.jti)
        .bind(token.until_ms)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// Inserts a job in `tx` unless its key is taken; gives (id, new).
async fn insert_job(
    tx: &mut Tx<'_>,
    sql: &Statements,
    job: &NewJob,
) -> QueueResult<(String, bool)> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let inserted = sqlx::query(sqlx::AssertSqlSafe(sql.insert_job.clone()))
        .bind(&id)
        .bind(job.kind.as_str())
        .bind(job.key.clone())
        .bind(&job.source)
        .bind(&job.summary)
        .bind(&job.payload)
        .bind(i64::from(job.max_attempts))
        .bind(job.run_after_ms)
        .bind(job.deadline_after_ms)
        .bind(job.parent.clone())
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if inserted == 1 {
        return Ok((id, true));
    }
    let existing: String = sqlx::query("SELECT id FROM jobs WHERE key = $1")
        .bind(job.key.clone())
        .fetch_one(&mut **tx)
        .await?
        .try_get("id")?;
    Ok((existing, false))
}

/// The parent of processing job `id`, if it has one, its row locked for this transaction
/// (PostgreSQL; SQLite's one writer serialises transactions anyway).
async fn lock_parent(tx: &mut Tx<'_>, postgres: bool, id: &str) -> QueueResult<Option<String>> {
    let parent: Option<String> =
        sqlx::query("SELECT parent FROM jobs WHERE id = $1 AND kind = 'process'")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?
            .map(|r| r.try_get::<Option<String>, _>("parent"))
            .transpose()?
            .flatten();
    if let (Some(parent), true) = (&parent, postgres) {
        sqlx::query("SELECT id FROM jobs WHERE id = $1 FOR UPDATE")
            .bind(parent)
            .fetch_optional(&mut **tx)
            .await?;
    }
    Ok(parent)
}

/// Makes a waiting parent due when none of its chunks is queued or running.
async fn wake_parent(tx: &mut Tx<'_>, sql: &Statements, parent: &str) -> QueueResult<()> {
    let wake = format!(
        "UPDATE jobs SET state = 'queued', run_at = {now}
         WHERE id = $1 AND state = 'waiting' AND NOT EXISTS (
            SELECT 1 FROM jobs c WHERE c.parent = $1 AND c.kind = 'process'
                AND c.state IN ('queued', 'running'))",
        now = sql.now
    );
    sqlx::query(sqlx::AssertSqlSafe(wake))
        .bind(parent)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Queue for SqlQueue {
    fn enqueue(
        &self,
        job: NewJob,
        token: Option<SpentToken>,
    ) -> BoxFuture<'_, QueueResult<Enqueued>> {
        Box::pin(async move {
            let mut tx = self.writer.begin().await?;
            if let Some(t) = &token
                && !spend(&mut tx, self.sql(), t).await?
            {
                tx.rollback().await?;
                return Ok(Enqueued::Replay);
            }
            let (id, new) = insert_job(&mut tx, self.sql(), &job).await?;
            tx.commit().await?;
            Ok(Enqueued::Job { id, new })
        })
    }

    fn claim<'a>(
        &'a self,
        kind: Kind,
        worker: &'a str,
        owner: &'a str,
        lease_ms: i64,
    ) -> BoxFuture<'a, QueueResult<Option<JobRow>>> {
        Box::pin(async move {
            let row = sqlx::query(sqlx::AssertSqlSafe(self.sql().claim.clone()))
                .bind(owner)
                .bind(lease_ms)
                .bind(kind.as_str())
                .bind(worker)
                .fetch_optional(&self.writer)
                .await?;
            row.as_ref().map(row_to_job).transpose()
        })
    }

    fn reap_lost<'a>(
        &'a self,
        kind: Kind,
        notify: NotifyFor<'a>,
    ) -> BoxFuture<'a, QueueResult<Vec<JobRow>>> {
        Box::pin(async move {
            let mut tx = self.writer.begin().await?;
            let rows = sqlx::query(sqlx::AssertSqlSafe(self.sql().reap.clone()))
                .bind(kind.as_str())
                .fetch_all(&mut *tx)
                .await?;
            let jobs = rows
                .iter()
                .map(row_to_job)
                .collect::<QueueResult<Vec<_>>>()?;
            for job in &jobs {
                let outcome = Outcome::Dead {
                    error: job.last_error.clone().unwrap_or_default(),
                };
                for n in notify(job, &outcome) {
                    insert_job(&mut tx, self.sql(), &n).await?;
                }
                if let Some(parent) = job.parent.as_deref().filter(|_| job.kind == "process") {
                    wake_parent(&mut tx, self.sql(), parent).await?;
                }
            }
            tx.commit().await?;
            Ok(jobs)
        })
    }

    fn heartbeat<'a>(
        &'a self,
        id: &'a str,
        owner: &'a str,
        lease_ms: i64,
        progress: f64,
    ) -> BoxFuture<'a, QueueResult<bool>> {
        Box::pin(async move {
            let sql = format!(
                "UPDATE jobs SET lease_until = {} + $1, progress = $2
                 WHERE id = $3 AND lease_owner = $4 AND state = 'running'",
                self.sql().now
            );
            let n = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(lease_ms)
                .bind(progress)
                .bind(id)
                .bind(owner)
                .execute(&self.writer)
                .await?
                .rows_affected();
            Ok(n == 1)
        })
    }

    fn finish<'a>(
        &'a self,
        id: &'a str,
        owner: &'a str,
        outcome: Outcome,
        notifications: Vec<NewJob>,
    ) -> BoxFuture<'a, QueueResult<bool>> {
        Box::pin(async move {
            let (state, error, outputs, delay, finished, progress) = match outcome {
                Outcome::Succeeded { outputs } => {
                    ("succeeded", None, Some(outputs), None, true, 100.0)
                }
                Outcome::Retry { error, delay_ms } => {
                    ("queued", Some(error), None, Some(delay_ms), false, 0.0)
                }
                Outcome::Failed { error } => ("failed", Some(error), None, None, true, 0.0),
                Outcome::Dead { error } => ("dead", Some(error), None, None, true, 0.0),
                Outcome::Waiting => ("waiting", None, None, None, false, 5.0),
            };
            let now = self.sql().now;
            let sql = format!(
                "UPDATE jobs SET state = $1, last_error = COALESCE($2, last_error),
                    outputs = COALESCE($3, outputs), run_at = COALESCE({now} + $4, run_at),
                    finished_ms = CASE WHEN $5 = 1 THEN {now} ELSE NULL END, progress = $6,
                    lease_owner = NULL, lease_until = NULL
                 WHERE id = $7 AND lease_owner = $8 AND state = 'running'"
            );
            let mut tx = self.writer.begin().await?;
            // A chunk: its parent's row is locked first, so that two chunks ending at once
            // on PostgreSQL do not each see the other still running and leave the parent
            // waiting for ever.
            let parent = lock_parent(&mut tx, self.postgres, id).await?;
            let n = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(state)
                .bind(error)
                .bind(outputs)
                .bind(delay)
                .bind(i64::from(finished))
                .bind(progress)
                .bind(id)
                .bind(owner)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            for job in &notifications {
                insert_job(&mut tx, self.sql(), job).await?;
            }
            if let Some(parent) = parent {
                wake_parent(&mut tx, self.sql(), &parent).await?;
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    fn children<'a>(&'a self, parent: &'a str) -> BoxFuture<'a, QueueResult<Vec<JobRow>>> {
        Box::pin(async move {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM jobs WHERE parent = $1 AND kind = 'process'
                 ORDER BY created_ms, id"
            ));
            let rows = sqlx::query(sql).bind(parent).fetch_all(&self.pool).await?;
            rows.iter().map(row_to_job).collect()
        })
    }

    fn release<'a>(&'a self, id: &'a str, owner: &'a str) -> BoxFuture<'a, QueueResult<()>> {
        Box::pin(async move {
            sqlx::query(
                "UPDATE jobs SET state = 'queued', attempts = attempts - 1, lease_owner = NULL,
                    lease_until = NULL, progress = 0
                 WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
            )
            .bind(id)
            .bind(owner)
            .execute(&self.writer)
            .await?;
            Ok(())
        })
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, QueueResult<Option<JobRow>>> {
        Box::pin(async move {
            let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM jobs WHERE id = $1"));
            let row = sqlx::query(sql).bind(id).fetch_optional(&self.pool).await?;
            row.as_ref().map(row_to_job).transpose()
        })
    }

    fn list(&self, kind: Kind, limit: i64) -> BoxFuture<'_, QueueResult<Vec<JobRow>>> {
        Box::pin(async move {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM jobs WHERE kind = $1 ORDER BY created_ms DESC, id LIMIT $2"
            ));
            let rows = sqlx::query(sql)
                .bind(kind.as_str())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
            rows.iter().map(row_to_job).collect()
        })
    }

    fn counts(&self) -> BoxFuture<'_, QueueResult<Vec<(String, String, i64)>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT kind, state, COUNT(*) AS n FROM jobs GROUP BY kind, state ORDER BY kind, state",
            )
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("kind")?, r.try_get("state")?, r.try_get("n")?)))
                .collect()
        })
    }

    fn record_event<'a>(
        &'a self,
        source: &'a str,
        kind: &'a str,
        key: Option<&'a str>,
        body: &'a str,
        token: Option<SpentToken>,
    ) -> BoxFuture<'a, QueueResult<bool>> {
        Box::pin(async move {
            let mut tx = self.writer.begin().await?;
            if let Some(t) = &token
                && !spend(&mut tx, self.sql(), t).await?
            {
                tx.rollback().await?;
                return Ok(false);
            }
            let sql = format!(
                "INSERT INTO events (id, source, kind, key, body, received_ms)
                 VALUES ($1, $2, $3, $4, $5, {})",
                self.sql().now
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(uuid::Uuid::new_v4().simple().to_string())
                .bind(source)
                .bind(kind)
                .bind(key)
                .bind(body)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    fn events<'a>(
        &'a self,
        source: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, QueueResult<Vec<String>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT body FROM events WHERE source = $1 AND key = $2
                 ORDER BY received_ms, id",
            )
            .bind(source)
            .bind(key)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(|r| Ok(r.try_get("body")?)).collect()
        })
    }

    fn set_timeline<'a>(&'a self, id: &'a str, svg: &'a str) -> BoxFuture<'a, QueueResult<()>> {
        Box::pin(async move {
            sqlx::query("UPDATE jobs SET timeline = $1 WHERE id = $2")
                .bind(svg)
                .bind(id)
                .execute(&self.writer)
                .await?;
            Ok(())
        })
    }

    fn timeline<'a>(&'a self, id: &'a str) -> BoxFuture<'a, QueueResult<Option<String>>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT timeline FROM jobs WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
            Ok(match row {
                Some(r) => r.try_get("timeline")?,
                None => None,
            })
        })
    }

    fn prune(&self, older_than_ms: i64) -> BoxFuture<'_, QueueResult<Pruned>> {
        Box::pin(async move {
            let now = self.sql().now;
            let run = |sql: String, bind: Option<i64>| async move {
                let q = sqlx::query(sqlx::AssertSqlSafe(sql));
                let q = match bind {
                    Some(b) => q.bind(b),
                    None => q,
                };
                QueueResult::Ok(q.execute(&self.writer).await?.rows_affected())
            };
            Ok(Pruned {
                jobs: run(
                    format!(
                        "DELETE FROM jobs WHERE state IN ('succeeded', 'failed', 'dead')
                         AND finished_ms < {now} - $1"
                    ),
                    Some(older_than_ms),
                )
                .await?,
                events: run(
                    format!("DELETE FROM events WHERE received_ms < {now} - $1"),
                    Some(older_than_ms),
                )
                .await?,
                tokens: run(format!("DELETE FROM tokens WHERE until_ms < {now}"), None).await?,
            })
        })
    }

    fn now_ms(&self) -> BoxFuture<'_, QueueResult<i64>> {
        Box::pin(async move {
            let sql = format!("SELECT {} AS now", self.sql().now);
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_one(&self.pool)
                .await?;
            Ok(row.try_get("now")?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::queue::{Kind, NewJob, Outcome, Queue};

    /// A 300 ms lease on the next process job, for `owner`.
    async fn claim(q: &SqlQueue, owner: &str) -> Option<JobRow> {
        q.claim(Kind::Process, "test", owner, 300).await.unwrap()
    }

    fn job(key: &str, run_after_ms: i64) -> NewJob {
        NewJob {
            kind: Kind::Process,
            key: Some(key.into()),
            source: "api".into(),
            summary: key.into(),
            payload: "{}".into(),
            run_after_ms,
            max_attempts: 3,
            deadline_after_ms: None,
            parent: None,
        }
    }

    fn note(parent: &JobRow) -> NewJob {
        NewJob {
            kind: Kind::Notify,
            key: Some(format!("n-{}", parent.id)),
            parent: Some(parent.id.clone()),
            ..job("n", 0)
        }
    }

    async fn open() -> (tempfile::TempDir, Arc<SqlQueue>) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("q.db").display());
        let q = SqlQueue::open(&url, 4).await.unwrap();
        (dir, q)
    }

    fn new_id(e: Enqueued) -> String {
        match e {
            Enqueued::Job { id, new: true } => id,
            other => panic!("{other:?}"),
        }
    }

    async fn sleep(ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    #[tokio::test]
    async fn leases_retries_and_idempotency_on_sqlite() {
        let (_dir, q) = open().await;
        let a = new_id(q.enqueue(job("k1", 0), None).await.unwrap());
        let again = q.enqueue(job("k1", 0), None).await.unwrap();
        assert_eq!(
            again,
            Enqueued::Job {
                id: a.clone(),
                new: false
            }
        );
        let got = claim(&q, "w1").await.unwrap();
        assert_eq!((got.id.as_str(), got.attempts), (a.as_str(), 1));
        assert!(claim(&q, "w2").await.is_none());
        assert!(q.heartbeat(&a, "w1", 300, 50.0).await.unwrap());
        // w1 dies: its lease runs out and w2 takes the job over, the lost attempt counted;
        // w1's late heartbeat and finish are void.
        sleep(350).await;
        let over = claim(&q, "w2").await.unwrap();
        assert_eq!((over.attempts, over.lost), (2, 1));
        assert!(
            over.last_error
                .unwrap()
                .contains("worker was lost during attempt 1")
        );
        assert!(!q.heartbeat(&a, "w1", 300, 60.0).await.unwrap());
        let done = Outcome::Succeeded {
            outputs: "[]".into(),
        };
        assert!(!q.finish(&a, "w1", done.clone(), vec![]).await.unwrap());
        let retry = Outcome::Retry {
            error: "network".into(),
            delay_ms: 200,
        };
        assert!(q.finish(&a, "w2", retry, vec![]).await.unwrap());
        assert!(claim(&q, "w2").await.is_none(), "not due yet");
        sleep(250).await;
        let third = claim(&q, "w3").await.unwrap();
        assert_eq!(third.last_error.as_deref(), Some("network"));
        let row = q.get(&a).await.unwrap().unwrap();
        assert!(q.finish(&a, "w3", done, vec![note(&row)]).await.unwrap());
        let row = q.get(&a).await.unwrap().unwrap();
        assert_eq!((row.state.as_str(), row.progress), ("succeeded", 100.0));
        assert_eq!(
            q.counts().await.unwrap(),
            vec![
                ("notify".into(), "queued".into(), 1),
                ("process".into(), "succeeded".into(), 1)
            ],
            "the notification is stored with the outcome"
        );
    }

    #[tokio::test]
    async fn a_job_whose_workers_are_lost_max_attempts_times_ends_dead() {
        let (_dir, q) = open().await;
        let a = new_id(q.enqueue(job("crash", 0), None).await.unwrap());
        for attempt in 1..=3 {
            let got = claim(&q, &format!("w{attempt}")).await.unwrap();
            assert_eq!(got.attempts, attempt);
            sleep(350).await; // the worker is lost: no heartbeat, no finish
        }
        assert!(
            claim(&q, "w4").await.is_none(),
            "attempts used up: not claimed again"
        );
        let notify = |job: &JobRow, outcome: &Outcome| {
            assert!(matches!(outcome, Outcome::Dead { .. }));
            vec![note(job)]
        };
        let reaped = q.reap_lost(Kind::Process, &notify).await.unwrap();
        assert_eq!(reaped.len(), 1);
        let row = q.get(&a).await.unwrap().unwrap();
        assert_eq!((row.state.as_str(), row.lost), ("dead", 3));
        let error = row.last_error.unwrap();
        assert!(error.starts_with("worker lost 3 times"), "{error}");
        let notes = q.list(Kind::Notify, 10).await.unwrap();
        assert_eq!(notes.len(), 1);
        assert!(
            q.reap_lost(Kind::Process, &notify)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn tokens_are_spent_with_what_they_stored() {
        let (_dir, q) = open().await;
        let far = q.now_ms().await.unwrap() + 60_000;
        let token = |jti: &str, until_ms| {
            Some(SpentToken {
                jti: jti.into(),
                until_ms,
            })
        };
        let a = q.enqueue(job("t1", 0), token("j1", far)).await.unwrap();
        assert!(matches!(a, Enqueued::Job { new: true, .. }));
        assert_eq!(
            q.enqueue(job("t2", 0), token("j1", far)).await.unwrap(),
            Enqueued::Replay
        );
        assert!(
            q.get_by_key_for_tests("t2").await.is_none(),
            "a replay stores nothing"
        );
        assert!(
            q.record_event(
                "liveswitch",
                "x",
                Some("app/rec"),
                "{\"a\":1}",
                token("j2", far)
            )
            .await
            .unwrap()
        );
        assert!(
            !q.record_event("liveswitch", "x", Some("app/rec"), "{}", token("j2", far))
                .await
                .unwrap()
        );
        assert_eq!(
            q.events("liveswitch", "app/rec").await.unwrap(),
            vec!["{\"a\":1}".to_string()]
        );
        assert!(
            q.events("enablex", "app/rec").await.unwrap().is_empty(),
            "events are the source's own"
        );
        // A token past its window may be used again (the signature check refuses it anyway).
        let past = q.now_ms().await.unwrap() - 1;
        assert!(
            q.record_event("x", "x", None, "{}", token("j3", past))
                .await
                .unwrap()
        );
        assert!(
            q.record_event("x", "x", None, "{}", token("j3", far))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn prune_deletes_what_is_old_and_keeps_what_runs() {
        let (_dir, q) = open().await;
        let done = new_id(q.enqueue(job("done", 0), None).await.unwrap());
        let c = claim(&q, "w").await.unwrap();
        let outcome = Outcome::Failed {
            error: "bad".into(),
        };
        assert!(q.finish(&c.id, "w", outcome, vec![]).await.unwrap());
        let queued = new_id(q.enqueue(job("later", 60_000), None).await.unwrap());
        q.record_event("opentok", "k", None, "{}", None)
            .await
            .unwrap();
        let past = q.now_ms().await.unwrap() - 1;
        q.record_event(
            "x",
            "x",
            None,
            "{}",
            Some(SpentToken {
                jti: "old".into(),
                until_ms: past,
            }),
        )
        .await
        .unwrap();
        sleep(20).await;
        let pruned = q.prune(10).await.unwrap();
        assert_eq!(
            pruned,
            Pruned {
                jobs: 1,
                events: 2,
                tokens: 1
            }
        );
        assert!(q.get(&done).await.unwrap().is_none());
        assert!(
            q.get(&queued).await.unwrap().is_some(),
            "a queued job stays"
        );
        assert_eq!(q.prune(10).await.unwrap(), Pruned::default());
    }

    impl SqlQueue {
        async fn get_by_key_for_tests(&self, key: &str) -> Option<String> {
            sqlx::query("SELECT id FROM jobs WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .unwrap()
                .map(|r| r.try_get("id").unwrap())
        }
    }
}
