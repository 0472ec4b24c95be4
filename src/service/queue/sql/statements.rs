//! The SQL of the queue: its schema, the columns a job row is read with, and the statements
//! whose clock (`{NOW}`) and claim lock (`{LOCK}`) differ between SQLite and PostgreSQL.

pub(super) const SCHEMA: [&str; 5] = [
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
        lost BIGINT NOT NULL DEFAULT 0,
        listed BIGINT NOT NULL DEFAULT 0
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
pub(super) const MIGRATIONS: [&str; 2] = [
    "ALTER TABLE jobs ADD COLUMN lost BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE jobs ADD COLUMN listed BIGINT NOT NULL DEFAULT 0",
];

pub(super) const COLUMNS: &str = "id, kind, key, source, summary, payload, state, attempts, max_attempts, \
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

/// The processing jobs made by a parent (a chunked compose's chunks), oldest first.
const CHILDREN: &str = "SELECT {COLUMNS} FROM jobs WHERE parent = $1 AND kind = 'process'
    ORDER BY created_ms, id";

/// The statements with the backend's clock and lock filled in.
pub(super) struct Statements {
    pub(super) claim: String,
    pub(super) reap: String,
    pub(super) spend_token: String,
    pub(super) insert_job: String,
    pub(super) children: String,
    pub(super) now: &'static str,
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
            children: fill(CHILDREN),
            now,
        }
    }
}

/// The backend's statements, filled in once.
pub(super) fn statements(postgres: bool) -> &'static Statements {
    static SQLITE: std::sync::OnceLock<Statements> = std::sync::OnceLock::new();
    static POSTGRES: std::sync::OnceLock<Statements> = std::sync::OnceLock::new();
    let cell = if postgres { &POSTGRES } else { &SQLITE };
    cell.get_or_init(|| Statements::new(postgres))
}
