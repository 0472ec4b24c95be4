//! One recording composed in chunks (`--chunk-secs`): the output's timeline is cut into
//! windows on output-frame boundaries; each window's picture is composed alone (from its
//! own key frame, with the encoder settings of every other chunk, so all share one SPS and
//! PPS) into a Matroska chunk; the stitch then joins the chunks' frames without re-encoding
//! and muxes them with the sound, mixed and encoded once for the whole span (one AAC or Opus
//! stream: no priming at every seam).
//!
//! The plan is global: every chunk is a window on the plan of the whole (the speaker
//! layout's shots are chosen once, over the whole call), so a layout change, a freeze, a
//! placeholder or a label that spans a boundary goes on across it without a seam. The
//! windows themselves are pure ([`windows`]); running them is this module's edge.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::inspect::ArchiveReport;
use crate::timeline::Timeline;

use super::hls::HlsOutput;
use super::plan::{Plan, PlanOptions};
use super::{ComposeOptions, Control, ExtractedMedia, Prepared, Run, pipeline};

/// The windows `[from_ms, to_ms)` of `[start_ms, stop_ms)`, `chunk_secs` long (the last one
/// shorter). Whole seconds at an integer frame rate are whole frames, so every boundary is an
/// output frame's start.
pub fn windows(start_ms: i64, stop_ms: i64, chunk_secs: u32) -> Vec<(i64, i64)> {
    let step = i64::from(chunk_secs.max(1)) * 1000;
    let mut out = Vec::new();
    let mut at = start_ms;
    while at < stop_ms {
        out.push((at, (at + step).min(stop_ms)));
        at += step;
    }
    out
}

/// One chunk done: its window (archive ms), frames and time.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ChunkDone {
    pub index: usize,
    pub from_ms: i64,
    pub to_ms: i64,
    pub frames: u64,
    pub wall_ms: u64,
}

/// What a chunked compose did (`--json`'s `"chunks"`): every chunk, and the stitch's time
/// (none for HLS, whose chunks are its segments).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ChunksReport {
    pub chunks: Vec<ChunkDone>,
    pub stitch_ms: Option<u64>,
}

/// Chunk `index`'s file name in a work folder.
pub fn chunk_name(index: usize) -> String {
    format!("chunk-{index:05}.mkv")
}

/// Composes every chunk in turn, then the stitch into `output`.
#[allow(clippy::too_many_arguments)]
pub(super) fn compose_in_chunks(
    timeline: &Timeline,
    report: &ArchiveReport,
    prepared: &Prepared,
    media: &ExtractedMedia,
    opts: &ComposeOptions,
    chunk_secs: u32,
    output: &Path,
    control: &Control<'_>,
) -> Result<(pipeline::PipelineOutcome, ChunksReport)> {
    let plan = &prepared.plan;
    let total_ms = plan.duration_ms().max(1) as u64;
    let mut files: Vec<PathBuf> = Vec::new();
    let mut done = Vec::new();
    for (index, window) in windows(plan.start_ms, plan.stop_ms, chunk_secs)
        .into_iter()
        .enumerate()
    {
        let chunk = chunk_plan(timeline, report, &prepared.plan_opts, window)?;
        let path = media.work_dir().join(chunk_name(index));
        let done_ms = (window.0 - plan.start_ms) as u64;
        // Progress over the whole: the chunks are the work, the stitch a little more.
        let progress = |pos: u64, _: u64| {
            if let Some(p) = control.progress {
                p(done_ms + pos, total_ms);
            }
        };
        let chunk_control = Control {
            progress: Some(&progress),
            cancel: control.cancel,
        };
        let identity =
            std::sync::Arc::new(super::trim::TimeMap::identity(chunk.start_ms, chunk.fps));
        let run = Run {
            plan: &chunk,
            time_map: &identity,
            parts: pipeline::Parts::Picture,
            output: &path,
            hls: None,
        };
        let started = std::time::Instant::now();
        let outcome = prepared.run_plan(&run, media, opts, &chunk_control)?;
        done.push(ChunkDone {
            index,
            from_ms: window.0,
            to_ms: window.1,
            frames: outcome.frames,
            wall_ms: started.elapsed().as_millis() as u64,
        });
        files.push(path);
    }
    let started = std::time::Instant::now();
    let outcome = prepared.run_to(
        media,
        opts,
        pipeline::Parts::Stitch(&files),
        output,
        &Control {
            progress: None,
            cancel: control.cancel,
        },
    )?;
    for f in &files {
        let _ = std::fs::remove_file(f);
    }
    let want = plan.frames();
    if outcome.frames != want {
        return Err(Error::Gstreamer(format!(
            "the chunks hold {} frames, the output needs {want}",
            outcome.frames
        )));
    }
    let report = ChunksReport {
        chunks: done,
        stitch_ms: Some(started.elapsed().as_millis() as u64),
    };
    Ok((outcome, report))
}

/// HLS in chunks: each chunk composed whole (picture and sound of its window) into its own
/// segments, listed in the event playlist as soon as it is done (the sound is encoded a
/// chunk at a time here: segments must play before the last chunk exists).
#[allow(clippy::too_many_arguments)]
pub(super) fn hls_in_chunks(
    timeline: &Timeline,
    report: &ArchiveReport,
    prepared: &Prepared,
    media: &ExtractedMedia,
    opts: &ComposeOptions,
    chunk_secs: u32,
    hls: &HlsOutput,
    control: &Control<'_>,
) -> Result<(pipeline::PipelineOutcome, ChunksReport)> {
    let plan = &prepared.plan;
    let total_ms = plan.duration_ms().max(1) as u64;
    let mut frames = 0;
    let mut done = Vec::new();
    let mut undecodable = Vec::new();
    for (index, window) in windows(plan.start_ms, plan.stop_ms, chunk_secs)
        .into_iter()
        .enumerate()
    {
        let chunk = chunk_plan(timeline, report, &prepared.plan_opts, window)?;
        let done_ms = (window.0 - plan.start_ms) as u64;
        let progress = |pos: u64, _: u64| {
            if let Some(p) = control.progress {
                p(done_ms + pos, total_ms);
            }
        };
        let identity =
            std::sync::Arc::new(super::trim::TimeMap::identity(chunk.start_ms, chunk.fps));
        let run = Run {
            plan: &chunk,
            time_map: &identity,
            parts: pipeline::Parts::Whole,
            output: Path::new(""),
            hls: Some((hls, Some(index))),
        };
        let started = std::time::Instant::now();
        let outcome = prepared.run_plan(
            &run,
            media,
            opts,
            &Control {
                progress: Some(&progress),
                cancel: control.cancel,
            },
        )?;
        done.push(ChunkDone {
            index,
            from_ms: window.0,
            to_ms: window.1,
            frames: outcome.frames,
            wall_ms: started.elapsed().as_millis() as u64,
        });
        frames += outcome.frames;
        undecodable.extend(outcome.undecodable);
    }
    let outcome = pipeline::PipelineOutcome {
        frames,
        // Each chunk's sound is metered alone: no figure for the whole.
        loudness: super::meter::Loudness {
            integrated_lufs: None,
            true_peak_dbtp: None,
        },
        undecodable,
    };
    Ok((
        outcome,
        ChunksReport {
            chunks: done,
            stitch_ms: None,
        },
    ))
}

/// The plan of one window: the whole's options (its layout's shots included) over the
/// window alone.
fn chunk_plan(
    timeline: &Timeline,
    report: &ArchiveReport,
    whole: &PlanOptions,
    (from_ms, to_ms): (i64, i64),
) -> Result<Plan> {
    let opts = PlanOptions {
        from_ms: Some(from_ms),
        to_ms: Some(to_ms),
        ..whole.clone()
    };
    Plan::new(timeline, |name| report.segment(name), &opts)
        .ok_or_else(|| Error::InvalidOption(format!("the chunk {from_ms}..{to_ms} ms is empty")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn windows_cover_the_span_in_whole_seconds() {
        assert_eq!(
            super::windows(1_000, 100_500, 40),
            [(1_000, 41_000), (41_000, 81_000), (81_000, 100_500)]
        );
        assert_eq!(super::windows(0, 40_000, 40), [(0, 40_000)]);
        assert!(super::windows(5, 5, 40).is_empty());
    }
}
