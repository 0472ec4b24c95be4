//! Test-only faults: a worker process that crashes at a chosen point, as an input that kills
//! GStreamer would make it, so the tests can prove the queue survives it.
//!
//! `TEST_MOSAIC_CRASH=<point>:<text>` aborts the process at `point` (`input`: as a job starts
//! on its input; `committed`: right after a job's outcome and notifications are stored) for a
//! job whose summary contains `text`. `TEST_MOSAIC_PAUSE=<point>:<text>` holds the job there
//! for [`PAUSE`] instead (`segment`: right after an HLS segment is delivered, for a subject
//! of the summary and ` attempt <n>`), so that a test can kill the worker at that point. Both
//! exist only in debug builds (`cfg(debug_assertions)`, which `cargo test` builds); a release
//! build (`cargo build --release`, the install script) compiles them to nothing and never
//! reads the variables.

/// How long `TEST_MOSAIC_PAUSE` holds a job.
pub const PAUSE: std::time::Duration = std::time::Duration::from_secs(3);

/// Whether the test switch `var` names this point and subject (debug builds only).
#[cfg(debug_assertions)]
fn named(var: &str, point: &str, subject: &str) -> bool {
    let Ok(spec) = std::env::var(var) else {
        return false;
    };
    spec.split_once(':')
        .is_some_and(|(p, text)| p == point && subject.contains(text))
}

/// Aborts the process when the test switch names this point and subject (debug builds only).
#[cfg(debug_assertions)]
pub fn crash_if(point: &str, subject: &str) {
    if named("TEST_MOSAIC_CRASH", point, subject) {
        eprintln!("TEST_MOSAIC_CRASH: aborting at {point} for {subject}");
        std::process::abort();
    }
}

/// Holds the calling thread for [`PAUSE`] when the test switch names this point and subject
/// (debug builds only).
#[cfg(debug_assertions)]
pub fn pause_if(point: &str, subject: &str) {
    if named("TEST_MOSAIC_PAUSE", point, subject) {
        eprintln!("TEST_MOSAIC_PAUSE: holding at {point} for {subject}");
        std::thread::sleep(PAUSE);
    }
}

/// Aborts the process when the test switch names this point and subject (debug builds only).
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn crash_if(_point: &str, _subject: &str) {}

/// Holds the calling thread when the test switch names this point (debug builds only).
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn pause_if(_point: &str, _subject: &str) {}
