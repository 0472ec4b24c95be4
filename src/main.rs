//! The `mosaic` command line: a thin layer over the library that parses flags, prints, and
//! maps errors to exit codes. Each subcommand is a module of [`cli`].

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use mosaic::ErrorClass;

const EXIT_CODES: &str = "\
Exit codes:
  0   success
  2   bad command line (unknown flag, missing argument)
  65  bad input: the recording, its manifest, log, event or a media file is malformed,
      hostile or inconsistent (a corrupt or truncated ZIP, unsafe names, a zip bomb, a
      missing or empty media file, an unknown codec, a file that cannot be decoded), or an
      option value is out of range; fix or replace the input, retrying won't help
  66  the input cannot be found or opened
  70  internal failure: writing output failed, GStreamer or an element is missing; worth
      retrying once the machine is fixed
  130 interrupted (Ctrl-C), 143 terminated (SIGTERM), 129 hung up (SIGHUP): stopped within
      a second; no partial output and no temporary files were left behind
  1   batch: one or more inputs failed (the others are done; see report.json)";

const INPUTS: &str = "\
Inputs (told apart by what the path is; --source forces one):
  call.zip                  an OpenTok/Vonage individual-stream archive
  call/                     the same archive unzipped (the manifest and the media files)
  recordings/               LiveSwitch recordings: <connectionId>-<n>.json logs beside their
                            .mka (audio) and .mkv (video) files; one output per session
                            (--channel ID picks a channel)
  event.json                a LiveSwitch connection.recordings.ready event, its files in its
                            folder or in --media DIR
  notification.json         an EnableX recording notification, its files in its folder or in
                            --media DIR";

/// Turns the per-stream recordings of video calls (OpenTok/Vonage archives, LiveSwitch and
/// EnableX recordings) into something people can watch.
#[derive(Parser)]
#[command(name = "mosaic", version, about, after_long_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show what a recording holds: streams, segments, tracks, timestamps and every gap.
    ///
    /// Reads the input in place (a ZIP is not extracted), checks the manifest, logs or
    /// event against the files, and scans every container. Times of streams and segments
    /// are on the recording's timeline (ms from the manifest's createdAt, or the session's
    /// start); times of frames and gaps are each container's own.
    ///
    /// Examples:
    ///   mosaic inspect archive.zip
    ///   mosaic inspect archive.zip --json | jq '.streams[].segments[].tracks[].gaps'
    ///   mosaic inspect recordings/ --svg timeline.svg --min-gap-ms 500
    ///   mosaic inspect event.json --media downloads/
    #[command(verbatim_doc_comment, after_long_help = cli::after_help())]
    Inspect(cli::inspect::Args),
    /// Compose a whole recording into one video: everybody where they were in time.
    ///
    /// One GStreamer pass: every file is decoded once, enters at its place on the
    /// timeline, and the grid, the audio mix and the encode happen together. Output time 0
    /// is the earliest start; the output lasts until the last stop (or --from/--to on the
    /// timeline). Audio gaps become silence; video gaps follow --video-mute. A stream keeps
    /// its tile between its segments and shows its label on a dark tile while away. The
    /// output is written under a temporary name and renamed only when complete. An input
    /// holding several sessions gives one output each, named OUTPUT-<channel>-<start>.
    ///
    /// Examples:
    ///   mosaic compose call.zip -o call.mp4
    ///   mosaic compose call.zip -o call.webm --layout verticalPresentation --labels
    ///   mosaic compose call.zip -o talk.m4a --from 1:30 --to 12:00
    ///   mosaic compose recordings/ -o call.mp4 --channel 123456
    ///   mosaic compose event.json --media downloads/ -o call.mp4
    #[command(verbatim_doc_comment, after_long_help = cli::after_help())]
    Compose(cli::compose::Args),
    /// Repair a recording into one standalone, playable file per participant.
    ///
    /// No re-encode: every packet is copied, a stream's segments are joined (and
    /// LiveSwitch's separate audio and video files become one file), audio holes (mutes,
    /// time between segments) are filled with silence so that sounds stay where they were
    /// recorded in any player, and each file gets a Duration and Cues (seekable). Files are
    /// named <streamId>-<label>.webm (or .mkv, as the input; LiveSwitch: <clientId>-<label>).
    ///
    /// Examples:
    ///   mosaic repair call.zip -o tracks/
    ///   mosaic repair call.zip -o tracks/ --align archive --json
    ///   mosaic repair recordings/ -o podcast/ --align archive --audio-only wav
    #[command(verbatim_doc_comment, after_long_help = cli::after_help())]
    Repair(cli::repair::Args),
    /// Compose or repair every input in a folder: in parallel, unattended, resumable.
    ///
    /// Inputs are the folder's .zip archives, unzipped archive folders, LiveSwitch
    /// recordings folders and .json events. Each is isolated: a corrupt or hostile one is
    /// recorded as failed with its error and the rest go on. Outputs are named after their
    /// input (call-a.zip -> OUT/call-a.mp4, or OUT/call-a/ with --mode repair) and appear
    /// only when complete, so running the same command again skips the finished ones and
    /// retries the failed ones (--force redoes all). Ctrl-C stops cleanly: finished
    /// outputs stay, unfinished ones leave nothing. OUT/report.json lists every output's
    /// status, duration, wall time and error. Exit code 1 when any input failed.
    ///
    /// Examples:
    ///   mosaic batch downloads/ -o videos/
    ///   mosaic batch downloads/ -o tracks/ --mode repair --align archive
    ///   mosaic batch downloads/ -o videos/ --jobs 2 --size 1920x1080 --layout pip
    #[command(verbatim_doc_comment, after_long_help = cli::after_help())]
    Batch(cli::batch::Args),
    /// Make a deterministic sample recording (for trying mosaic out, tests and benchmarks).
    ///
    /// Encodes synthetic streams with GStreamer: a coloured picture and a tone per stream,
    /// with sync marks (a white flash and a loud beep) at known times, audio and video
    /// mutes (no frames at all, as the media server records them) and segments. Writes an
    /// OpenTok archive (.zip), or with --preset liveswitch a LiveSwitch recordings folder
    /// (logs, .mka and .mkv files, and the session's event.json).
    ///
    /// Examples:
    ///   mosaic sample call.zip
    ///   mosaic sample call.zip --preset h264
    ///   mosaic sample recordings/ --preset liveswitch
    ///   mosaic sample call.zip --spec my-call.json
    #[command(verbatim_doc_comment, after_long_help = EXIT_CODES)]
    Sample(cli::sample::Args),
    /// Run the webhook service: signed intake, a durable queue, workers, delivery.
    ///
    /// Platforms POST their "recording ready" webhooks here; each verified event becomes
    /// one job in the queue (SQLite in data_dir, or PostgreSQL shared by many workers); a
    /// worker fetches the recording, composes (and/or repairs) it, writes the outputs to
    /// the output store and POSTs a signed notification to every [[notify]] URL.
    ///
    /// Endpoints:
    ///   POST /v1/hooks/opentok      archive status callbacks (Bearer JWT, HS256)
    ///   POST /v1/hooks/liveswitch   webhooks signed with X-ApplicationSignature
    ///   POST /v1/hooks/enablex      notifications (?token= or X-Mosaic-Token)
    ///   POST /v1/jobs               a direct job {"url": ...} (Bearer api_token)
    ///   GET  /v1/jobs/{id}          state, progress, attempts, error, outputs
    ///   GET  /                      the jobs page (?token=api_token)
    ///   GET  /healthz, /metrics
    ///
    /// SIGTERM or Ctrl-C: stop taking jobs, give running ones back to the queue, exit 0.
    ///
    /// Examples:
    ///   mosaic serve --config mosaic.toml
    ///   MOSAIC_OPENTOK_SECRET=... mosaic serve -c /etc/mosaic.toml
    #[cfg(feature = "service")]
    #[command(verbatim_doc_comment)]
    Serve(cli::serve::Args),
    /// Run workers only (no HTTP): more processing for a service's queue.
    ///
    /// With queue = "postgres://…", any number of workers on any number of machines
    /// share the jobs; each is taken by one worker at a time under a lease that a dead
    /// worker's job loses within lease_secs.
    ///
    /// Examples:
    ///   mosaic worker --config mosaic.toml
    #[cfg(feature = "service")]
    #[command(verbatim_doc_comment)]
    Worker(cli::serve::Args),
}

fn main() -> ExitCode {
    mosaic::alloc::tune();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(args) => cli::inspect::run(args),
        Command::Compose(args) => cli::compose::run(args),
        Command::Repair(args) => cli::repair::run(args),
        Command::Batch(args) => cli::batch::run(args),
        Command::Sample(args) => cli::sample::run(args),
        #[cfg(feature = "service")]
        Command::Serve(args) => cli::serve::run(args, cli::serve::Role::Serve),
        #[cfg(feature = "service")]
        Command::Worker(args) => cli::serve::run(args, cli::serve::Role::Worker),
    };
    // Whatever the run leaves in its work folder (nothing, unless it was stopped) goes.
    mosaic::workdir::finish();
    match result {
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
        return cli::progress::signal_exit_code();
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
