//! A chunked compose's jobs (edge): what the job does at each attempt (fan out, stitch, or
//! find its HLS output written by its chunks), the chunk jobs it fans out into, a chunk
//! job's work (its window's picture, stored in the output store for the stitch), and the
//! stitch's reading of the chunks back. The queue's side (waiting, waking the parent) is in
//! [`super::queue`]; HLS chunks are [`super::hls_chunks`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::config::Product;
use super::hls_delivery::HlsDelivery;
use super::job::{ChunkPart, Delivered, JobSpec};
use super::process::{
    Failure, Tracker, blocking, classify, file_size, inspect, open, until_cancelled,
};
use super::queue::{JobRow, Kind, NewJob};
use super::store::PutError;
use super::worker::Shared;
use crate::compose::chunks::ChunkRun;
use crate::compose::{self, Control};

/// What a job that composes does at this attempt.
pub(super) enum Step {
    /// Composes here, in one pass (no chunks, or not longer than one).
    OnePass,
    /// The chunks' pictures are fetched: stitch them.
    Stitch(Stitched),
    /// Its HLS output is complete in the store under this name (its chunks wrote it).
    Published(String, Vec<Delivered>),
}

/// The step of a job composing `input` under `opts`: on its first attempt a chunked
/// compose fans out ([`Failure::FanOut`], an HLS one with its output's name reserved); once
/// its chunks have ended, it stitches them, or ends the playlist they wrote.
#[allow(clippy::too_many_arguments)]
pub(super) async fn step(
    shared: &Arc<Shared>,
    job: &JobRow,
    spec: &JobSpec,
    opts: &compose::ComposeOptions,
    input: &Path,
    kind: crate::source::SourceKind,
    work: &Path,
    tracker: &Tracker,
) -> Result<Step, Failure> {
    if opts.chunk_secs.is_none() {
        return Ok(Step::OnePass);
    }
    let hls = opts.format == Some(compose::OutputFormat::Hls);
    let chunks = shared
        .queue
        .children(&job.id)
        .await
        .map_err(|e| Failure::Retry(e.to_string()))?;
    if !chunks.is_empty() {
        return Ok(match hls {
            true => {
                let stem = super::hls_chunks::stem_of(&chunks)?;
                match super::hls_chunks::finish(shared, job, &chunks).await {
                    Ok(delivered) => Step::Published(stem, delivered),
                    Err(e) => {
                        // No attempt will end the playlist: nothing may look like an output.
                        if super::process::ends_the_job(&e, job) {
                            super::hls_chunks::remove(shared, &stem).await;
                        }
                        return Err(e);
                    }
                }
            }
            false => Step::Stitch(fetch(shared, job, &chunks, work, tracker).await?),
        });
    }
    let (i, o) = (input.to_path_buf(), opts.clone());
    let windows = blocking(move || {
        let mut recording = open(&i, kind)?;
        // Inspection places the files anchored at their first frame on the timeline.
        inspect(&mut recording)?;
        compose::chunks::windows_of(&recording, &o).map_err(classify)
    })
    .await?;
    if windows.is_empty() {
        return Ok(Step::OnePass);
    }
    let spec = match hls {
        true => {
            let stem = super::process::output_stem(spec, job);
            JobSpec {
                output: Some(super::hls_chunks::reserve(shared, job, &stem, work).await?),
                ..spec.clone()
            }
        }
        false => spec.clone(),
    };
    Err(Failure::FanOut(for_windows(job, &spec, &windows)?))
}

/// A chunk job for each window: the parent's spec composing that window (its picture, or
/// for HLS its segments), due a millisecond apart so that workers take them in order (the
/// first minutes are ready first).
pub(super) fn for_windows(
    job: &JobRow,
    spec: &JobSpec,
    windows: &[(i64, i64)],
) -> Result<Vec<NewJob>, Failure> {
    windows
        .iter()
        .enumerate()
        .map(|(index, &(from_ms, to_ms))| {
            let chunk = JobSpec {
                chunk: Some(ChunkPart {
                    index,
                    from_ms,
                    to_ms,
                }),
                produce: Some(vec![Product::Compose]),
                ..spec.clone()
            };
            Ok(NewJob {
                kind: Kind::Process,
                key: Some(format!("{}/chunk/{index}", job.id)),
                source: job.source.clone(),
                summary: format!("{} (chunk {} of {})", job.summary, index + 1, windows.len()),
                payload: serde_json::to_string(&chunk)
                    .map_err(|e| Failure::Final(e.to_string()))?,
                run_after_ms: index as i64,
                max_attempts: job.max_attempts.max(1) as u32,
                deadline_after_ms: None,
                parent: Some(job.id.clone()),
            })
        })
        .collect()
}

/// Where a chunk job stores its picture in the output store, for its parent's stitch.
fn chunk_key(parent: &str, index: usize, attempt: i64) -> String {
    format!(
        "chunks/{}/{index:05}-{attempt}.mkv",
        crate::names::plain_name(parent)
    )
}

/// What a chunk job composes: its recording (opened as `kind`), the options and the window.
pub(super) struct Window {
    pub(super) input: PathBuf,
    pub(super) kind: crate::source::SourceKind,
    pub(super) opts: compose::ComposeOptions,
    pub(super) part: ChunkPart,
}

/// Composes a chunk job's window on a blocking thread: the recording opened, inspected and
/// prepared (the whole's plan), then `run` makes the chunk's output `output` (progress on
/// `tracker`; each finished HLS file to `delivery`).
pub(super) async fn compose_window<T: Send + 'static>(
    window: Window,
    output: PathBuf,
    tracker: &Arc<Tracker>,
    delivery: Option<Arc<HlsDelivery>>,
    run: impl FnOnce(&ChunkRun<'_>, &Control<'_>) -> crate::Result<T> + Send + 'static,
) -> Result<T, Failure> {
    let t = tracker.clone();
    blocking(move || {
        let mut recording = open(&window.input, window.kind)?;
        let report = inspect(&mut recording)?;
        let progress =
            |done: u64, total: u64| t.set(0.05 + 0.9 * done as f64 / total.max(1) as f64);
        let publish = |file: &Path| match &delivery {
            Some(d) => d.publish(file),
            None => Ok(()),
        };
        let control = Control {
            progress: Some(&progress),
            cancel: Some(&t.cancel),
            published: match delivery {
                Some(_) => Some(&publish),
                None => None,
            },
        };
        let part = window.part;
        ChunkRun::prepare(
            &mut recording,
            &report,
            &window.opts,
            (part.from_ms, part.to_ms),
            &output,
        )
        .and_then(|chunk| run(&chunk, &control))
        .map_err(classify)
    })
    .await
}

/// A chunk job: its window's picture composed and stored for the parent.
pub(super) async fn run_chunk(
    shared: &Arc<Shared>,
    job: &JobRow,
    window: Window,
    work: &Path,
    tracker: &Arc<Tracker>,
) -> Result<Vec<Delivered>, Failure> {
    let parent = job
        .parent
        .clone()
        .ok_or_else(|| Failure::Final("a chunk job without its parent".into()))?;
    let part = window.part;
    let local = work.join("chunk.mkv");
    let l = local.clone();
    compose_window(
        window,
        local.clone(),
        tracker,
        None,
        move |chunk, control| chunk.picture(&l, control),
    )
    .await?;
    let rel = chunk_key(&parent, part.index, job.attempts);
    let staging = format!(
        ".mosaic-staging/{}/{}-chunk",
        crate::names::plain_name(&job.id),
        job.attempts
    );
    let url = match shared.output.put_new(&local, &rel, &staging).await {
        Ok(url) => url,
        Err(PutError::Exists(rel)) => {
            return Err(Failure::Retry(format!(
                "{rel} is already in the output store"
            )));
        }
        Err(PutError::Store(e)) => return Err(Failure::Retry(e)),
    };
    tracing::info!(chunk = part.index, output = %url, "chunk stored");
    Ok(vec![Delivered {
        url,
        bytes: file_size(&local),
        duration_ms: part.to_ms - part.from_ms,
        segment: None,
    }])
}

/// A stitch's chunks, fetched from the output store.
pub(super) struct Stitched {
    pub(super) files: Vec<PathBuf>,
}

/// The chunks' pictures, in order, into the work folder; a chunk that did not succeed fails
/// the job with its error.
pub(super) async fn fetch(
    shared: &Shared,
    job: &JobRow,
    chunks: &[JobRow],
    work: &Path,
    tracker: &Tracker,
) -> Result<Stitched, Failure> {
    let mut parts: Vec<(usize, &JobRow)> = Vec::new();
    for c in chunks {
        let spec: JobSpec = serde_json::from_str(&c.payload)
            .map_err(|e| Failure::Final(format!("a chunk job is unreadable: {e}")))?;
        let index = spec.chunk.map_or(0, |p| p.index);
        if c.state != "succeeded" {
            return Err(Failure::Final(format!(
                "chunk {index} ended {}: {}",
                c.state,
                c.last_error.as_deref().unwrap_or("no error given")
            )));
        }
        parts.push((index, c));
    }
    parts.sort_by_key(|(index, _)| *index);
    let dir = work.join("chunks");
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| Failure::Retry(format!("creating {}: {e}", dir.display())))?;
    let mut stitched = Stitched { files: Vec::new() };
    for (index, c) in parts {
        let rel = chunk_key(&job.id, index, c.attempts);
        let dest = dir.join(compose::chunks::chunk_name(index));
        let read = shared
            .output
            .get_to_file(&rel, &dest, shared.config.fetch.max_total_bytes);
        until_cancelled(read, tracker)
            .await?
            .map_err(Failure::Retry)?;
        stitched.files.push(dest);
    }
    Ok(stitched)
}
