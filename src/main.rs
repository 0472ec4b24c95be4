//! The `mosaic` command line: a thin layer over the library that parses flags, prints, and
//! maps errors to exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use mosaic::compose::plan::VideoMutePolicy;
use mosaic::compose::{self, ComposeOptions, Control, OutputFormat, Speed};
use mosaic::inspect::{self, InspectOptions};
use mosaic::layout::{CustomLayout, Layout};
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
      retrying once the machine is fixed
  130 interrupted (Ctrl-C); no output was left behind
  1   batch: one or more archives failed (the others are done; see report.json)";

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
    /// Compose a whole archive into one video: everybody where they were in time.
    ///
    /// One GStreamer pass: every segment is decoded once, enters at its place on the
    /// archive timeline, and the grid, the audio mix and the encode happen together. Output
    /// time 0 is the earliest startTimeOffset; the output lasts until the last
    /// stopTimeOffset (or --from/--to on the archive timeline). Audio gaps become
    /// silence; video gaps follow --video-mute. A stream keeps its tile between its
    /// segments and shows its label on a dark tile while away. The output is written
    /// under a temporary name and renamed only when complete.
    ///
    /// Examples:
    ///   mosaic compose call.zip -o call.mp4
    ///   mosaic compose call.zip -o call.webm --layout verticalPresentation --labels
    ///   mosaic compose call.zip -o talk.m4a --from 1:30 --to 12:00
    ///   mosaic compose call.zip -o call.mp4 --layout custom --layout-file regions.json
    #[command(verbatim_doc_comment, after_long_help = EXIT_CODES)]
    Compose {
        /// The individual-stream archive (.zip).
        archive: PathBuf,
        /// The output file; its extension chooses the format (.mp4, .webm, .m4a, .opus).
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        #[command(flatten)]
        flags: ComposeFlags,
        /// Print a JSON report on stdout when done.
        #[arg(long)]
        json: bool,
    },
    /// Repair an archive into one standalone, playable file per participant.
    ///
    /// No re-encode: every packet is copied, a stream's segments are joined, audio
    /// holes (mutes, time between segments) are filled with silence so that sounds stay
    /// where they were recorded in any player, and each file gets a Duration and Cues
    /// (seekable). Files are named <streamId>-<label>.webm (or .mkv, as the input).
    ///
    /// Examples:
    ///   mosaic repair call.zip -o tracks/
    ///   mosaic repair call.zip -o tracks/ --align archive --json
    ///   mosaic repair call.zip -o podcast/ --align archive --audio-only wav
    #[command(verbatim_doc_comment, after_long_help = EXIT_CODES)]
    Repair {
        /// The individual-stream archive (.zip).
        archive: PathBuf,
        /// The folder for the repaired files (created if missing).
        #[arg(short, long, value_name = "DIR")]
        output: PathBuf,
        /// stream: each file starts when its stream starts; archive: every file starts at
        /// the archive's start and lasts the whole span.
        #[arg(long, value_enum, default_value_t = mosaic::repair::Align::Stream)]
        align: mosaic::repair::Align,
        /// Write one aligned audio file per participant instead: opus (the recorded packets
        /// in Ogg, no re-encode; the default), flac or wav.
        #[arg(long, value_enum, value_name = "FORMAT", num_args = 0..=1, default_missing_value = "opus")]
        audio_only: Option<mosaic::repair::AudioFormat>,
        /// Decode and encode every stream again instead of copying packets (also done,
        /// for that stream only, when its segments cannot be joined by copying: a codec
        /// parameter changes between them). Video holes follow compose's freeze policy.
        #[arg(long)]
        reencode: bool,
        /// Print a JSON report on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Compose or repair every archive in a folder: in parallel, unattended, resumable.
    ///
    /// Each archive is isolated: a corrupt or hostile one is recorded as failed with its
    /// error and the rest go on. Outputs are named after their archive (call-a.zip ->
    /// OUT/call-a.mp4, or OUT/call-a/ with --mode repair) and appear only when complete,
    /// so running the same command again skips the finished archives and retries the
    /// failed ones (--force redoes all). Ctrl-C stops cleanly: finished outputs stay,
    /// unfinished ones leave nothing. OUT/report.json lists every archive's status,
    /// output, duration, wall time and error. Exit code 1 when any archive failed.
    ///
    /// Examples:
    ///   mosaic batch downloads/ -o videos/
    ///   mosaic batch downloads/ -o tracks/ --mode repair --align archive
    ///   mosaic batch downloads/ -o videos/ --jobs 2 --size 1920x1080 --layout pip
    #[command(verbatim_doc_comment, after_long_help = EXIT_CODES)]
    Batch {
        /// A folder of archives (*.zip).
        input: PathBuf,
        /// The folder for outputs and report.json (created if missing).
        #[arg(short, long, value_name = "DIR")]
        output: PathBuf,
        /// compose: one video per archive; repair: a folder of per-stream files per archive.
        #[arg(long, value_enum, default_value_t = mosaic::batch::Mode::Compose)]
        mode: mosaic::batch::Mode,
        /// Archives processed at once [default: half the cores for compose, which keeps
        /// two cores busy per archive; all cores for repair].
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
        jobs: Option<u32>,
        /// Redo archives whose output already exists.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        flags: ComposeFlags,
        /// Repair: where each file's time 0 is (see `mosaic repair --help`).
        #[arg(long, value_enum, default_value_t = mosaic::repair::Align::Stream)]
        align: mosaic::repair::Align,
        /// Repair: re-encode every stream.
        #[arg(long)]
        reencode: bool,
        /// Repair: one aligned audio file per participant (opus, flac or wav).
        #[arg(long, value_enum, value_name = "FORMAT", num_args = 0..=1, default_missing_value = "opus")]
        audio_only: Option<mosaic::repair::AudioFormat>,
        /// Print the report as JSON on stdout.
        #[arg(long)]
        json: bool,
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

/// The options of a composition, shared by `compose` and `batch`.
#[derive(clap::Args)]
struct ComposeFlags {
    /// The output format, when the extension does not say.
    #[arg(long, value_enum)]
    format: Option<OutputFormat>,
    /// bestFit (a grid, recomputed as people join and leave; a screen share gets the
    /// large region), pip, verticalPresentation, horizontalPresentation, or custom
    /// (with --layout-file).
    #[arg(long, default_value = "bestFit", value_parser = parse_layout_name)]
    layout: String,
    /// A custom layout: {"regions": [{"x":0,"y":0,"w":0.5,"h":1,"z":0,"role":"screen"},
    /// {"x":0.5,"y":0,"w":0.5,"h":1,"stream":"<streamId>"}]} (fractions of the canvas;
    /// role is screen, camera or any).
    #[arg(long, value_name = "FILE")]
    layout_file: Option<PathBuf>,
    /// Output size, WIDTHxHEIGHT, from 640x480 to 1920x1080.
    #[arg(long, default_value = "1280x720", value_parser = parse_size)]
    size: (i32, i32),
    /// Output frame rate.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=60))]
    fps: u32,
    /// What a tile shows while its video is muted: the last frame (up to
    /// --max-freeze, then the placeholder), black, or the placeholder at once.
    #[arg(long, value_enum, default_value_t = MutePolicy::Freeze)]
    video_mute: MutePolicy,
    /// The longest a frozen frame is shown, in seconds.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    max_freeze: f64,
    /// Draw each stream's label on its video.
    #[arg(long)]
    labels: bool,
    /// Start here on the archive timeline (seconds, or [h:]m:s[.ms]).
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    from: Option<i64>,
    /// End here on the archive timeline (seconds, or [h:]m:s[.ms]).
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    to: Option<i64>,
    /// Encoding effort.
    #[arg(long, value_enum, default_value_t = Speed::Balanced)]
    speed: Speed,
    /// Constant quality, 0 (best) to 51; like x264's CRF.
    #[arg(long, default_value_t = 23)]
    quality: u32,
}

impl ComposeFlags {
    fn to_options(&self) -> anyhow::Result<ComposeOptions> {
        let layout = match (self.layout.as_str(), &self.layout_file) {
            ("custom", Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                Layout::Custom(
                    CustomLayout::parse(&text)
                        .with_context(|| format!("reading {}", path.display()))?,
                )
            }
            ("custom", None) => {
                return Err(mosaic::Error::InvalidOption(
                    "--layout custom needs --layout-file".into(),
                )
                .into());
            }
            (_, Some(_)) => {
                return Err(mosaic::Error::InvalidOption(
                    "--layout-file goes with --layout custom".into(),
                )
                .into());
            }
            ("pip", None) => Layout::Pip,
            ("verticalPresentation", None) => Layout::VerticalPresentation,
            ("horizontalPresentation", None) => Layout::HorizontalPresentation,
            _ => Layout::BestFit,
        };
        Ok(ComposeOptions {
            width: self.size.0,
            height: self.size.1,
            fps: self.fps,
            layout,
            video_mute: match self.video_mute {
                MutePolicy::Freeze => VideoMutePolicy::Freeze,
                MutePolicy::Black => VideoMutePolicy::Black,
                MutePolicy::Placeholder => VideoMutePolicy::Placeholder,
            },
            max_freeze_ms: (self.max_freeze.max(0.0) * 1000.0).round() as i64,
            from_ms: self.from,
            to_ms: self.to,
            labels: self.labels,
            format: self.format,
            speed: self.speed,
            quality: self.quality,
        })
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum MutePolicy {
    Freeze,
    Black,
    Placeholder,
}

const LAYOUTS: [&str; 5] = [
    "bestFit",
    "pip",
    "verticalPresentation",
    "horizontalPresentation",
    "custom",
];

fn parse_layout_name(s: &str) -> Result<String, String> {
    LAYOUTS
        .iter()
        .find(|l| l.eq_ignore_ascii_case(s))
        .map(|l| l.to_string())
        .ok_or_else(|| format!("unknown layout {s:?}; choose one of {}", LAYOUTS.join(", ")))
}

fn parse_size(s: &str) -> Result<(i32, i32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{s:?} is not WIDTHxHEIGHT"))?;
    let num = |v: &str| {
        v.trim()
            .parse::<i32>()
            .map_err(|_| format!("{s:?} is not WIDTHxHEIGHT"))
    };
    Ok((num(w)?, num(h)?))
}

/// Seconds (`90`, `90.5`) or `[h:]m:s[.ms]`, to archive milliseconds.
fn parse_time(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not a time (seconds, or [h:]m:s[.ms])");
    let mut total = 0.0;
    for part in s.split(':') {
        let v: f64 = part.trim().parse().map_err(|_| bad())?;
        if !v.is_finite() || v < 0.0 {
            return Err(bad());
        }
        total = total * 60.0 + v;
    }
    Ok((total * 1000.0).round() as i64)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("mosaic: {err:#}");
            ExitCode::from(exit_code(&err))
        }
    }
}

fn exit_code(err: &anyhow::Error) -> u8 {
    if err.chain().any(|e| {
        matches!(
            e.downcast_ref::<mosaic::Error>(),
            Some(mosaic::Error::Cancelled)
        )
    }) {
        return 130;
    }
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

fn run(cli: Cli) -> anyhow::Result<u8> {
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
            Ok(0)
        }
        Command::Compose {
            archive,
            output,
            flags,
            json,
        } => {
            let opts = flags.to_options()?;
            let cancel = cancel_on_ctrl_c();
            let bar = progress_bar("composing", "ms");
            let progress = |pos: u64, total: u64| show_progress(bar.as_ref(), pos, total);
            let control = Control {
                progress: Some(&progress),
                cancel: Some(&cancel),
            };
            let result = compose::compose(&archive, &output, &opts, &control);
            if let Some(bar) = &bar {
                bar.finish_and_clear();
            }
            let report = result.with_context(|| format!("composing {}", archive.display()))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
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
            Ok(0)
        }
        Command::Batch {
            input,
            output,
            mode,
            jobs,
            force,
            flags,
            align,
            reencode,
            audio_only,
            json,
        } => {
            let opts = mosaic::batch::BatchOptions {
                mode,
                jobs: jobs.map_or_else(|| mosaic::batch::default_jobs(mode), |j| j as usize),
                force,
                compose: flags.to_options()?,
                repair: mosaic::repair::RepairOptions {
                    align,
                    audio_only,
                    reencode,
                },
            };
            let cancel = cancel_on_ctrl_c();
            let view = BatchView::new(
                mosaic::batch::list_archives(&input)
                    .map(|a| a.len())
                    .unwrap_or(0),
            );
            let report = mosaic::batch::run(&input, &output, &opts, &cancel, &|e| view.event(e))
                .with_context(|| format!("batch over {}", input.display()))?;
            view.finish();
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
            print_summary(&report);
            if report.failed() > 0 {
                return Ok(1);
            }
            Ok(0)
        }
        Command::Repair {
            archive,
            output,
            align,
            audio_only,
            reencode,
            json,
        } => {
            let opts = mosaic::repair::RepairOptions {
                align,
                audio_only,
                reencode,
            };
            let cancel = cancel_on_ctrl_c();
            let bar = progress_bar("repairing", "streams");
            let progress = |done: u64, total: u64| show_progress(bar.as_ref(), done, total);
            let control = Control {
                progress: Some(&progress),
                cancel: Some(&cancel),
            };
            let result = mosaic::repair::repair_with(&archive, &output, &opts, &control);
            if let Some(bar) = &bar {
                bar.finish_and_clear();
            }
            let report = result.with_context(|| format!("repairing {}", archive.display()))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
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
            Ok(0)
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
                return Ok(0);
            }
            let written = sample::write_archive(&spec, &output)
                .with_context(|| format!("writing sample archive {}", output.display()))?;
            eprintln!(
                "wrote {} ({} streams, {} files)",
                output.display(),
                spec.streams.len(),
                written.files
            );
            Ok(0)
        }
    }
}

/// A flag set by Ctrl-C: long work checks it, stops, and leaves no partial output.
fn cancel_on_ctrl_c() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = cancel.clone();
    let _ = ctrlc::set_handler(move || flag.store(true, std::sync::atomic::Ordering::Relaxed));
    cancel
}

fn show_progress(bar: Option<&indicatif::ProgressBar>, pos: u64, total: u64) {
    if let Some(bar) = bar {
        bar.set_length(total);
        bar.set_position(pos);
    }
}

/// A progress bar with ETA when stderr is a terminal; nothing otherwise.
fn progress_bar(what: &str, unit: &str) -> Option<indicatif::ProgressBar> {
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
            "archives [{bar:40}] {pos}/{len}, {elapsed} elapsed, ETA {eta}",
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
        "status", "media s", "wall s", "archive"
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
        "{} archives: {} done, {} skipped, {} failed, in {:.1} s with {} jobs",
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
