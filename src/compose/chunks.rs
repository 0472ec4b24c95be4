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

/// Where a chunked compose runs: the recording, its prepared plan and media.
pub(super) struct Chunked<'a> {
    pub(super) timeline: &'a Timeline,
    pub(super) report: &'a ArchiveReport,
    pub(super) prepared: &'a Prepared,
    pub(super) media: &'a ExtractedMedia,
    pub(super) opts: &'a ComposeOptions,
    pub(super) chunk_secs: u32,
}

impl Chunked<'_> {
    /// Runs every chunk in turn (`parts` of its window, into `output(index)` or its HLS
    /// segments), progress counted over the whole; gives each one's outcome and time.
    fn each<'p>(
        &self,
        parts: pipeline::Parts<'p>,
        output: impl Fn(usize) -> PathBuf,
        hls: Option<&HlsOutput>,
        control: &Control<'_>,
    ) -> Result<(Vec<pipeline::PipelineOutcome>, Vec<ChunkDone>)> {
        let plan = &self.prepared.plan;
        let total_ms = plan.duration_ms().max(1) as u64;
        let (mut outcomes, mut done) = (Vec::new(), Vec::new());
        for (index, window) in windows(plan.start_ms, plan.stop_ms, self.chunk_secs)
            .into_iter()
            .enumerate()
        {
            let chunk = chunk_plan(self.timeline, self.report, &self.prepared.plan_opts, window)?;
            let done_ms = (window.0 - plan.start_ms) as u64;
            let progress = |pos: u64, _: u64| {
                if let Some(p) = control.progress {
                    p(done_ms + pos, total_ms);
                }
            };
            let identity =
                std::sync::Arc::new(super::trim::TimeMap::identity(chunk.start_ms, chunk.fps));
            let path = output(index);
            let run = Run {
                plan: &chunk,
                time_map: &identity,
                parts,
                output: &path,
                hls: hls.map(|h| (h, Some(index))),
            };
            let started = std::time::Instant::now();
            let chunk_control = Control {
                progress: Some(&progress),
                cancel: control.cancel,
                published: control.published,
            };
            let outcome = self
                .prepared
                .run_plan(&run, self.media, self.opts, &chunk_control)?;
            done.push(ChunkDone {
                index,
                from_ms: window.0,
                to_ms: window.1,
                frames: outcome.frames,
                wall_ms: started.elapsed().as_millis() as u64,
            });
            outcomes.push(outcome);
        }
        Ok((outcomes, done))
    }

    /// Composes every chunk's picture in turn, then the stitch into `output`.
    pub(super) fn compose(
        &self,
        output: &Path,
        control: &Control<'_>,
    ) -> Result<(pipeline::PipelineOutcome, ChunksReport)> {
        let work = self.media.work_dir();
        let (_, done) = self.each(
            pipeline::Parts::Picture,
            |index| work.join(chunk_name(index)),
            None,
            control,
        )?;
        let files: Vec<PathBuf> = done
            .iter()
            .map(|c| work.join(chunk_name(c.index)))
            .collect();
        let started = std::time::Instant::now();
        let outcome = self.prepared.run_plan(
            &self
                .prepared
                .whole(pipeline::Parts::Stitch(&files), output, None),
            self.media,
            self.opts,
            &Control {
                progress: None,
                cancel: control.cancel,
                published: None,
            },
        )?;
        for f in &files {
            let _ = std::fs::remove_file(f);
        }
        let want = self.prepared.plan.frames();
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

    /// HLS in chunks: each chunk composed whole (picture and sound of its window) into its
    /// own segments, listed in the event playlist as soon as it is done (the sound is
    /// encoded a chunk at a time here: segments must play before the last chunk exists).
    pub(super) fn hls(
        &self,
        hls: &HlsOutput,
        control: &Control<'_>,
    ) -> Result<(pipeline::PipelineOutcome, ChunksReport)> {
        let (outcomes, done) = self.each(
            pipeline::Parts::Whole,
            |_| PathBuf::new(),
            Some(hls),
            control,
        )?;
        let outcome = pipeline::PipelineOutcome {
            frames: outcomes.iter().map(|o| o.frames).sum(),
            // Each chunk's sound is metered alone: no figure for the whole.
            loudness: super::meter::Loudness {
                integrated_lufs: None,
                true_peak_dbtp: None,
            },
            undecodable: outcomes.into_iter().flat_map(|o| o.undecodable).collect(),
        };
        let report = ChunksReport {
            chunks: done,
            stitch_ms: None,
        };
        Ok((outcome, report))
    }
}

/// The windows a chunked compose of `recording` (inspected: its files placed) makes under
/// `opts` (`opts.chunk_secs`, `opts.format` the output's format): none when it is composed in
/// one pass (no chunk size, no picture, or not longer than one chunk).
pub fn windows_of(
    recording: &crate::source::Recording,
    opts: &ComposeOptions,
) -> Result<Vec<(i64, i64)>> {
    let (Some(secs), Some(format)) = (opts.chunk_secs, opts.format) else {
        return Ok(Vec::new());
    };
    if !format.has_video() {
        return Ok(Vec::new());
    }
    opts.validate()?;
    // The plan's window, without the plan (nor the speech a speaker layout would decode).
    let Some((start, stop)) = Plan::window(&recording.timeline, &opts.plan) else {
        return Ok(Vec::new());
    };
    let all = windows(start, stop, secs);
    Ok(if all.len() > 1 { all } else { Vec::new() })
}

/// One window of a chunked compose made elsewhere than its stitch (a service's chunk job):
/// the whole's plan and media, ready to run the window alone.
pub struct ChunkRun<'r> {
    prepared: Prepared,
    media: ExtractedMedia,
    chunk: Plan,
    identity: std::sync::Arc<super::trim::TimeMap>,
    opts: &'r ComposeOptions,
}

impl<'r> ChunkRun<'r> {
    /// Prepares `window` (from [`windows_of`]) of `recording`, whose output is `output` (its
    /// folder must exist) in `opts.format`.
    pub fn prepare(
        recording: &mut crate::source::Recording,
        report: &ArchiveReport,
        opts: &'r ComposeOptions,
        window: (i64, i64),
        output: &Path,
    ) -> Result<ChunkRun<'r>> {
        if opts.format.is_none() {
            return Err(Error::InvalidOption(
                "a chunk needs the output's format".into(),
            ));
        }
        let prepared = Prepared::new(recording, report, output, opts)?;
        let media = ExtractedMedia::extract(
            &mut recording.media,
            report.streams.iter().flat_map(|s| &s.segments),
        )?;
        let chunk = chunk_plan(&recording.timeline, report, &prepared.plan_opts, window)?;
        let identity =
            std::sync::Arc::new(super::trim::TimeMap::identity(chunk.start_ms, chunk.fps));
        Ok(ChunkRun {
            prepared,
            media,
            chunk,
            identity,
            opts,
        })
    }

    /// The window's picture into the Matroska file `output`, for the stitch: from its own
    /// key frame, with the settings every chunk shares. Gives its frames.
    pub fn picture(&self, output: &Path, control: &Control<'_>) -> Result<u64> {
        let out = crate::output::AtomicFile::create(output)?;
        let outcome = self.run(pipeline::Parts::Picture, out.temp_path(), None, control)?;
        out.commit()?;
        Ok(outcome.frames)
    }

    /// The window's picture and sound as HLS segments beside `playlist` (which is not
    /// written: the playlist is the whole job's), named `<stem>-<label>-NNNNN.ts`, each
    /// handed to `control.published` as it closes; their times are the whole output's.
    /// Gives them, in order.
    pub fn hls_segments(
        &self,
        playlist: &Path,
        label: &str,
        control: &Control<'_>,
    ) -> Result<Vec<super::hls::Segment>> {
        if self.prepared.format != super::OutputFormat::Hls {
            return Err(Error::InvalidOption(
                "HLS segments need the HLS format".into(),
            ));
        }
        let hls = HlsOutput::for_chunk(playlist, label, control.published)?;
        self.run(pipeline::Parts::Whole, Path::new(""), Some(&hls), control)?;
        hls.finish_chunk()
    }

    fn run(
        &self,
        parts: pipeline::Parts<'_>,
        output: &Path,
        hls: Option<&HlsOutput<'_>>,
        control: &Control<'_>,
    ) -> Result<pipeline::PipelineOutcome> {
        let run = Run {
            plan: &self.chunk,
            time_map: &self.identity,
            parts,
            output,
            hls: hls.map(|h| (h, None)),
        };
        self.prepared
            .run_plan(&run, &self.media, self.opts, control)
    }
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
