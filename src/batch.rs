//! Processing a folder of inputs, unattended: in parallel, each input isolated, resumable.
//!
//! An input is anything [`crate::source`] reads: an OpenTok ZIP or unzipped folder, a
//! LiveSwitch recordings folder or event, an EnableX notification. Every output is complete
//! or absent: compose writes `<stem>.<ext>` under a temporary name and renames it; repair
//! writes into a hidden `.<stem>.partial-<pid>` folder renamed to `<stem>/` when every
//! stream is done. An input holding several recordings (a LiveSwitch folder with several
//! sessions) gives `<stem>-<key>` for each. A re-run therefore skips exactly the outputs
//! that exist (and retries the failed ones); `force` redoes everything. A corrupt or hostile
//! input is recorded as failed with its error and the rest go on.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::compose::{self, ComposeOptions, Control, OutputFormat};
use crate::error::{Error, Result};
use crate::output::write_atomic;
use crate::repair::{self, RepairOptions};
use crate::source::{self, Recording, SourceOptions};

/// What to do with each archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Compose,
    Repair,
}

/// Options of a batch run.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    pub mode: Mode,
    /// Archives processed at once.
    pub jobs: usize,
    /// Redo archives whose output already exists.
    pub force: bool,
    pub compose: ComposeOptions,
    pub repair: RepairOptions,
    /// How inputs are read (forced platform, labels).
    pub source: SourceOptions,
}

/// Archives at once by default. A compose keeps about two cores busy by itself (decoders,
/// canvas and encoder threads), so one archive per two cores; a repair copies packets
/// on one thread, so one per core.
pub fn default_jobs(mode: Mode) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    match mode {
        Mode::Compose => (cores / 2).max(1),
        Mode::Repair => cores,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Done,
    Skipped,
    Failed,
}

/// One output's outcome (a row of `report.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The input.
    pub archive: PathBuf,
    /// Which of the input's recordings, when it holds several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording: Option<String>,
    pub status: Status,
    pub output: PathBuf,
    pub duration_ms: Option<i64>,
    pub wall_ms: u64,
    pub error: Option<String>,
}

/// The whole run (`OUT_DIR/report.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchReport {
    pub mode: Mode,
    pub jobs: usize,
    pub archives: Vec<Outcome>,
    pub wall_ms: u64,
}

impl BatchReport {
    pub fn failed(&self) -> usize {
        self.archives
            .iter()
            .filter(|o| o.status == Status::Failed)
            .count()
    }
}

/// What a caller is told while the batch runs.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    Started { archive: &'a Path },
    Finished { outcome: &'a Outcome },
}

/// The inputs directly in `dir`, sorted by name: `.zip` files, folders that hold an OpenTok
/// manifest or LiveSwitch logs, and `.json` events and notifications.
pub fn list_archives(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Open {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut inputs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let ext = p
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase);
            match ext.as_deref() {
                Some("zip") => p.is_file(),
                _ if p.is_dir() => source::is_input(p),
                Some("json") => source::is_input(p),
                _ => false,
            }
        })
        .collect();
    inputs.sort();
    Ok(inputs)
}

/// Where an input's output goes; `key` names one of several recordings in it.
pub fn output_for(
    archive: &Path,
    key: Option<&str>,
    out_dir: &Path,
    opts: &BatchOptions,
) -> PathBuf {
    let mut stem = archive
        .file_stem()
        .map_or_else(|| "archive".into(), |s| s.to_string_lossy().into_owned());
    if let Some(key) = key {
        stem = format!("{stem}-{}", crate::names::plain_name(key));
    }
    match opts.mode {
        Mode::Compose => {
            let ext = match opts.compose.format.unwrap_or(OutputFormat::Mp4) {
                OutputFormat::Mp4 => "mp4",
                OutputFormat::Webm => "webm",
                OutputFormat::Mkv => "mkv",
                OutputFormat::M4a => "m4a",
                OutputFormat::Opus => "opus",
                OutputFormat::Hls => "m3u8",
            };
            out_dir.join(format!("{stem}.{ext}"))
        }
        Mode::Repair => out_dir.join(stem),
    }
}

/// Runs the batch over every archive of `in_dir`, writing into `out_dir` and its
/// `report.json`. Returns the report; failed archives are in it, not an `Err`.
pub fn run(
    in_dir: &Path,
    out_dir: &Path,
    opts: &BatchOptions,
    cancel: &AtomicBool,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> Result<BatchReport> {
    let started = Instant::now();
    let archives = list_archives(in_dir)?;
    std::fs::create_dir_all(out_dir).map_err(|source| Error::Write {
        path: out_dir.to_path_buf(),
        source,
    })?;
    crate::workdir::sweep_partials(out_dir);
    let jobs = opts.jobs.max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| Error::InvalidOption(format!("cannot start {jobs} workers: {e}")))?;
    let outcomes: Vec<Outcome> = pool.install(|| {
        archives
            .par_iter()
            .flat_map_iter(|archive| {
                on_event(Event::Started { archive });
                let outcomes = process_input(archive, out_dir, opts, cancel);
                for outcome in &outcomes {
                    on_event(Event::Finished { outcome });
                }
                outcomes
            })
            .collect()
    });
    if cancel.load(Ordering::Relaxed) {
        return Err(Error::Cancelled);
    }
    let report = BatchReport {
        mode: opts.mode,
        jobs,
        archives: outcomes,
        wall_ms: started.elapsed().as_millis() as u64,
    };
    let json =
        serde_json::to_vec_pretty(&report).map_err(|e| Error::InvalidOption(e.to_string()))?;
    write_atomic(out_dir.join("report.json"), &json)?;
    Ok(report)
}

/// One input, isolated: its errors (and panics) become its outcomes, one per recording.
fn process_input(
    archive: &Path,
    out_dir: &Path,
    opts: &BatchOptions,
    cancel: &AtomicBool,
) -> Vec<Outcome> {
    let started = Instant::now();
    let failed = |error: String| Outcome {
        archive: archive.to_path_buf(),
        recording: None,
        status: Status::Failed,
        output: output_for(archive, None, out_dir, opts),
        duration_ms: None,
        wall_ms: started.elapsed().as_millis() as u64,
        error: Some(error),
    };
    let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        source::open(archive, &opts.source)
    }));
    let recordings = match opened {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return vec![failed(e.to_string())],
        Err(_) => return vec![failed(PANIC.into())],
    };
    let several = recordings.len() > 1;
    recordings
        .into_iter()
        .map(|mut recording| {
            let key = several.then(|| recording.key.clone());
            let output = output_for(archive, key.as_deref(), out_dir, opts);
            let mut outcome = process(&mut recording, &output, out_dir, opts, cancel);
            outcome.archive = archive.to_path_buf();
            outcome.recording = key;
            outcome
        })
        .collect()
}

const PANIC: &str = "internal error (panic) while processing this input";

/// One recording, isolated: its errors (and panics) become its outcome.
fn process(
    recording: &mut Recording,
    output: &Path,
    out_dir: &Path,
    opts: &BatchOptions,
    cancel: &AtomicBool,
) -> Outcome {
    let started = Instant::now();
    let output = output.to_path_buf();
    let mut outcome = Outcome {
        archive: PathBuf::new(),
        recording: None,
        status: Status::Skipped,
        output: output.clone(),
        duration_ms: None,
        wall_ms: 0,
        error: None,
    };
    if output.exists() && !opts.force {
        return outcome;
    }
    if cancel.load(Ordering::Relaxed) {
        outcome.status = Status::Failed;
        outcome.error = Some("cancelled".into());
        return outcome;
    }
    let control = Control {
        progress: None,
        cancel: Some(cancel),
        published: None,
    };
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<i64> {
        match opts.mode {
            Mode::Compose => {
                compose::compose_recording(recording, &output, &opts.compose, &control)
                    .map(|r| r.duration_ms)
            }
            Mode::Repair => {
                let name = output
                    .file_name()
                    .map_or_else(|| "archive".into(), |n| n.to_string_lossy().into_owned());
                let temp = out_dir.join(format!(".{name}.partial-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&temp);
                let result = repair::repair_recording(recording, &temp, &opts.repair, &control)
                    .and_then(|r| {
                        if output.exists() {
                            std::fs::remove_dir_all(&output).map_err(|source| Error::Write {
                                path: output.clone(),
                                source,
                            })?;
                        }
                        std::fs::rename(&temp, &output).map_err(|source| Error::Write {
                            path: output.clone(),
                            source,
                        })?;
                        Ok(r.streams.iter().map(|s| s.duration_ms).max().unwrap_or(0))
                    });
                if result.is_err() {
                    let _ = std::fs::remove_dir_all(&temp);
                }
                result
            }
        }
    }));
    // What this recording's pipeline freed goes back before the next one starts.
    crate::alloc::release_free_memory();
    outcome.wall_ms = started.elapsed().as_millis() as u64;
    match run {
        Ok(Ok(duration)) => {
            outcome.status = Status::Done;
            outcome.duration_ms = Some(duration);
        }
        Ok(Err(e)) => {
            outcome.status = Status::Failed;
            outcome.error = Some(e.to_string());
        }
        Err(_) => {
            outcome.status = Status::Failed;
            outcome.error = Some(PANIC.into());
        }
    }
    outcome
}
