//! `mosaic batch`.

use std::path::PathBuf;

use anyhow::Context;

use super::flags::{ComposeFlags, SourceFlags};
use super::progress::cancel_on_signals;
use super::repair::RepairFlags;
use mosaic::batch::{BatchOptions, Mode};

#[derive(clap::Args)]
pub struct Args {
    /// A folder of inputs: archives (*.zip), unzipped archive folders, LiveSwitch
    /// recordings folders, events and notifications (*.json).
    input: PathBuf,
    /// The folder for outputs and report.json (created if missing).
    #[arg(short, long, value_name = "DIR")]
    output: PathBuf,
    /// compose: one video per recording; repair: a folder of per-stream files per recording.
    #[arg(long, value_enum, default_value_t = Mode::Compose)]
    mode: Mode,
    /// Inputs processed at once [default: half the cores for compose, which keeps two
    /// cores busy per input; all cores for repair].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    jobs: Option<u32>,
    /// Redo inputs whose output already exists.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    source: SourceFlags,
    #[command(flatten)]
    flags: ComposeFlags,
    #[command(flatten)]
    repair: RepairFlags,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let opts = BatchOptions {
        mode: args.mode,
        jobs: args
            .jobs
            .map_or_else(|| mosaic::batch::default_jobs(args.mode), |j| j as usize),
        force: args.force,
        compose: mosaic::compose::ComposeOptions {
            strict: args.source.strict,
            ..args.flags.to_options()?
        },
        repair: mosaic::repair::RepairOptions {
            strict: args.source.strict,
            ..args.repair.to_options()
        },
        source: args.source.to_options()?,
    };
    let cancel = cancel_on_signals();
    let view = BatchView::new(
        mosaic::batch::list_archives(&args.input)
            .map(|a| a.len())
            .unwrap_or(0),
    );
    let report = mosaic::batch::run(&args.input, &args.output, &opts, &cancel, &|e| {
        view.event(e)
    })
    .with_context(|| format!("batch over {}", args.input.display()))?;
    view.finish();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    print_summary(&report);
    if report.failed() > 0 {
        return Ok(1);
    }
    Ok(0)
}

/// The batch's progress on a terminal: a line per archive in flight and an overall bar;
/// elsewhere, one line per finished archive.
struct BatchView {
    multi: Option<indicatif::MultiProgress>,
    total: Option<indicatif::ProgressBar>,
    lines: std::sync::Mutex<Vec<(PathBuf, indicatif::ProgressBar)>>,
}

impl BatchView {
    fn new(archives: usize) -> BatchView {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() {
            return BatchView {
                multi: None,
                total: None,
                lines: std::sync::Mutex::new(Vec::new()),
            };
        }
        let multi = indicatif::MultiProgress::new();
        let total = multi.add(indicatif::ProgressBar::new(archives as u64));
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "inputs [{bar:40}] {pos}/{len}, {elapsed} elapsed, ETA {eta}",
        ) {
            total.set_style(style.progress_chars("=> "));
        }
        total.enable_steady_tick(std::time::Duration::from_millis(500));
        BatchView {
            multi: Some(multi),
            total: Some(total),
            lines: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn event(&self, event: mosaic::batch::Event<'_>) {
        use mosaic::batch::Event;
        let name = |p: &std::path::Path| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        match event {
            Event::Started { archive } => {
                if let (Some(multi), Ok(mut lines)) = (&self.multi, self.lines.lock()) {
                    let line = multi.add(indicatif::ProgressBar::new_spinner());
                    line.set_message(format!("{} …", name(archive)));
                    line.enable_steady_tick(std::time::Duration::from_millis(200));
                    lines.push((archive.to_path_buf(), line));
                }
            }
            Event::Finished { outcome } => {
                let text = format!(
                    "{:<8} {}{}",
                    format!("{:?}", outcome.status).to_lowercase(),
                    name(&outcome.archive),
                    outcome
                        .error
                        .as_ref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                );
                match (&self.multi, self.lines.lock()) {
                    (Some(multi), Ok(mut lines)) => {
                        if let Some(i) = lines.iter().position(|(p, _)| *p == outcome.archive) {
                            let (_, line) = lines.remove(i);
                            line.finish_and_clear();
                            multi.remove(&line);
                        }
                        let _ = multi.println(text);
                        if let Some(total) = &self.total {
                            total.inc(1);
                        }
                    }
                    _ => eprintln!("{text}"),
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(total) = &self.total {
            total.finish_and_clear();
        }
    }
}

/// The end-of-run table, on stderr.
fn print_summary(report: &mosaic::batch::BatchReport) {
    eprintln!(
        "\n{:<8} {:>9} {:>8}  {:<32} output / error",
        "status", "media s", "wall s", "input"
    );
    for o in &report.archives {
        eprintln!(
            "{:<8} {:>9} {:>8.1}  {:<32} {}",
            format!("{:?}", o.status).to_lowercase(),
            o.duration_ms
                .map_or("-".into(), |d| format!("{:.1}", d as f64 / 1000.0)),
            o.wall_ms as f64 / 1000.0,
            o.archive
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            o.error
                .clone()
                .unwrap_or_else(|| o.output.display().to_string())
        );
    }
    eprintln!(
        "{} outputs: {} done, {} skipped, {} failed, in {:.1} s with {} jobs",
        report.archives.len(),
        report
            .archives
            .iter()
            .filter(|o| o.status == mosaic::batch::Status::Done)
            .count(),
        report
            .archives
            .iter()
            .filter(|o| o.status == mosaic::batch::Status::Skipped)
            .count(),
        report.failed(),
        report.wall_ms as f64 / 1000.0,
        report.jobs
    );
}
