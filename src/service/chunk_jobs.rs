//! A chunked compose's jobs (edge): the chunk jobs a job fans out into, a chunk job's work
//! (its window's picture, stored in the output store for the stitch), and the stitch's
//! reading of the chunks back. The queue's side (waiting, waking the parent) is in
//! [`super::queue`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::config::Product;
use super::job::{ChunkPart, Delivered, JobSpec};
use super::process::{
    Failure, Tracker, blocking, classify, file_size, inspect, open, until_cancelled,
};
use super::queue::{JobRow, Kind, NewJob};
use super::store::PutError;
use super::worker::Shared;
use crate::compose::{self, Control};

/// A chunk job for each window: the parent's spec composing that window's picture.
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
                run_after_ms: 0,
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

/// A chunk job: its window's picture composed and stored for the parent.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run_chunk(
    shared: &Arc<Shared>,
    job: &JobRow,
    part: ChunkPart,
    input: &Path,
    kind: crate::source::SourceKind,
    opts: compose::ComposeOptions,
    work: &Path,
    tracker: &Arc<Tracker>,
) -> Result<Vec<Delivered>, Failure> {
    let parent = job
        .parent
        .clone()
        .ok_or_else(|| Failure::Final("a chunk job without its parent".into()))?;
    let local = work.join("chunk.mkv");
    let (i, l, t) = (input.to_path_buf(), local.clone(), tracker.clone());
    blocking(move || {
        let mut recording = open(&i, kind)?;
        let report = inspect(&mut recording)?;
        let progress =
            |done: u64, total: u64| t.set(0.05 + 0.9 * done as f64 / total.max(1) as f64);
        let control = Control {
            progress: Some(&progress),
            cancel: Some(&t.cancel),
            published: None,
        };
        compose::chunks::compose_chunk(
            &mut recording,
            &report,
            &opts,
            (part.from_ms, part.to_ms),
            &l,
            &control,
        )
        .map_err(classify)
    })
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
