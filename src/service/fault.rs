//! Test-only faults: a worker process that crashes at a chosen point, as an input that kills
//! GStreamer would make it, so the tests can prove the queue survives it.
//!
//! `TEST_MOSAIC_CRASH=<point>:<text>` aborts the process at `point` (`input`: as a job starts
//! on its input; `committed`: right after a job's outcome and notifications are stored) for a
//! job whose summary contains `text`. It exists only in debug builds (`cfg(debug_assertions)`,
//! which `cargo test` builds); a release build (`cargo build --release`, the install script)
//! compiles it to nothing and never reads the variable.

/// Aborts the process when the test switch names this point and subject (debug builds only).
#[cfg(debug_assertions)]
pub fn crash_if(point: &str, subject: &str) {
    let Ok(spec) = std::env::var("TEST_MOSAIC_CRASH") else {
        return;
    };
    if let Some((p, text)) = spec.split_once(':')
        && p == point
        && subject.contains(text)
    {
        eprintln!("TEST_MOSAIC_CRASH: aborting at {point} for {subject}");
        std::process::abort();
    }
}

/// Aborts the process when the test switch names this point and subject (debug builds only).
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn crash_if(_point: &str, _subject: &str) {}
