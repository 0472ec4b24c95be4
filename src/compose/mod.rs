//! Composing a whole archive into one watchable file, in one GStreamer pass.
//!
//! [`compose`] opens and inspects the archive, lays out a pure [`plan::Plan`] (who is where,
//! when; what shows during mutes and absences), extracts the media to a private temporary
//! folder, runs the [`pipeline`], and renames the output into place only when it is
//! complete. A failure or cancellation leaves no file that looks finished.

pub mod pipeline;
pub mod plan;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde::Serialize;

use crate::archive::Archive;
use crate::error::{Error, Result};
use crate::inspect::{InspectOptions, SegmentReport, TrackKind, inspect_opened};
use crate::layout::Layout;
use crate::output::AtomicFile;
use plan::{Plan, PlanOptions, VideoMutePolicy};

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
            _ => None,
        }
    }

    pub fn has_video(self) -> bool {
        matches!(
            self,
            OutputFormat::Mp4 | OutputFormat::Webm | OutputFormat::Mkv
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

/// Everything `mosaic compose` can be told.
#[derive(Debug, Clone)]
pub struct ComposeOptions {
    pub width: i32,
    pub height: i32,
    pub fps: u32,
    pub layout: Layout,
    pub video_mute: VideoMutePolicy,
    pub max_freeze_ms: i64,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub labels: bool,
    /// `None`: from the output's extension.
    pub format: Option<OutputFormat>,
    pub speed: Speed,
    /// Constant quality (x264 CRF-like quantizer; lower is better). Default 23.
    pub quality: u32,
}

impl Default for ComposeOptions {
    fn default() -> Self {
        ComposeOptions {
            width: 1280,
            height: 720,
            fps: 30,
            layout: Layout::BestFit,
            video_mute: VideoMutePolicy::Freeze,
            max_freeze_ms: 1_000,
            from_ms: None,
            to_ms: None,
            labels: false,
            format: None,
            speed: Speed::Balanced,
            quality: 23,
        }
    }
}

impl ComposeOptions {
    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidOption(m));
        if !(640..=1920).contains(&self.width) || !(480..=1080).contains(&self.height) {
            return bad(format!(
                "size {}x{} is outside 640x480 .. 1920x1080",
                self.width, self.height
            ));
        }
        if self.width % 2 != 0 || self.height % 2 != 0 {
            return bad(format!("size {}x{} must be even", self.width, self.height));
        }
        if !(1..=60).contains(&self.fps) {
            return bad(format!("frame rate {} is outside 1..60", self.fps));
        }
        if self.quality > 51 {
            return bad(format!("quality {} is outside 0..51", self.quality));
        }
        if let (Some(f), Some(t)) = (self.from_ms, self.to_ms)
            && t <= f
        {
            return bad(format!("--to {t} ms is not after --from {f} ms"));
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
}

/// What a finished composition produced (`mosaic compose --json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComposeReport {
    pub output: PathBuf,
    pub format: OutputFormat,
    /// The output window on the archive timeline.
    pub start_ms: i64,
    pub stop_ms: i64,
    pub duration_ms: i64,
    pub width: i32,
    pub height: i32,
    pub fps: u32,
    pub frames: u64,
    pub streams: usize,
    pub segments: usize,
    pub warnings: Vec<String>,
    pub wall_ms: u64,
    /// Output seconds made per wall-clock second.
    pub realtime_factor: f64,
}

/// An archive's media files, extracted under names of our own into a private folder that
/// is removed when this is dropped.
pub struct ExtractedMedia {
    /// Kept for its lifetime: the folder goes when this does.
    _dir: tempfile::TempDir,
    files: Vec<(String, pipeline::MediaFile)>,
}

impl ExtractedMedia {
    pub fn extract<'a>(
        archive: &mut Archive,
        segments: impl Iterator<Item = &'a SegmentReport>,
    ) -> Result<ExtractedMedia> {
        let dir = tempfile::Builder::new()
            .prefix("mosaic-media-")
            .tempdir()
            .map_err(|source| Error::Write {
                path: std::env::temp_dir(),
                source,
            })?;
        let mut files = Vec::new();
        for (i, seg) in segments.enumerate() {
            let path = dir.path().join(format!("{i}.mkv"));
            let mut file = std::fs::File::create(&path).map_err(|source| Error::Write {
                path: path.clone(),
                source,
            })?;
            let mut entry = archive.open_entry(&seg.filename)?;
            std::io::copy(&mut entry, &mut file).map_err(|e| Error::DamagedEntry {
                name: seg.filename.clone(),
                reason: e.to_string(),
            })?;
            let codec = |kind| {
                seg.tracks
                    .iter()
                    .find(|t| t.kind == kind && t.frames > 0)
                    .map(|t| t.codec)
            };
            files.push((
                seg.filename.clone(),
                (path, codec(TrackKind::Video), codec(TrackKind::Audio)),
            ));
        }
        Ok(ExtractedMedia { _dir: dir, files })
    }

    /// The extracted file for an archive entry name.
    pub fn lookup(&self, name: &str) -> Option<pipeline::MediaFile> {
        self.files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, m)| m.clone())
    }
}

/// Composes the archive at `archive` into `output`.
pub fn compose(
    archive: &Path,
    output: &Path,
    opts: &ComposeOptions,
    control: &Control<'_>,
) -> Result<ComposeReport> {
    let started = Instant::now();
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

    let mut archive = Archive::open(archive)?;
    let report = inspect_opened(&mut archive, &InspectOptions::default())?;
    let timeline = archive.timeline();
    let plan_opts = PlanOptions {
        width: opts.width,
        height: opts.height,
        fps: opts.fps,
        layout: opts.layout.clone(),
        video_mute: opts.video_mute,
        max_freeze_ms: opts.max_freeze_ms,
        from_ms: opts.from_ms,
        to_ms: opts.to_ms,
    };
    let plan = Plan::new(&timeline, |name| report.segment(name), &plan_opts).ok_or_else(|| {
        Error::InvalidOption(
            "nothing to compose: the archive (or the --from/--to window) is empty".into(),
        )
    })?;

    let media = ExtractedMedia::extract(
        &mut archive,
        report.streams.iter().flat_map(|s| &s.segments),
    )?;
    let lookup = |name: &str| media.lookup(name);

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
    let out = AtomicFile::create(output)?;
    let outcome = pipeline::run(&pipeline::PipelineInput {
        plan: &plan,
        media: &lookup,
        format,
        speed: opts.speed,
        quality: opts.quality,
        // Like ffmpeg's x264 default (250): few key frames, small files.
        gop_frames: opts.fps * 8,
        labels: opts.labels,
        output: out.temp_path(),
        progress: control.progress,
        cancel: control.cancel,
    })?;
    let output = out.commit()?;

    let wall = started.elapsed();
    Ok(ComposeReport {
        output,
        format,
        start_ms: plan.start_ms,
        stop_ms: plan.stop_ms,
        duration_ms: plan.duration_ms(),
        width: plan.width,
        height: plan.height,
        fps: plan.fps,
        frames: outcome.frames,
        streams: plan.streams.len(),
        segments: plan.streams.iter().map(|s| s.segments.len()).sum(),
        warnings: report.warnings,
        wall_ms: wall.as_millis() as u64,
        realtime_factor: plan.duration_ms() as f64 / 1000.0 / wall.as_secs_f64().max(1e-9),
    })
}
