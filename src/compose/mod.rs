//! Composing a whole archive into one watchable file, in one GStreamer pass.
//!
//! [`compose_recording`] inspects a recording (from any [`crate::source`]), lays out a pure
//! [`plan::Plan`] (who is where, when; what shows during mutes and absences), makes its
//! media files available to GStreamer (a ZIP's entries are extracted to a private temporary
//! folder; a folder's files are read where they are), runs the [`pipeline`], and renames
//! the output into place only when it is complete. A failure or cancellation leaves no file
//! that looks finished.

pub mod chapters;
pub mod chunks;
mod conversation;
mod extract;
pub mod hls;
pub mod limiter;
pub mod meter;
pub mod pipeline;
pub mod plan;
pub mod resume;
pub mod trim;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::inspect::{InspectOptions, inspect_recording};
use crate::output::AtomicFile;
use crate::source::{self, Recording, SourceOptions};
pub use extract::{ExtractedMedia, copy_skipping};
use plan::{Plan, PlanOptions};

/// The container and codecs of the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// H.264 + AAC in MP4 (moov first, for streaming).
    Mp4,
    /// VP8 + Opus in WebM.
    Webm,
    /// H.264 + Opus in Matroska.
    Mkv,
    /// AAC audio only, in MP4.
    M4a,
    /// Opus audio only, in Ogg.
    Opus,
    /// HLS: an `.m3u8` playlist and H.264 + AAC MPEG-TS segments beside it.
    Hls,
}

impl OutputFormat {
    /// From the output file's extension.
    pub fn from_path(path: &Path) -> Option<OutputFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "mp4" => Some(OutputFormat::Mp4),
            "webm" => Some(OutputFormat::Webm),
            "mkv" => Some(OutputFormat::Mkv),
            "m4a" => Some(OutputFormat::M4a),
            "opus" | "ogg" => Some(OutputFormat::Opus),
            "m3u8" => Some(OutputFormat::Hls),
            _ => None,
        }
    }

    pub fn has_video(self) -> bool {
        matches!(
            self,
            OutputFormat::Mp4 | OutputFormat::Webm | OutputFormat::Mkv | OutputFormat::Hls
        )
    }
}

/// How much encoding effort to spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Speed {
    /// Fastest encode, larger files (x264 ultrafast).
    Fast,
    /// The default (x264 veryfast).
    #[default]
    Balanced,
    /// Smaller files, slower (x264 medium).
    Quality,
}

impl Speed {
    pub fn x264_preset(self) -> &'static str {
        match self {
            Speed::Fast => "ultrafast",
            Speed::Balanced => "veryfast",
            Speed::Quality => "medium",
        }
    }

    pub fn vp8_cpu_used(self) -> i32 {
        match self {
            Speed::Fast => 16,
            Speed::Balanced => 8,
            Speed::Quality => 4,
        }
    }
}

/// Everything `mosaic compose` can be told: the plan's options (canvas, layout, mute
/// policy, window) and the output's.
#[derive(Debug, Clone)]
pub struct ComposeOptions {
    pub plan: PlanOptions,
    pub labels: bool,
    /// `None`: from the output's extension.
    pub format: Option<OutputFormat>,
    pub speed: Speed,
    /// Constant quality (x264 CRF-like quantizer; lower is better). Default 23.
    pub quality: u32,
    /// Any damage is an error (nothing written), instead of being skipped and concealed.
    pub strict: bool,
    /// Normalise the sound to this integrated loudness (LUFS, EBU R128): -16 for the web,
    /// -23 for broadcast. `None`: the sound stays as recorded.
    pub loudness: Option<f64>,
    /// Find who spoke when (each audio track decoded once) and report it
    /// ([`ComposeReport::speakers`]); the speaker layout does it anyway.
    pub speakers: bool,
    /// MP4: a chapter at each change of main speaker (as the speaker layout would cut),
    /// titled with who speaks.
    pub chapters: bool,
    /// The speaker layout's rules (and the chapters').
    pub speaker_rules: crate::layout::speaker::Rules,
    /// Cut the dead time: where nobody is present, or nobody speaks (`--trim`).
    pub trim: Option<trim::TrimOptions>,
    /// Compose the picture in chunks of this many seconds, each from a key frame, then join
    /// them without re-encoding, the sound made once for the whole (see [`chunks`]).
    pub chunk_secs: Option<u32>,
}

impl Default for ComposeOptions {
    fn default() -> Self {
        ComposeOptions {
            plan: PlanOptions::default(),
            labels: false,
            format: None,
            speed: Speed::Balanced,
            quality: 23,
            strict: false,
            loudness: None,
            speakers: false,
            chapters: false,
            speaker_rules: Default::default(),
            trim: None,
            chunk_secs: None,
        }
    }
}

impl ComposeOptions {
    /// Checks every option is in range.
    pub fn validate(&self) -> Result<()> {
        self.plan.validate()?;
        if let Some(l) = self.loudness
            && !(-70.0..=-5.0).contains(&l)
        {
            return Err(Error::InvalidOption(format!(
                "loudness {l} LUFS is outside -70..-5"
            )));
        }
        if let Some(t) = self.trim
            && !(1_000..=86_400_000).contains(&t.min_ms)
        {
            return Err(Error::InvalidOption(format!(
                "--trim-min {} s is outside 1 s..24 h",
                t.min_ms as f64 / 1000.0
            )));
        }
        if let Some(secs) = self.chunk_secs
            && !(1..=86_400).contains(&secs)
        {
            return Err(Error::InvalidOption(format!(
                "--chunk-secs {secs} is outside 1..86400"
            )));
        }
        if self.chunk_secs.is_some() && self.trim.is_some() {
            return Err(Error::InvalidOption(
                "--trim and --chunk-secs cannot be used together yet".into(),
            ));
        }
        if self.quality > 51 {
            return Err(Error::InvalidOption(format!(
                "quality {} is outside 0..51",
                self.quality
            )));
        }
        Ok(())
    }
}

/// Hooks for a caller that watches or stops a run.
#[derive(Default)]
pub struct Control<'a> {
    /// Called with (position ms, duration ms) a few times a second.
    pub progress: Option<&'a (dyn Fn(u64, u64) + Sync)>,
    /// Set to stop: the run ends with [`Error::Cancelled`] and leaves no output.
    pub cancel: Option<&'a AtomicBool>,
    /// HLS: called with each file as soon as it is complete, a segment and then the playlist
    /// that lists it (a service copies them to its store while the rest composes); an error
    /// stops the run.
    pub published: Option<hls::Published<'a>>,
}

/// What a finished composition produced (`mosaic compose --json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComposeReport {
    pub output: PathBuf,
    pub format: OutputFormat,
    /// The output window on the archive timeline.
    pub start_ms: i64,
    pub stop_ms: i64,
    /// The output's duration: the window less the cuts.
    pub duration_ms: i64,
    /// What `--trim` cut out of the window, on the archive timeline: an output time `t` is
    /// archive time `start_ms + t` plus the length of every cut that begins at or before it.
    pub cuts: Vec<trim::Cut>,
    pub width: i32,
    pub height: i32,
    pub fps: u32,
    pub frames: u64,
    /// The output sound's integrated loudness (LUFS, EBU R128), measured as encoded;
    /// `None` for silence.
    pub loudness_lufs: Option<f64>,
    /// Its highest true peak (dBTP, 4x oversampled); `None` for digital silence.
    pub true_peak_dbtp: Option<f64>,
    pub streams: usize,
    pub segments: usize,
    pub warnings: Vec<String>,
    pub wall_ms: u64,
    /// Output seconds made per wall-clock second.
    pub realtime_factor: f64,
    /// Who spoke when, on the output's timeline (with `speakers` or the speaker layout).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speakers: Option<Vec<crate::speech::Speaker>>,
    /// With `--chunk-secs`: each chunk's window and time, and the stitch's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunks: Option<chunks::ChunksReport>,
}

/// With `--strict`: damage anywhere is an error naming the file, and so is a file placed
/// by a fallback (a missing first-frame or start time).
pub fn refuse_damage(report: &crate::inspect::ArchiveReport) -> Result<()> {
    if let Some((file, what)) = report.damaged_files().into_iter().next() {
        return Err(Error::CorruptMedia {
            filename: file.to_owned(),
            reason: format!("{what} (--strict)"),
        });
    }
    match report.fallbacks.first() {
        Some(what) => Err(Error::Fallback(what.clone())),
        None => Ok(()),
    }
}

/// Composes the recording at `input` (any source mosaic reads, holding one recording) into
/// `output`.
pub fn compose(
    input: &Path,
    output: &Path,
    opts: &ComposeOptions,
    control: &Control<'_>,
) -> Result<ComposeReport> {
    opts.validate()?;
    let mut recording = source::open_one(input, &SourceOptions::default())?;
    compose_recording(&mut recording, output, opts, control)
}

/// Composes one recording into `output`.
pub fn compose_recording(
    recording: &mut Recording,
    output: &Path,
    opts: &ComposeOptions,
    control: &Control<'_>,
) -> Result<ComposeReport> {
    opts.validate()?;
    let report = inspect_recording(recording, &InspectOptions::default())?;
    compose_inspected(recording, &report, output, opts, control)
}

/// Composes one recording into `output`, given its inspection (`inspect_recording` of the
/// same recording: a caller that shows the report too need not inspect it twice).
pub fn compose_inspected(
    recording: &mut Recording,
    report: &crate::inspect::ArchiveReport,
    output: &Path,
    opts: &ComposeOptions,
    control: &Control<'_>,
) -> Result<ComposeReport> {
    compose_run(recording, report, output, opts, None, control)
}

/// The stitch of a chunked compose made elsewhere (the service's chunk jobs): the picture of
/// `chunks` (each window's, in order, see [`chunks::ChunkRun::picture`]) joined without
/// re-encoding, the sound made once for the whole, into `output`. MP4, WebM or Matroska.
pub fn stitch_inspected(
    recording: &mut Recording,
    report: &crate::inspect::ArchiveReport,
    chunks: &[PathBuf],
    output: &Path,
    opts: &ComposeOptions,
    control: &Control<'_>,
) -> Result<ComposeReport> {
    compose_run(recording, report, output, opts, Some(chunks), control)
}

fn compose_run(
    recording: &mut Recording,
    report: &crate::inspect::ArchiveReport,
    output: &Path,
    opts: &ComposeOptions,
    stitch: Option<&[PathBuf]>,
    control: &Control<'_>,
) -> Result<ComposeReport> {
    let started = Instant::now();
    let prepared = Prepared::new(recording, report, output, opts)?;
    let plan = &prepared.plan;
    let media = ExtractedMedia::extract(
        &mut recording.media,
        report.streams.iter().flat_map(|s| &s.segments),
    )?;
    let chunked = opts
        .chunk_secs
        .filter(|&secs| prepared.format.has_video() && plan.duration_ms() > i64::from(secs) * 1000);
    let time_map = &prepared.time_map;
    let chunked = chunked.map(|chunk_secs| chunks::Chunked {
        timeline: &recording.timeline,
        report,
        prepared: &prepared,
        media: &media,
        opts,
        chunk_secs,
    });
    let (output, (outcome, chunk_report)) = if prepared.format == OutputFormat::Hls {
        if stitch.is_some() {
            return Err(Error::InvalidOption(
                "HLS is not stitched: its chunks write their own segments".into(),
            ));
        }
        let hls = hls::HlsOutput::create(output, control.published)?;
        let done = match &chunked {
            None => (
                prepared.run_plan(
                    &prepared.whole(pipeline::Parts::Whole, Path::new(""), Some((&hls, None))),
                    &media,
                    opts,
                    control,
                )?,
                None,
            ),
            Some(chunks) => chunks.hls(&hls, control).map(|(o, c)| (o, Some(c)))?,
        };
        (hls.finish()?, done)
    } else {
        let out = AtomicFile::create(output)?;
        let path = out.temp_path();
        let done = match (stitch, &chunked) {
            (Some(files), _) => {
                let outcome = prepared.run_plan(
                    &prepared.whole(pipeline::Parts::Stitch(files), path, None),
                    &media,
                    opts,
                    control,
                )?;
                if outcome.frames != plan.frames() {
                    return Err(Error::Gstreamer(format!(
                        "the chunks hold {} frames, the output needs {}",
                        outcome.frames,
                        plan.frames()
                    )));
                }
                (outcome, None)
            }
            (None, None) => (
                prepared.run_plan(
                    &prepared.whole(pipeline::Parts::Whole, path, None),
                    &media,
                    opts,
                    control,
                )?,
                None,
            ),
            (None, Some(chunks)) => chunks.compose(path, control).map(|(o, c)| (o, Some(c)))?,
        };
        if opts.chapters && prepared.format == OutputFormat::Mp4 {
            let marks = prepared
                .spoken
                .as_ref()
                .map(|r| conversation::chapters(r, plan, &opts.speaker_rules, time_map))
                .unwrap_or_default();
            if !marks.is_empty() {
                chapters::add_to_file(path, &marks)?;
            }
        }
        (out.commit()?, done)
    };

    let wall = started.elapsed();
    let duration_ms = plan.duration_ms() - time_map.cut_ms();
    Ok(ComposeReport {
        output,
        format: prepared.format,
        start_ms: plan.start_ms,
        stop_ms: plan.stop_ms,
        duration_ms,
        cuts: time_map.cuts(),
        width: plan.width,
        height: plan.height,
        fps: plan.fps,
        frames: outcome.frames,
        loudness_lufs: outcome.loudness.integrated_lufs,
        true_peak_dbtp: outcome.loudness.true_peak_dbtp,
        speakers: prepared
            .spoken
            .as_ref()
            .map(|r| conversation::speakers(r, plan, time_map)),
        streams: plan.streams.len(),
        segments: plan.streams.iter().map(|s| s.segments.len()).sum(),
        warnings: report
            .warnings
            .iter()
            .cloned()
            .chain(prepared.trim_warning.clone())
            .chain(outcome.undecodable.iter().map(|f| {
                format!(
                    "{f}: no frame of its video could be decoded; its placeholder shows instead"
                )
            }))
            .collect(),
        wall_ms: wall.as_millis() as u64,
        realtime_factor: duration_ms as f64 / 1000.0 / wall.as_secs_f64().max(1e-9),
        chunks: chunk_report,
    })
}

/// One run of the pipeline: a plan (the whole's or a chunk's), its cuts, what it makes and
/// where it goes (a file, or HLS segments: the output and the chunk's index).
#[derive(Clone, Copy)]
pub(crate) struct Run<'a> {
    pub(crate) plan: &'a Plan,
    pub(crate) time_map: &'a std::sync::Arc<trim::TimeMap>,
    pub(crate) parts: pipeline::Parts<'a>,
    pub(crate) output: &'a Path,
    pub(crate) hls: Option<(&'a hls::HlsOutput<'a>, Option<usize>)>,
}

/// What a composition decides before it runs anything: the format, the plan (with the
/// speaker layout's shots), everybody's speech when something needs it, the cuts.
pub(crate) struct Prepared {
    pub(crate) format: OutputFormat,
    pub(crate) plan_opts: PlanOptions,
    pub(crate) plan: Plan,
    pub(crate) spoken: Option<crate::inspect::ArchiveReport>,
    pub(crate) time_map: std::sync::Arc<trim::TimeMap>,
    pub(crate) trim_warning: Option<String>,
}

impl Prepared {
    pub(crate) fn new(
        recording: &mut Recording,
        report: &crate::inspect::ArchiveReport,
        output: &Path,
        opts: &ComposeOptions,
    ) -> Result<Prepared> {
        opts.validate()?;
        let format = match opts.format {
            Some(f) => f,
            None => OutputFormat::from_path(output).ok_or_else(|| {
                Error::InvalidOption(format!(
                    "cannot tell the format from {:?}; use .mp4, .webm, .m4a or .opus, or --format",
                    output.display().to_string()
                ))
            })?,
        };
        if opts.chapters && format != OutputFormat::Mp4 {
            return Err(Error::InvalidOption(
                "--chapters needs an MP4 output (WebM and Matroska chapters are not written yet)"
                    .into(),
            ));
        }
        if opts.strict {
            refuse_damage(report)?;
        }
        if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty())
            && !parent.is_dir()
        {
            return Err(Error::Write {
                path: output.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the output's folder does not exist",
                ),
            });
        }
        let (plan_opts, spoken) = conversation::with_speakers(recording, report, opts)?;
        let plan = Plan::new(&recording.timeline, |name| report.segment(name), &plan_opts)
            .ok_or_else(|| {
                Error::InvalidOption(
                    "nothing to compose: the recording (or the --from/--to window) is empty".into(),
                )
            })?;
        let (time_map, trim_warning) = conversation::cuts(recording, spoken.as_ref(), &plan, opts);
        Ok(Prepared {
            format,
            plan_opts,
            plan,
            spoken,
            time_map: std::sync::Arc::new(time_map),
            trim_warning,
        })
    }

    /// A run of this composition's plan (not a chunk's): `parts` into the file `output`, or
    /// into HLS segments.
    pub(crate) fn whole<'a>(
        &'a self,
        parts: pipeline::Parts<'a>,
        output: &'a Path,
        hls: Option<(&'a hls::HlsOutput<'a>, Option<usize>)>,
    ) -> Run<'a> {
        Run {
            plan: &self.plan,
            time_map: &self.time_map,
            parts,
            output,
            hls,
        }
    }

    /// Runs the pipeline for one run: this composition's plan or a chunk's.
    pub(crate) fn run_plan(
        &self,
        run: &Run<'_>,
        media: &ExtractedMedia,
        opts: &ComposeOptions,
        control: &Control<'_>,
    ) -> Result<pipeline::PipelineOutcome> {
        let Run {
            plan,
            time_map,
            parts,
            output,
            hls,
        } = *run;
        let closed = |temp: &Path, from: u64, to: u64| match hls {
            Some((out, _)) => out.closed(temp, from, to),
            None => Ok(()),
        };
        let segments = hls.map(|(out, chunk)| pipeline::Segments {
            pattern: out.pattern(chunk),
            target_ns: u64::from(hls::SEGMENT_SECS) * 1_000_000_000,
            offset_ns: ((plan.start_ms - self.plan.start_ms).max(0) as u64) * 1_000_000,
            end_ns: ((plan.stop_ms - self.plan.start_ms - time_map.cut_ms()).max(0) as u64)
                * 1_000_000,
            closed: &closed,
        });
        let gop_secs = match self.format {
            OutputFormat::Hls => hls::SEGMENT_SECS,
            // Like ffmpeg's x264 default (250): few key frames, small files.
            _ => 8,
        };
        let lookup = |name: &str| media.lookup(name);
        let name_of = |path: &Path| media.name_of(path).map(str::to_owned);
        pipeline::run(&pipeline::PipelineInput {
            plan,
            parts,
            segments: segments.as_ref(),
            time_map,
            media: &lookup,
            format: self.format,
            speed: opts.speed,
            quality: opts.quality,
            gop_frames: plan.fps * gop_secs,
            labels: opts.labels,
            loudness: opts.loudness,
            name_of: &name_of,
            strict: opts.strict,
            work_dir: media.work_dir(),
            output,
            progress: control.progress,
            cancel: control.cancel,
        })
    }
}
