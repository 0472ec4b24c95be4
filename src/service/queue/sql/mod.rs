//! [`Queue`] on sqlx, for an embedded SQLite file and for PostgreSQL: the same statements on
//! both, but for the claim, where PostgreSQL skips rows other workers hold locked, and the
//! clock: every time is the database's (`{NOW}` in the statements), so workers on machines
//! whose clocks differ agree on leases and due times.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};

use statements::{COLUMNS, MIGRATIONS, SCHEMA, Statements, statements};

use super::{
    Enqueued, JobRow, Kind, NewJob, NotifyFor, Outcome, PlaylistWrite, Pruned, Queue, QueueResult,
    SpentToken,
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
            let sql = sqlx::AssertSqlSafe(self.sql().children.clone());
            let rows = sqlx::query(sql).bind(parent).fetch_all(&self.pool).await?;
            rows.iter().map(row_to_job).collect()
        })
    }

    fn playlist_turn<'a>(
        &'a self,
        parent: &'a str,
        write: PlaylistWrite<'a>,
    ) -> BoxFuture<'a, QueueResult<Result<(), String>>> {
        Box::pin(async move {
            let mut tx = self.writer.begin().await?;
            // The row is locked (PostgreSQL) or the database is (SQLite) from this write
            // until the end of the transaction.
            let row = sqlx::query("UPDATE jobs SET listed = listed WHERE id = $1 RETURNING listed")
                .bind(parent)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(row) = row else {
                tx.rollback().await?;
                return Ok(Err(format!("no job {parent}")));
            };
            let listed: i64 = row.try_get("listed")?;
            let sql = sqlx::AssertSqlSafe(self.sql().children.clone());
            let chunks = sqlx::query(sql)
                .bind(parent)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(row_to_job)
                .collect::<QueueResult<Vec<_>>>()?;
            match write(listed, chunks).await {
                Ok(Some(now_listed)) => {
                    sqlx::query("UPDATE jobs SET listed = $1 WHERE id = $2")
                        .bind(now_listed)
                        .bind(parent)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(Ok(()))
                }
                Ok(None) => {
                    tx.rollback().await?;
                    Ok(Ok(()))
                }
                Err(e) => {
                    tx.rollback().await?;
                    Ok(Err(e))
                }
            }
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

mod statements;
#[cfg(test)]
mod tests;
