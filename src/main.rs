//! The `mosaic` command line: a thin layer over the library that parses flags, prints, and
//! maps errors to exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use mosaic::inspect::{self, InspectOptions};
use mosaic::{ErrorClass, sample};

const EXIT_CODES: &str = "\
Exit codes:
  0   success
  2   bad command line (unknown flag, missing argument)
  65  bad input: the archive, its manifest or a media file is malformed, hostile or
      inconsistent (a corrupt or truncated ZIP, unsafe entry names, a zip bomb, a missing
      or empty media file, an unknown codec); fix or replace the input, retrying won't help
  66  the input file cannot be found or opened
  70  internal failure: writing output failed, GStreamer or an element is missing; worth
      retrying once the machine is fixed";

/// Turns Vonage/OpenTok individual-stream archives into something people can watch.
#[derive(Parser)]
#[command(name = "mosaic", version, about, after_long_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show what an archive holds: streams, segments, tracks, timestamps and every gap.
    ///
    /// Reads the ZIP in place (nothing is extracted), checks the manifest against the
    /// files, and scans every container. Times of streams and segments are on the archive
    /// timeline (ms from the manifest's createdAt); times of frames and gaps are each
    /// container's own.
    ///
    /// Examples:
    ///   mosaic inspect archive.zip
    ///   mosaic inspect archive.zip --json | jq '.streams[].segments[].tracks[].gaps'
    ///   mosaic inspect archive.zip --svg timeline.svg --min-gap-ms 500
    #[command(verbatim_doc_comment, after_long_help = EXIT_CODES)]
    Inspect {
        /// The individual-stream archive (.zip).
        archive: PathBuf,
        /// Print the report as JSON on stdout instead of a table.
        #[arg(long)]
        json: bool,
        /// Also draw the timeline (streams, segments, gaps) as an SVG file.
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
        /// Report jumps longer than this as gaps, for audio and video alike
        /// [default: 250 for video, 60 for audio].
        #[arg(long, value_name = "MS", value_parser = clap::value_parser!(i64).range(1..))]
        min_gap_ms: Option<i64>,
    },
    /// Make a deterministic sample archive (for trying mosaic out, tests and benchmarks).
    ///
    /// Encodes synthetic streams with GStreamer: a coloured picture and a tone per stream,
    /// with sync marks (a white flash and a loud beep) at known times, audio and video
    /// mutes (no frames at all, as the media server records them) and segments.
    ///
    /// Examples:
    ///   mosaic sample call.zip
    ///   mosaic sample call.zip --preset h264
    ///   mosaic sample call.zip --spec my-call.json
    #[command(verbatim_doc_comment, after_long_help = EXIT_CODES)]
    Sample {
        /// Where to write the archive (.zip).
        output: PathBuf,
        /// A built-in archive description.
        #[arg(long, value_enum, default_value_t = sample::Preset::Demo, conflicts_with = "spec")]
        preset: sample::Preset,
        /// A JSON archive description (see `mosaic::sample::ArchiveSpec`).
        #[arg(long, value_name = "FILE")]
        spec: Option<PathBuf>,
        /// Print the description used as JSON, and write nothing.
        #[arg(long)]
        print_spec: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mosaic: {err:#}");
            ExitCode::from(exit_code(&err))
        }
    }
}

fn exit_code(err: &anyhow::Error) -> u8 {
    let class = err
        .chain()
        .find_map(|e| e.downcast_ref::<mosaic::Error>())
        .map(mosaic::Error::class);
    match class {
        Some(ErrorClass::BadInput) => 65,
        Some(ErrorClass::NoInput) => 66,
        Some(ErrorClass::Internal) | None => 70,
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Inspect {
            archive,
            json,
            svg,
            min_gap_ms,
        } => {
            let mut opts = InspectOptions::default();
            if let Some(ms) = min_gap_ms {
                opts.video_gap_ms = ms;
                opts.audio_gap_ms = ms;
            }
            let report = inspect::inspect_archive(&archive, &opts)
                .with_context(|| format!("inspecting {}", archive.display()))?;
            if let Some(path) = svg {
                mosaic::output::write_atomic(&path, inspect::svg::render(&report).as_bytes())?;
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", inspect::table::render(&report));
            }
            Ok(())
        }
        Command::Sample {
            output,
            preset,
            spec,
            print_spec,
        } => {
            let spec = match spec {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    serde_json::from_str(&text)
                        .map_err(|e| mosaic::Error::InvalidSpec(e.to_string()))
                        .with_context(|| format!("reading {}", path.display()))?
                }
                None => preset.spec(),
            };
            if print_spec {
                println!("{}", serde_json::to_string_pretty(&spec)?);
                return Ok(());
            }
            let written = sample::write_archive(&spec, &output)
                .with_context(|| format!("writing sample archive {}", output.display()))?;
            eprintln!(
                "wrote {} ({} streams, {} files)",
                output.display(),
                spec.streams.len(),
                written.files
            );
            Ok(())
        }
    }
}
