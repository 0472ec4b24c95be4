//! `mosaic repair`.

use std::path::PathBuf;

use anyhow::Context;

use super::flags::SourceFlags;
use super::progress::{cancel_on_signals, progress_bar, show_progress};
use mosaic::compose::Control;
use mosaic::repair::{Align, AudioFormat, RepairOptions};

#[derive(clap::Args)]
pub struct Args {
    /// The recording: an archive (.zip), a folder, or an event (.json).
    input: PathBuf,
    /// The folder for the repaired files (created if missing); an input holding several
    /// sessions gets a subfolder per session.
    #[arg(short, long, value_name = "DIR")]
    output: PathBuf,
    #[command(flatten)]
    source: SourceFlags,
    #[command(flatten)]
    repair: RepairFlags,
    /// Print a JSON report on stdout.
    #[arg(long)]
    json: bool,
}

/// Repair's options, shared with `batch`.
#[derive(clap::Args)]
pub struct RepairFlags {
    /// stream: each file starts when its stream starts; archive: every file starts at
    /// the recording's start and lasts the whole span.
    #[arg(long, value_enum, default_value_t = Align::Stream)]
    align: Align,
    /// Write one aligned audio file per participant instead: opus (the recorded packets
    /// in Ogg, no re-encode; the default), flac or wav.
    #[arg(long, value_enum, value_name = "FORMAT", num_args = 0..=1, default_missing_value = "opus")]
    audio_only: Option<AudioFormat>,
    /// Decode and encode every stream again instead of copying packets (also done, for
    /// that stream only, when its segments cannot be joined by copying: a codec parameter
    /// changes between them). Video holes follow compose's freeze policy.
    #[arg(long)]
    reencode: bool,
}

impl RepairFlags {
    pub fn to_options(&self) -> RepairOptions {
        RepairOptions {
            align: self.align,
            audio_only: self.audio_only,
            reencode: self.reencode,
            strict: false,
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let opts = RepairOptions {
        strict: args.source.strict,
        ..args.repair.to_options()
    };
    let context = || format!("repairing {}", args.input.display());
    let recordings =
        mosaic::source::open(&args.input, &args.source.to_options()?).with_context(context)?;
    let several = recordings.len() > 1;
    let cancel = cancel_on_signals();
    let mut reports = Vec::new();
    for mut recording in recordings {
        let out_dir = match several {
            true => {
                mosaic::names::dir_under(&args.output, &mosaic::names::plain_name(&recording.key))
                    .with_context(context)?
            }
            false => args.output.clone(),
        };
        let bar = progress_bar("repairing", "streams");
        let progress = |done: u64, total: u64| show_progress(bar.as_ref(), done, total);
        let control = Control {
            progress: Some(&progress),
            cancel: Some(&cancel),
            published: None,
        };
        let result = mosaic::repair::repair_recording(&mut recording, &out_dir, &opts, &control);
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        let report = result.with_context(context)?;
        if !args.json {
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
            for s in &report.streams {
                eprintln!(
                    "wrote {} ({:.1} s, {} segments, {:.1} s of silence added, {})",
                    s.output.display(),
                    s.duration_ms as f64 / 1000.0,
                    s.segments,
                    s.silence_ms as f64 / 1000.0,
                    s.path
                );
            }
        }
        reports.push(report);
    }
    if args.json {
        super::print_json(&reports)?;
    }
    Ok(0)
}
