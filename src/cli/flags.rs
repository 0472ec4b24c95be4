//! Flags shared by several subcommands: how to read the input, and how to compose.

use std::path::PathBuf;

use anyhow::Context;

use mosaic::compose::plan::{PlanOptions, VideoMutePolicy};
use mosaic::compose::trim::{TrimMode, TrimOptions};
use mosaic::compose::{ComposeOptions, OutputFormat, Speed};
use mosaic::layout::speaker::Rules;
use mosaic::layout::{CustomLayout, Layout};
use mosaic::source::{SourceKind, SourceOptions};

/// How to read the input, shared by every command that takes one.
#[derive(clap::Args)]
pub struct SourceFlags {
    /// The platform the input comes from [default: told from the path: a .zip or a folder
    /// with a manifest is OpenTok, a folder of <connectionId>-<n>.json logs is
    /// LiveSwitch, a .json event is LiveSwitch or EnableX by its contents].
    #[arg(long = "source", value_enum, value_name = "PLATFORM")]
    kind: Option<SourceKind>,
    /// Where an event's or notification's media files are [default: the event's folder].
    #[arg(long, value_name = "DIR")]
    media: Option<PathBuf>,
    /// LiveSwitch: only the sessions of this channel.
    #[arg(long, value_name = "ID")]
    channel: Option<String>,
    /// Participants' labels, a JSON object of id -> label; ids are OpenTok stream ids,
    /// LiveSwitch client, user, device or connection ids, EnableX file names.
    #[arg(long, value_name = "FILE")]
    labels_file: Option<PathBuf>,
    /// The longest a recording may span (30m, 36h, 2d, or seconds); a time further from
    /// its start is refused as impossible before any work [default: 24h].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    max_span: Option<i64>,
    /// Any damage in the media is an error (exit 65, nothing written). Without it, a damaged
    /// region is skipped (reading resumes at the next cluster, the tile holds its last good
    /// frame, the sound is silent there) and named in the warnings.
    #[arg(long)]
    pub strict: bool,
}

impl SourceFlags {
    pub fn to_options(&self) -> anyhow::Result<SourceOptions> {
        let labels = match &self.labels_file {
            Some(path) => SourceOptions::read_labels(path)?,
            None => Default::default(),
        };
        Ok(SourceOptions {
            kind: self.kind,
            media_dir: self.media.clone(),
            channel: self.channel.clone(),
            labels,
            max_span_ms: self.max_span,
        })
    }
}

/// The options of a composition, shared by `compose` and `batch`.
#[derive(clap::Args)]
pub struct ComposeFlags {
    /// The output format, when the extension does not say.
    #[arg(long, value_enum)]
    format: Option<OutputFormat>,
    /// bestFit (a grid, recomputed as people join and leave; a screen share gets the
    /// large region), pip, verticalPresentation, horizontalPresentation, speaker (the
    /// current speaker in the main region, cut as they begin, chosen from everybody's
    /// speech with hindsight; interjections under 1.5 s ignored, no shot under 2 s, two
    /// side by side when they talk together for 3 s; a screen share keeps the main region),
    /// or custom (with --layout-file).
    #[arg(long, default_value = "bestFit", value_parser = parse_layout_name)]
    layout: String,
    /// --layout speaker (and --chapters): the cut to a new speaker comes this long before
    /// their first word.
    #[arg(long, value_name = "MS", default_value_t = Rules::default().lead_ms,
          value_parser = clap::value_parser!(i64).range(0..=1_000), help_heading = "Speaker layout")]
    speaker_lead_ms: i64,
    /// A turn shorter than this (an interjection, a cough) never takes the main region.
    #[arg(long, value_name = "MS", default_value_t = Rules::default().min_turn_ms,
          value_parser = clap::value_parser!(i64).range(0..=60_000), help_heading = "Speaker layout")]
    min_turn_ms: i64,
    /// No shot is shorter than this: a cut that would come sooner waits.
    #[arg(long, value_name = "MS", default_value_t = Rules::default().min_shot_ms,
          value_parser = clap::value_parser!(i64).range(0..=60_000), help_heading = "Speaker layout")]
    min_shot_ms: i64,
    /// Two who talk together this long share the main region, side by side.
    #[arg(long, value_name = "MS", default_value_t = Rules::default().together_ms,
          value_parser = clap::value_parser!(i64).range(0..=600_000), help_heading = "Speaker layout")]
    together_ms: i64,
    /// A custom layout: {"regions": [{"x":0,"y":0,"w":0.5,"h":1,"z":0,"role":"screen"},
    /// {"x":0.5,"y":0,"w":0.5,"h":1,"stream":"<streamId>"}]} (fractions of the canvas;
    /// role is screen, camera or any).
    #[arg(long, value_name = "FILE")]
    layout_file: Option<PathBuf>,
    /// Output size, WIDTHxHEIGHT, from 640x480 to 1920x1080.
    #[arg(long, default_value = "1280x720", value_parser = mosaic::compose::plan::parse_size)]
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
    /// Cut the dead time: `empty`, every stretch longer than --trim-min where nobody is
    /// present (everyone left, then someone came back); `quiet`, those and every stretch
    /// where nobody speaks, keeping a second of each side. Picture and sound are cut at the
    /// same frame, the sound faded over 20 ms; captions and chapters follow; the --json
    /// report's "cuts" (archive time) map the output back to the recording.
    #[arg(long, value_enum, value_name = "WHAT", help_heading = "Trimming")]
    trim: Option<TrimMode>,
    /// Only stretches longer than this are cut (10s, 1m, or seconds).
    #[arg(long, value_name = "DURATION", default_value = "10", value_parser = parse_duration,
          help_heading = "Trimming")]
    trim_min: i64,
    /// Compose the picture in chunks of this many seconds, each from its own key frame, then
    /// join them without re-encoding (the sound is mixed and encoded once for the whole):
    /// the output is the one-pass output's, frame for frame. Chunks are what the service's
    /// workers share; here they run one after another. Not with --trim.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u32).range(1..=86_400))]
    chunk_secs: Option<u32>,
    /// Encoding effort.
    #[arg(long, value_enum, default_value_t = Speed::Balanced)]
    speed: Speed,
    /// Constant quality, 0 (best) to 51; like x264's CRF.
    #[arg(long, default_value_t = 23)]
    quality: u32,
    /// Normalise the sound to an integrated loudness in LUFS (EBU R128; -16 for the web,
    /// -23 for broadcast), its true peak kept under -1 dBTP; off keeps the sound as
    /// recorded (a look-ahead limiter still keeps loud sums under -1.5 dBTP).
    #[arg(long, default_value = "off", value_parser = parse_loudness, value_name = "LUFS|off", allow_hyphen_values = true)]
    loudness: Loudness,
}

impl ComposeFlags {
    pub fn to_options(&self) -> anyhow::Result<ComposeOptions> {
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
            (name, None) => Layout::named(name).unwrap_or(Layout::BestFit),
        };
        Ok(ComposeOptions {
            plan: PlanOptions {
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
            },
            labels: self.labels,
            format: self.format,
            speed: self.speed,
            quality: self.quality,
            strict: false,
            loudness: self.loudness.0,
            speakers: false,
            chapters: false,
            speaker_rules: Rules {
                lead_ms: self.speaker_lead_ms,
                min_turn_ms: self.min_turn_ms,
                min_shot_ms: self.min_shot_ms,
                together_ms: self.together_ms,
            },
            trim: self.trim.map(|mode| TrimOptions {
                mode,
                min_ms: self.trim_min,
            }),
            chunk_secs: self.chunk_secs,
        })
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum MutePolicy {
    Freeze,
    Black,
    Placeholder,
}

const LAYOUTS: [&str; 6] = [
    "bestFit",
    "pip",
    "verticalPresentation",
    "horizontalPresentation",
    "speaker",
    "custom",
];

pub fn parse_layout_name(s: &str) -> Result<String, String> {
    LAYOUTS
        .iter()
        .find(|l| l.eq_ignore_ascii_case(s))
        .map(|l| l.to_string())
        .ok_or_else(|| format!("unknown layout {s:?}; choose one of {}", LAYOUTS.join(", ")))
}

/// A loudness target, or none.
#[derive(Clone, Copy, Debug)]
pub struct Loudness(Option<f64>);

pub fn parse_loudness(s: &str) -> Result<Loudness, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(Loudness(None));
    }
    let v: f64 = s
        .trim()
        .trim_end_matches("LUFS")
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a loudness in LUFS (like -16) or off"))?;
    if !(-70.0..=-5.0).contains(&v) {
        return Err(format!("{v} LUFS is outside -70..-5"));
    }
    Ok(Loudness(Some(v)))
}

/// A duration: a number with `s`, `m`, `h` or `d` (seconds without one), to milliseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not a duration (like 30m, 36h, 2d or 5400)");
    let t = s.trim();
    let (number, unit_ms) = match t.char_indices().last() {
        Some((i, 's')) => (&t[..i], 1_000.0),
        Some((i, 'm')) => (&t[..i], 60_000.0),
        Some((i, 'h')) => (&t[..i], 3_600_000.0),
        Some((i, 'd')) => (&t[..i], 86_400_000.0),
        _ => (t, 1_000.0),
    };
    let v: f64 = number.trim().parse().map_err(|_| bad())?;
    let ms = v * unit_ms;
    if !ms.is_finite() || ms <= 0.0 || ms > 1e15 {
        return Err(bad());
    }
    Ok(ms.round() as i64)
}

/// Seconds (`90`, `90.5`) or `[h:]m:s[.ms]`, to archive milliseconds.
pub fn parse_time(s: &str) -> Result<i64, String> {
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
