//! `mosaic inspect`.

use std::path::PathBuf;

use anyhow::Context;

use super::flags::SourceFlags;
use mosaic::inspect::{self, InspectOptions};

#[derive(clap::Args)]
pub struct Args {
    /// The recording: an archive (.zip), a folder, or an event (.json).
    input: PathBuf,
    #[command(flatten)]
    source: SourceFlags,
    /// Print the report as JSON on stdout instead of a table (an array when the input
    /// holds several sessions).
    #[arg(long)]
    json: bool,
    /// Also draw the timeline (streams, segments, gaps) as an SVG file.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Report jumps longer than this as gaps, for audio and video alike
    /// [default: 250 for video, 60 for audio].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(i64).range(1..))]
    min_gap_ms: Option<i64>,
    /// Also find when each participant spoke, from their own sound (every audio track is
    /// decoded once, about 1,400x real time a stream; without it inspect reads only the
    /// containers): `speech` (turns on the timeline) and `talk_ms` per stream in --json,
    /// talk time, share and turns in the table, a green band under each row in --svg.
    #[arg(long)]
    speech: bool,
    /// With --speech: pauses up to this long (between words, between sentences) do not end
    /// a turn.
    #[arg(long, value_name = "MS", default_value_t = mosaic::speech::Params::default().max_pause_ms,
          value_parser = clap::value_parser!(i64).range(0..10_000))]
    max_pause_ms: i64,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let mut opts = InspectOptions::default();
    if let Some(ms) = args.min_gap_ms {
        opts.video_gap_ms = ms;
        opts.audio_gap_ms = ms;
    }
    let context = || format!("inspecting {}", args.input.display());
    let recordings =
        mosaic::source::open(&args.input, &args.source.to_options()?).with_context(context)?;
    let several = recordings.len() > 1;
    let mut reports = Vec::with_capacity(recordings.len());
    for mut recording in recordings {
        let mut report = inspect::inspect_recording(&mut recording, &opts).with_context(context)?;
        if args.speech {
            let params = mosaic::speech::Params {
                max_pause_ms: args.max_pause_ms,
                ..Default::default()
            };
            mosaic::speech::add_to_report(&mut report, &mut recording, &params)
                .with_context(context)?;
        }
        if let Some(path) = &args.svg {
            let path = match several {
                true => super::with_key(path, &recording.key),
                false => path.clone(),
            };
            mosaic::output::write_atomic(&path, inspect::svg::render(&report).as_bytes())?;
        }
        reports.push(report);
    }
    if args.json {
        super::print_json(&reports)?;
    } else {
        for report in &reports {
            print!("{}", inspect::table::render(report));
        }
    }
    Ok(0)
}
