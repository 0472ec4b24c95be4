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
    /// The output file; its extension chooses the format (.mp4, .webm, .mkv, .m4a, .opus;
    /// .m3u8 for HLS: the playlist, its MPEG-TS segments beside it as <name>-NNNNN.ts).
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    #[command(flatten)]
    source: SourceFlags,
    #[command(flatten)]
    flags: ComposeFlags,
    /// Print a JSON report on stdout when done (an array when the input holds several
    /// sessions); with --speakers or --layout speaker it lists each participant's turns and
    /// talk time on the output's timeline.
    #[arg(long)]
    json: bool,
    /// Also write who spoke when as WebVTT captions: one cue a turn, on the output's
    /// timeline, `<v Label>Label</v>` (players show them; each audio track is decoded once
    /// more to find the speech).
    #[arg(long, value_name = "FILE.vtt")]
    speakers: Option<PathBuf>,
    /// MP4: a chapter at each change of main speaker, titled with who speaks (players and
    /// ffprobe list them; Nero chapters in the file's moov box).
    #[arg(long)]
    chapters: bool,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let opts = ComposeOptions {
        strict: args.source.strict,
        speakers: args.speakers.is_some(),
        chapters: args.chapters,
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
            published: None,
        };
        let result = compose::compose_recording(&mut recording, &output, &opts, &control);
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        let report = result.with_context(context)?;
        if let Some(path) = &args.speakers {
            let path = match several {
                true => super::with_key(path, &recording.key),
                false => path.clone(),
            };
            write_vtt(&path, &report)?;
        }
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

/// The report's speakers as WebVTT captions, written whole or not at all.
fn write_vtt(path: &std::path::Path, report: &ComposeReport) -> anyhow::Result<()> {
    let speakers = report.speakers.as_deref().unwrap_or_default();
    let cues: Vec<(&str, &[mosaic::speech::Span])> = speakers
        .iter()
        .map(|s| (s.label.as_str(), s.turns.as_slice()))
        .collect();
    mosaic::output::write_atomic(path, mosaic::speech::vtt::render(&cues).as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
