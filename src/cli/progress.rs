//! What long work shows on a terminal, and how Ctrl-C stops it.

/// A flag set by Ctrl-C: long work checks it, stops, and leaves no partial output.
pub fn cancel_on_ctrl_c() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = cancel.clone();
    let _ = ctrlc::set_handler(move || flag.store(true, std::sync::atomic::Ordering::Relaxed));
    cancel
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
