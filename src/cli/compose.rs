//! `mosaic compose`.

use std::path::PathBuf;

use anyhow::Context;

use super::flags::{ComposeFlags, SourceFlags};
use super::progress::{cancel_on_signals, progress_bar, show_progress};
use mosaic::compose::{self, ComposeOptions, ComposeReport, Control};

#[derive(clap::Args)]
pub struct Args {
    /// The recording: an archive (.zip), a folder, or an event (.json).
    input: PathBuf,
    /// The output file; its extension chooses the format (.mp4, .webm, .mkv, .m4a, .opus).
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    #[command(flatten)]
    source: SourceFlags,
    #[command(flatten)]
    flags: ComposeFlags,
    /// Print a JSON report on stdout when done (an array when the input holds several
    /// sessions).
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let opts = ComposeOptions {
        strict: args.source.strict,
        ..args.flags.to_options()?
    };
    let context = || format!("composing {}", args.input.display());
    let recordings =
        mosaic::source::open(&args.input, &args.source.to_options()?).with_context(context)?;
    let several = recordings.len() > 1;
    let cancel = cancel_on_signals();
    let mut reports: Vec<ComposeReport> = Vec::new();
    for mut recording in recordings {
        let output = match several {
            true => super::with_key(&args.output, &recording.key),
            false => args.output.clone(),
        };
        let bar = progress_bar("composing", "ms");
        let progress = |pos: u64, total: u64| show_progress(bar.as_ref(), pos, total);
        let control = Control {
            progress: Some(&progress),
            cancel: Some(&cancel),
        };
        let result = compose::compose_recording(&mut recording, &output, &opts, &control);
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        let report = result.with_context(context)?;
        if !args.json {
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
            eprintln!(
                "wrote {} ({:.1} s, {} frames, {} streams) in {:.1} s, {:.1}x real time",
                report.output.display(),
                report.duration_ms as f64 / 1000.0,
                report.frames,
                report.streams,
                report.wall_ms as f64 / 1000.0,
                report.realtime_factor
            );
        }
        reports.push(report);
    }
    if args.json {
        super::print_json(&reports)?;
    }
    Ok(0)
}
