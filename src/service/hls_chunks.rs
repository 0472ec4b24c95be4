//! A fanned-out HLS job (edge): its chunk jobs write their own segments, the playlist grows
//! as the first chunks end, whichever worker ran them.
//!
//! - The fan-out reserves the output's name: an empty EVENT playlist at
//!   `<output>/index.m3u8`, written only where nothing is (else the next name with the job
//!   id), so no other job takes the name while the chunks run; the chunk jobs carry it.
//! - A chunk job composes its window whole (picture and sound) into MPEG-TS segments whose
//!   times are the whole output's, each put into the store (create-only) as it closes as
//!   `<output>/index-<chunk>-<attempt>-<n>.ts`: a chunk done again never meets what a lost
//!   attempt left. Its outputs record each segment's name and span.
//! - When a chunk's success is recorded, its worker takes the playlist's turn: under the
//!   parent's row lock it lists the segments of the chunks that succeeded from the first on,
//!   and replaces the playlist only when that lists more chunks than the published one (the
//!   count is kept with the parent), so two chunks ending at once never put an older
//!   playlist over a newer one.
//! - The job's last attempt (all chunks ended) ends the playlist with `#EXT-X-ENDLIST`,
//!   deletes whatever lost attempts left beside it, and delivers. A failed chunk fails the
//!   job, and everything under the output's name is removed.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::chunk_jobs::{Window, compose_window};
use super::hls_delivery::{HlsDelivery, PLAYLIST};
use super::job::{Delivered, JobSpec, SegmentPlace};
use super::process::{Failure, Tracker};
use super::queue::JobRow;
use super::worker::Shared;
use crate::compose::hls::{Segment, playable, render};

/// How long a playlist's upload may hold the parent's row.
const PLAYLIST_PUT: Duration = Duration::from_secs(30);

/// Reserves the output's name for a fan-out (see the module docs); gives it.
pub(super) async fn reserve(
    shared: &Arc<Shared>,
    job: &JobRow,
    stem: &str,
    work: &Path,
) -> Result<String, Failure> {
    let local = work.join("reserved.m3u8");
    tokio::fs::write(&local, render(&[], false))
        .await
        .map_err(|e| Failure::Retry(format!("writing {}: {e}", local.display())))?;
    let id = crate::names::plain_name(&job.id);
    for candidate in super::process::output_names(stem, job) {
        if shared
            .output
            .taken(&candidate)
            .await
            .map_err(Failure::Retry)?
        {
            continue;
        }
        let rel = format!("{candidate}/{PLAYLIST}");
        let staging = format!(".mosaic-staging/{id}/{}-reserve", job.attempts);
        match shared.output.put_new(&local, &rel, &staging).await {
            Ok(_) => return Ok(candidate),
            Err(super::store::PutError::Exists(_)) => continue,
            Err(super::store::PutError::Store(e)) => return Err(Failure::Retry(e)),
        }
    }
    Err(Failure::Final(format!(
        "{stem} and its alternatives with the job id are all taken in the output store"
    )))
}

/// A chunk job of a fanned-out HLS job: its window's segments, delivered under `stem` as
/// each closes.
pub(super) async fn run_chunk(
    shared: &Arc<Shared>,
    job: &JobRow,
    window: Window,
    work: &Path,
    tracker: &Arc<Tracker>,
    stem: &str,
) -> Result<Vec<Delivered>, Failure> {
    let dir = work.join("hls");
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| Failure::Retry(format!("creating {}: {e}", dir.display())))?;
    let delivery = Arc::new(HlsDelivery::under(shared, job, stem));
    let part = window.part;
    let label = format!("{:04}-{}", part.index, job.attempts);
    let playlist = dir.join(PLAYLIST);
    let p = playlist.clone();
    let segments = compose_window(
        window,
        playlist,
        tracker,
        Some(delivery.clone()),
        move |chunk, control| chunk.hls_segments(&p, &label, control),
    )
    .await;
    let segments = match segments {
        Ok(s) => s,
        Err(e) => {
            // Not listed by any playlist: nobody could play them.
            delivery.remove_segments().await;
            return Err(e);
        }
    };
    let placed = segments
        .into_iter()
        .map(|s| {
            let d = delivery
                .segment(&s.name)
                .ok_or_else(|| Failure::Retry(format!("segment {} was not delivered", s.name)))?;
            Ok(Delivered {
                duration_ms: ((s.end_ns - s.start_ns) / 1_000_000) as i64,
                segment: Some(SegmentPlace {
                    name: s.name,
                    start_ns: s.start_ns,
                    end_ns: s.end_ns,
                }),
                ..d
            })
        })
        .collect::<Result<Vec<_>, Failure>>()?;
    tracing::info!(
        chunk = part.index,
        segments = placed.len(),
        "chunk's segments delivered"
    );
    Ok(placed)
}

/// After a chunk job's success is recorded: if it is a fanned-out HLS job's, its turn at
/// the playlist (a failure only waits for the next chunk's turn, or the job's last).
pub(super) async fn chunk_recorded(shared: &Shared, job: &JobRow, delivered: &[Delivered]) {
    let (Some(parent), true) = (&job.parent, delivered.iter().any(|d| d.segment.is_some())) else {
        return;
    };
    let Ok(spec) = serde_json::from_str::<JobSpec>(&job.payload) else {
        return;
    };
    let Some(stem) = spec.output else { return };
    if let Err(e) = turn(shared, parent, job, &stem, false).await {
        tracing::warn!(error = %e, "cannot update the playlist; the next chunk will");
    }
}

/// The job's last attempt (every chunk ended): the playlist ended and the output
/// delivered, or the job failed with a chunk's error (its caller removes the output when
/// that ends the job).
pub(super) async fn finish(
    shared: &Shared,
    job: &JobRow,
    chunks: &[JobRow],
) -> Result<Vec<Delivered>, Failure> {
    let stem = stem_of(chunks)?;
    if let Some((index, c)) = chunk_rows(chunks)?
        .into_iter()
        .find(|(_, c)| c.state != "succeeded")
    {
        return Err(Failure::Final(format!(
            "chunk {index} ended {}: {}",
            c.state,
            c.last_error.as_deref().unwrap_or("no error given")
        )));
    }
    turn(shared, &job.id, job, &stem, true)
        .await
        .map_err(Failure::Retry)?;
    let (_, segments) = listed(chunks)?;
    let keep: Vec<String> = std::iter::once(PLAYLIST.to_owned())
        .chain(segments.iter().map(|(s, _)| s.name.clone()))
        .collect();
    // What lost attempts (or a worker killed before recording) left beside the output.
    for name in shared
        .output
        .names_under(&stem)
        .await
        .map_err(Failure::Retry)?
    {
        if !keep.contains(&name) {
            tracing::info!(name = %name, "removing a lost attempt's segment");
            shared
                .output
                .delete(&format!("{stem}/{name}"))
                .await
                .map_err(Failure::Retry)?;
        }
    }
    let total_ms = segments.iter().map(|(_, d)| d.duration_ms).sum();
    let text = render(
        &segments.iter().map(|(s, _)| s.clone()).collect::<Vec<_>>(),
        true,
    );
    let playlist = Delivered {
        url: format!("{}/{stem}/{PLAYLIST}", shared.output.url),
        bytes: text.len() as u64,
        duration_ms: total_ms,
        segment: None,
    };
    Ok(std::iter::once(playlist)
        .chain(
            segments
                .into_iter()
                .map(|(_, d)| Delivered { segment: None, ..d }),
        )
        .collect())
}

/// Removes a fanned-out HLS output: the job failed.
pub(super) async fn remove(shared: &Shared, stem: &str) {
    if let Err(e) = shared.output.delete_under(stem).await {
        tracing::warn!(error = %e, "cannot remove a failed job's HLS output");
    }
}

/// The output's name, as the fan-out gave it to its chunks.
pub(super) fn stem_of(chunks: &[JobRow]) -> Result<String, Failure> {
    chunks
        .iter()
        .find_map(|c| serde_json::from_str::<JobSpec>(&c.payload).ok()?.output)
        .ok_or_else(|| Failure::Final("the chunk jobs do not name their output".into()))
}

/// The playlist's turn for `parent` (see the module docs), taken by `writer`'s attempt.
async fn turn(
    shared: &Shared,
    parent: &str,
    writer: &JobRow,
    stem: &str,
    ended: bool,
) -> Result<(), String> {
    let rel = format!("{stem}/{PLAYLIST}");
    let staging = format!(
        ".mosaic-staging/{}/{}-playlist",
        crate::names::plain_name(&writer.id),
        writer.attempts
    );
    let (rel, staging) = (&rel, &staging);
    let write =
        move |published: i64, chunks: Vec<JobRow>| -> BoxFuture<'_, Result<Option<i64>, String>> {
            Box::pin(async move {
                let Some((text, count)) = next_playlist(published, &chunks, ended)? else {
                    return Ok(None);
                };
                let put = shared
                    .output
                    .put_replace_bytes(text.into_bytes(), rel, staging);
                match tokio::time::timeout(PLAYLIST_PUT, put).await {
                    Ok(Ok(url)) => {
                        tracing::info!(output = %url, chunks = count, ended, "playlist written");
                        Ok(Some(count))
                    }
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err(format!("writing {rel} took over {PLAYLIST_PUT:?}")),
                }
            })
        };
    shared
        .queue
        .playlist_turn(parent, &write)
        .await
        .map_err(|e| e.to_string())?
}

/// The playlist a turn writes, and the count of chunks it lists (one more than there are
/// once ended): none when the published one (`published` chunks) lists as much.
fn next_playlist(
    published: i64,
    chunks: &[JobRow],
    ended: bool,
) -> Result<Option<(String, i64)>, String> {
    let (count, segments) = listed(chunks).map_err(|e| format!("{e:?}"))?;
    let segments: Vec<Segment> = segments.into_iter().map(|(s, _)| s).collect();
    let all = chunks.len();
    if ended {
        if count != all {
            return Err(format!("{count} of {all} chunks are done"));
        }
        return Ok(Some((render(&segments, true), all as i64 + 1)));
    }
    if count as i64 <= published || published > all as i64 {
        return Ok(None);
    }
    Ok(Some((render(&segments, false), count as i64)))
}

/// The segments the playlist can list: those of the chunks that succeeded, from the first
/// on while they follow each other; and how many chunks those are.
fn listed(chunks: &[JobRow]) -> Result<(usize, Vec<(Segment, Delivered)>), Failure> {
    let mut count = 0;
    let mut segments = Vec::new();
    for (_, c) in chunk_rows(chunks)? {
        if c.state != "succeeded" {
            break;
        }
        let outputs: Vec<Delivered> = c
            .outputs
            .clone()
            .and_then(|o| serde_json::from_value(o).ok())
            .unwrap_or_default();
        for d in outputs {
            if let Some(p) = d.segment.clone() {
                let segment = Segment {
                    name: p.name,
                    start_ns: p.start_ns,
                    end_ns: p.end_ns,
                };
                segments.push((segment, d));
            }
        }
        count += 1;
    }
    let only: Vec<Segment> = segments.iter().map(|(s, _)| s.clone()).collect();
    let contiguous = playable(&only).len();
    if contiguous != only.len() {
        return Err(Failure::Final(format!(
            "the chunks' segments do not follow each other: {contiguous} of {} from the start",
            only.len()
        )));
    }
    Ok((count, segments))
}

/// The chunk jobs with their indexes, in order.
fn chunk_rows(chunks: &[JobRow]) -> Result<Vec<(usize, &JobRow)>, Failure> {
    let mut rows = chunks
        .iter()
        .map(|c| {
            let spec: JobSpec = serde_json::from_str(&c.payload)
                .map_err(|e| Failure::Final(format!("a chunk job is unreadable: {e}")))?;
            let index = spec
                .chunk
                .map(|p| p.index)
                .ok_or_else(|| Failure::Final("a chunk job without its window".into()))?;
            Ok((index, c))
        })
        .collect::<Result<Vec<_>, Failure>>()?;
    rows.sort_by_key(|(index, _)| *index);
    Ok(rows)
}

#[cfg(test)]
mod tests;
