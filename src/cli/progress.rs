//! What long work shows on a terminal, and how a signal (Ctrl-C, SIGTERM, SIGHUP) stops it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// The signal that stopped the run (0: none).
fn stopped_by() -> &'static Arc<AtomicUsize> {
    static STOPPED_BY: OnceLock<Arc<AtomicUsize>> = OnceLock::new();
    STOPPED_BY.get_or_init(Default::default)
}

/// A flag set by Ctrl-C (SIGINT), SIGTERM or SIGHUP: long work checks it, stops within a
/// second, and leaves no partial output and no temporary files. A second signal ends the
/// process at once (what it leaves, the next run sweeps).
pub fn cancel_on_signals() -> Arc<AtomicBool> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    use signal_hook::flag;
    let cancel = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        // Registered first, so it sees the flag as the previous signal left it.
        let _ = flag::register_conditional_shutdown(sig, 128 + sig, cancel.clone());
        let _ = flag::register(sig, cancel.clone());
        let _ = flag::register_usize(sig, stopped_by().clone(), sig as usize);
    }
    cancel
}

/// The exit code of a run a signal stopped: 128 + the signal (130 for Ctrl-C).
pub fn signal_exit_code() -> u8 {
    match stopped_by().load(Ordering::Relaxed) {
        0 => 130,
        sig => u8::try_from(128 + sig).unwrap_or(130),
    }
}

pub fn show_progress(bar: Option<&indicatif::ProgressBar>, pos: u64, total: u64) {
    if let Some(bar) = bar {
        bar.set_length(total);
        bar.set_position(pos);
    }
}

/// A progress bar with ETA when stderr is a terminal; nothing otherwise.
pub fn progress_bar(what: &str, unit: &str) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(1);
    if let Ok(style) = indicatif::ProgressStyle::with_template(&format!(
        "{{spinner}} {what} [{{bar:40}}] {{pos}}/{{len}} {unit}, {{elapsed}} elapsed, ETA {{eta}}"
    )) {
        bar.set_style(style.progress_chars("=> "));
    }
    Some(bar)
}
