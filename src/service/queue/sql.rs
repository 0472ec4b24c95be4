//! [`Queue`] on sqlx, for an embedded SQLite file and for PostgreSQL: the same statements on
//! both, but for the claim, where PostgreSQL skips rows other workers hold locked.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};

use super::{JobRow, Kind, NewJob, Outcome, Queue, QueueResult};

/// The queue on sqlx: SQLite or PostgreSQL.
pub struct SqlQueue {
    /// Reads (and, on PostgreSQL, writes).
    pool: AnyPool,
    /// Writes. SQLite takes one writer at a time: one connection queues this process's
    /// writes in order instead of letting them collide and sleep in SQLite's busy handler.
    writer: AnyPool,
    postgres: bool,
    /// When expired token ids were last dropped.
    tokens_swept_ms: std::sync::atomic::AtomicI64,
}

const SCHEMA: [&str; 4] = [
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
        timeline TEXT
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
    "CREATE TABLE IF NOT EXISTS tokens (jti TEXT PRIMARY KEY, until_ms BIGINT NOT NULL)",
];

const COLUMNS: &str = "id, kind, key, source, summary, payload, state, attempts, max_attempts, \
    run_at, deadline, progress, last_error, outputs, parent, created_ms, started_ms, finished_ms, worker";

const CLAIM_SQLITE: &str = "UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2,
        attempts = attempts + 1, started_ms = COALESCE(started_ms, $3), worker = $1
    WHERE id = (SELECT id FROM jobs WHERE kind = $4
        AND ((state = 'queued' AND run_at <= $3) OR (state = 'running' AND lease_until < $3))
        ORDER BY run_at, created_ms LIMIT 1)
    RETURNING id, kind, key, source, summary, payload, state, attempts, max_attempts, run_at,
        deadline, progress, last_error, outputs, parent, created_ms, started_ms, finished_ms, worker";

const CLAIM_POSTGRES: &str =
    "UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2,
        attempts = attempts + 1, started_ms = COALESCE(started_ms, $3), worker = $1
    WHERE id = (SELECT id FROM jobs WHERE kind = $4
        AND ((state = 'queued' AND run_at <= $3) OR (state = 'running' AND lease_until < $3))
        ORDER BY run_at, created_ms LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING id, kind, key, source, summary, payload, state, attempts, max_attempts, run_at,
        deadline, progress, last_error, outputs, parent, created_ms, started_ms, finished_ms, worker";

impl SqlQueue {
    /// Opens (and creates) the queue: `sqlite:<path>` or a `postgres://` URL.
    pub async fn open(url: &str, max_connections: u32) -> QueueResult<Arc<SqlQueue>> {
        sqlx::any::install_default_drivers();
        let postgres = url.starts_with("postgres");
        let pool = AnyPoolOptions::new()
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
            AnyPoolOptions::new()
                .max_connections(1)
                .connect(url)
                .await?
        };
        for statement in SCHEMA {
            sqlx::query(statement).execute(&writer).await?;
        }
        Ok(Arc::new(SqlQueue {
            pool,
            writer,
            postgres,
            tokens_swept_ms: std::sync::atomic::AtomicI64::new(0),
        }))
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
    })
}

impl Queue for SqlQueue {
    fn enqueue(&self, job: NewJob) -> BoxFuture<'_, QueueResult<(String, bool)>> {
        Box::pin(async move {
            let id = uuid::Uuid::new_v4().simple().to_string();
            let inserted = sqlx::query(
                "INSERT INTO jobs (id, kind, key, source, summary, payload, state, max_attempts,
                    run_at, deadline, parent, created_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, $8, $9, $10, $11)
                 ON CONFLICT (key) DO NOTHING",
            )
            .bind(&id)
            .bind(job.kind.as_str())
            .bind(job.key.clone())
            .bind(&job.source)
            .bind(&job.summary)
            .bind(&job.payload)
            .bind(i64::from(job.max_attempts))
            .bind(job.run_at_ms)
            .bind(job.deadline_ms)
            .bind(job.parent.clone())
            .bind(job.run_at_ms)
            .execute(&self.writer)
            .await?
            .rows_affected();
            if inserted == 1 {
                return Ok((id, true));
            }
            let existing: String = sqlx::query("SELECT id FROM jobs WHERE key = $1")
                .bind(job.key)
                .fetch_one(&self.writer)
                .await?
                .try_get("id")?;
            Ok((existing, false))
        })
    }

    fn claim<'a>(
        &'a self,
        kind: Kind,
        owner: &'a str,
        lease_ms: i64,
        now_ms: i64,
    ) -> BoxFuture<'a, QueueResult<Option<JobRow>>> {
        Box::pin(async move {
            let sql = if self.postgres {
                CLAIM_POSTGRES
            } else {
                CLAIM_SQLITE
            };
            let row = sqlx::query(sql)
                .bind(owner)
                .bind(now_ms + lease_ms)
                .bind(now_ms)
                .bind(kind.as_str())
                .fetch_optional(&self.writer)
                .await?;
            row.as_ref().map(row_to_job).transpose()
        })
    }

    fn heartbeat<'a>(
        &'a self,
        id: &'a str,
        owner: &'a str,
        lease_until_ms: i64,
        progress: f64,
    ) -> BoxFuture<'a, QueueResult<bool>> {
        Box::pin(async move {
            let n = sqlx::query(
                "UPDATE jobs SET lease_until = $1, progress = $2
                 WHERE id = $3 AND lease_owner = $4 AND state = 'running'",
            )
            .bind(lease_until_ms)
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
        now_ms: i64,
    ) -> BoxFuture<'a, QueueResult<bool>> {
        Box::pin(async move {
            let (state, error, outputs, run_at, finished, progress) = match outcome {
                Outcome::Succeeded { outputs } => {
                    ("succeeded", None, Some(outputs), None, Some(now_ms), 100.0)
                }
                Outcome::Retry { error, run_at_ms } => {
                    ("queued", Some(error), None, Some(run_at_ms), None, 0.0)
                }
                Outcome::Failed { error } => ("failed", Some(error), None, None, Some(now_ms), 0.0),
                Outcome::Dead { error } => ("dead", Some(error), None, None, Some(now_ms), 0.0),
            };
            let n = sqlx::query(
                "UPDATE jobs SET state = $1, last_error = COALESCE($2, last_error),
                    outputs = COALESCE($3, outputs), run_at = COALESCE($4, run_at),
                    finished_ms = $5, progress = $6, lease_owner = NULL, lease_until = NULL
                 WHERE id = $7 AND lease_owner = $8 AND state = 'running'",
            )
            .bind(state)
            .bind(error)
            .bind(outputs)
            .bind(run_at)
            .bind(finished)
            .bind(progress)
            .bind(id)
            .bind(owner)
            .execute(&self.writer)
            .await?
            .rows_affected();
            Ok(n == 1)
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
        now_ms: i64,
    ) -> BoxFuture<'a, QueueResult<()>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO events (id, source, kind, key, body, received_ms)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(uuid::Uuid::new_v4().simple().to_string())
            .bind(source)
            .bind(kind)
            .bind(key)
            .bind(body)
            .bind(now_ms)
            .execute(&self.writer)
            .await?;
            Ok(())
        })
    }

    fn events<'a>(&'a self, key: &'a str) -> BoxFuture<'a, QueueResult<Vec<String>>> {
        Box::pin(async move {
            let rows =
                sqlx::query("SELECT body FROM events WHERE key = $1 ORDER BY received_ms, id")
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

    fn remember_token<'a>(
        &'a self,
        jti: &'a str,
        until_ms: i64,
        now_ms: i64,
    ) -> BoxFuture<'a, QueueResult<bool>> {
        Box::pin(async move {
            // Expired ids go once a minute, not on every call.
            let last = self
                .tokens_swept_ms
                .load(std::sync::atomic::Ordering::Relaxed);
            if now_ms - last > 60_000 || now_ms < last {
                self.tokens_swept_ms
                    .store(now_ms, std::sync::atomic::Ordering::Relaxed);
                sqlx::query("DELETE FROM tokens WHERE until_ms < $1")
                    .bind(now_ms)
                    .execute(&self.writer)
                    .await?;
            }
            let n = sqlx::query(
                "INSERT INTO tokens (jti, until_ms) VALUES ($1, $2)
                 ON CONFLICT (jti) DO UPDATE SET until_ms = excluded.until_ms
                 WHERE tokens.until_ms < $3",
            )
            .bind(jti)
            .bind(until_ms)
            .bind(now_ms)
            .execute(&self.writer)
            .await?
            .rows_affected();
            Ok(n == 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::queue::{Kind, NewJob, Outcome, Queue};

    /// A 100 ms lease on the next process job, for `worker` at `now_ms`.
    async fn claim(q: &SqlQueue, worker: &str, now_ms: i64) -> Option<JobRow> {
        q.claim(Kind::Process, worker, 100, now_ms).await.unwrap()
    }

    fn job(key: &str, run_at_ms: i64) -> NewJob {
        NewJob {
            kind: Kind::Process,
            key: Some(key.into()),
            source: "api".into(),
            summary: key.into(),
            payload: "{}".into(),
            run_at_ms,
            max_attempts: 3,
            deadline_ms: None,
            parent: None,
        }
    }

    #[tokio::test]
    async fn leases_retries_and_idempotency_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("q.db").display());
        let q = SqlQueue::open(&url, 4).await.unwrap();
        let (a, new) = q.enqueue(job("k1", 1_000)).await.unwrap();
        assert!(new);
        let (again, new) = q.enqueue(job("k1", 1_000)).await.unwrap();
        assert_eq!((again.as_str(), new), (a.as_str(), false));
        assert!(claim(&q, "w1", 999).await.is_none());
        let got = claim(&q, "w1", 1_000).await.unwrap();
        assert_eq!((got.id.as_str(), got.attempts), (a.as_str(), 1));
        assert!(claim(&q, "w2", 1_050).await.is_none());
        assert!(q.heartbeat(&a, "w1", 1_200, 50.0).await.unwrap());
        // w1 dies: its lease runs out and w2 takes the job over; w1's late finish is void.
        let over = claim(&q, "w2", 1_201).await.unwrap();
        assert_eq!(over.attempts, 2);
        assert!(!q.heartbeat(&a, "w1", 1_400, 60.0).await.unwrap());
        let done = Outcome::Succeeded {
            outputs: "[]".into(),
        };
        assert!(!q.finish(&a, "w1", done.clone(), 1_250).await.unwrap());
        let retry = Outcome::Retry {
            error: "network".into(),
            run_at_ms: 2_000,
        };
        assert!(q.finish(&a, "w2", retry, 1_250).await.unwrap());
        assert!(claim(&q, "w2", 1_999).await.is_none());
        let third = claim(&q, "w2", 2_000).await.unwrap();
        assert_eq!(third.last_error.as_deref(), Some("network"));
        assert!(q.finish(&a, "w2", done, 2_010).await.unwrap());
        let row = q.get(&a).await.unwrap().unwrap();
        assert_eq!((row.state.as_str(), row.progress), ("succeeded", 100.0));
        assert_eq!(
            q.counts().await.unwrap(),
            vec![("process".into(), "succeeded".into(), 1)]
        );
        assert!(q.remember_token("j", 5_000, 1_000).await.unwrap());
        assert!(!q.remember_token("j", 5_000, 1_001).await.unwrap());
        assert!(q.remember_token("j", 9_000, 6_000).await.unwrap());
        q.record_event("liveswitch", "x", Some("rec"), "{\"a\":1}", 5)
            .await
            .unwrap();
        assert_eq!(
            q.events("rec").await.unwrap(),
            vec!["{\"a\":1}".to_string()]
        );
    }
}
