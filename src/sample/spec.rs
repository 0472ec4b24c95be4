//! What a sample archive holds, and the frame-by-frame plan derived from it (pure, no I/O).
//!
//! All times in a spec are archive milliseconds (from the manifest's `createdAt`), so a
//! test can say "a flash at 7 s" and look for it at 7 s in any output. A segment's file
//! starts its own clock at 0 at the segment's start, as the media server's captures do.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which container and codecs the archive uses (OpenTok: VP8 projects get WebM, H.264 ones MKV).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerKind {
    /// `.webm` with VP8 video and Opus audio.
    #[default]
    Webm,
    /// `.mkv` with H.264 video and Opus audio.
    Mkv,
}

impl ContainerKind {
    pub fn extension(self) -> &'static str {
        match self {
            ContainerKind::Webm => "webm",
            ContainerKind::Mkv => "mkv",
        }
    }
}

/// A whole sample archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchiveSpec {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default = "default_created_at")]
    pub created_at: i64,
    #[serde(default)]
    pub container: ContainerKind,
    /// Video frame rate of every stream.
    #[serde(default = "default_fps")]
    pub fps: u32,
    /// H.264 only: B-frames, which store video in decode order (0 like WebRTC).
    #[serde(default)]
    pub h264_bframes: u32,
    /// Video bitrate in kbit/s.
    #[serde(default = "default_kbps")]
    pub video_kbps: u32,
    pub streams: Vec<StreamSpec>,
}

/// One published stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamSpec {
    pub id: String,
    /// Goes into `connectionData` as `{"name": label}`.
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default = "default_video_type")]
    pub video_type: String,
    #[serde(default = "default_width")]
    pub width: u32,
    #[serde(default = "default_height")]
    pub height: u32,
    /// Picture colour, RGB.
    pub color: [u8; 3],
    /// Frequency of the stream's quiet background tone.
    #[serde(default = "default_tone")]
    pub tone_hz: f64,
    /// Archive times of sync marks: a white frame and a loud beep.
    #[serde(default)]
    pub marks_ms: Vec<i64>,
    pub segments: Vec<SegmentSpec>,
    /// Recorded sound mixed over the tone: speech for detection tests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub speech: Vec<SpeechClip>,
    /// Burn each frame's number (on the archive timeline, at the archive's frame rate) into
    /// its picture as a block code (see [`super::synth::FRAME_CODE_BITS`]), for tests that
    /// read back which camera frame an output frame shows.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub frame_code: bool,
}

/// A 16-bit PCM WAV file (any rate, mono or stereo) heard from an archive time on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeechClip {
    pub at_ms: i64,
    pub wav: std::path::PathBuf,
}

/// One continuous recording (one file) of a stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentSpec {
    pub start_ms: i64,
    pub stop_ms: i64,
    /// `[from, to)` archive times with no video frames.
    #[serde(default)]
    pub video_mutes: Vec<[i64; 2]>,
    /// `[from, to)` archive times with no audio packets.
    #[serde(default)]
    pub audio_mutes: Vec<[i64; 2]>,
    /// From this archive time on, the picture has another size.
    #[serde(default)]
    pub resize: Option<Resize>,
    /// Leave out the audio track entirely.
    #[serde(default)]
    pub no_audio: bool,
    /// Leave out the video track entirely (an audio-only publisher).
    #[serde(default)]
    pub no_video: bool,
}

impl SegmentSpec {
    /// A segment from `start_ms` to `stop_ms` with no mutes, no resize, with audio.
    pub fn new(start_ms: i64, stop_ms: i64) -> SegmentSpec {
        SegmentSpec {
            start_ms,
            stop_ms,
            video_mutes: vec![],
            audio_mutes: vec![],
            resize: None,
            no_audio: false,
            no_video: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resize {
    pub at_ms: i64,
    pub width: u32,
    pub height: u32,
}

fn default_created_at() -> i64 {
    1_700_000_000_000
}
fn default_fps() -> u32 {
    30
}
fn default_kbps() -> u32 {
    300
}
fn default_video_type() -> String {
    "camera".into()
}
fn default_width() -> u32 {
    320
}
fn default_height() -> u32 {
    240
}
fn default_tone() -> f64 {
    440.0
}

/// Audio of every sample: 48 kHz mono, encoded in 20 ms Opus packets.
pub const SAMPLE_RATE: u32 = 48_000;
/// Length of a sync beep.
pub const BEEP_MS: i64 = 100;

impl ArchiveSpec {
    /// Checks what would make an unusable archive.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidSpec(m));
        if self.fps == 0 || self.fps > 120 {
            return bad(format!("fps {} is not in 1..=120", self.fps));
        }
        if self.streams.is_empty() {
            return bad("an archive needs at least one stream".into());
        }
        for s in &self.streams {
            if s.id.is_empty() || s.id.contains(['/', '\\', '.']) {
                return bad(format!("stream id {:?} must be a plain name", s.id));
            }
            if s.segments.is_empty() {
                return bad(format!("stream {}: no segments", s.id));
            }
            let sizes = std::iter::once((s.width, s.height)).chain(
                s.segments
                    .iter()
                    .filter_map(|g| g.resize.map(|r| (r.width, r.height))),
            );
            for (w, h) in sizes {
                if w < 16 || h < 16 || w > 3840 || h > 2160 || w % 2 == 1 || h % 2 == 1 {
                    return bad(format!(
                        "stream {}: size {w}x{h} must be even, 16..3840 x 16..2160",
                        s.id
                    ));
                }
            }
            for g in &s.segments {
                if g.no_audio && g.no_video {
                    return bad(format!("stream {}: a segment needs audio or video", s.id));
                }
                if g.start_ms < 0 || g.stop_ms <= g.start_ms {
                    return bad(format!(
                        "stream {}: segment {}..{} ms is empty or negative",
                        s.id, g.start_ms, g.stop_ms
                    ));
                }
            }
        }
        Ok(())
    }

    /// The file name of segment `index` (0-based) of `stream`: `<id>.ext` for a stream in
    /// one piece, `<id>_N.ext` (N from 1) for one in several.
    pub fn filename(&self, stream: &StreamSpec, index: usize) -> String {
        let ext = self.container.extension();
        if stream.segments.len() == 1 {
            format!("{}.{ext}", stream.id)
        } else {
            format!("{}_{}.{ext}", stream.id, index + 1)
        }
    }
}

/// One video frame to encode, in the segment's own time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramePlan {
    pub pts_ns: i64,
    pub duration_ns: i64,
    pub width: u32,
    pub height: u32,
    /// A sync mark falls within this frame's display time: the frame is white.
    pub flash: bool,
    /// The frame's index in the unmuted sequence (drives the moving bar).
    pub index: u64,
    /// The number burned into the picture, if the stream burns one.
    pub code: Option<u32>,
}

/// Everything needed to synthesise one segment.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentPlan {
    /// The segment's start on the archive timeline.
    pub start_ms: i64,
    pub duration_ms: i64,
    pub color: [u8; 3],
    pub tone_hz: f64,
    pub frames: Vec<FramePlan>,
    /// Beep start times in segment samples.
    pub beep_starts: Vec<u64>,
    /// `[from, to)` in segment ns where audio packets are dropped.
    pub audio_mutes_ns: Vec<[i64; 2]>,
    pub audio: bool,
    /// Recorded sound: (first segment sample, samples at [`SAMPLE_RATE`]), filled in by the
    /// encoder from the stream's [`SpeechClip`]s (the plan itself reads no file).
    pub speech: Vec<(i64, std::sync::Arc<[f32]>)>,
}

impl SegmentPlan {
    pub fn new(spec: &ArchiveSpec, stream: &StreamSpec, seg: &SegmentSpec) -> SegmentPlan {
        let duration_ms = seg.stop_ms - seg.start_ms;
        let fps = i64::from(spec.fps);
        let frame_time = |i: i64| i * 1_000_000_000 / fps;
        let n_frames = (duration_ms * fps + 999) / 1000;
        // Integer nanoseconds of the segment's own clock throughout: a float boundary
        // (966.666666 + 33.333334 >= 1000) would flash two frames.
        let to_seg_ns = |archive_ms: i64| (archive_ms - seg.start_ms) * 1_000_000;
        let muted = |ranges: &[[i64; 2]], ns: i64| {
            ranges
                .iter()
                .any(|[a, b]| ns >= to_seg_ns(*a) && ns < to_seg_ns(*b))
        };
        let marks_ns: Vec<i64> = stream.marks_ms.iter().map(|&m| to_seg_ns(m)).collect();
        let mut frames = Vec::new();
        let mut shown = 0u64;
        for i in 0..n_frames {
            let pts_ns = frame_time(i);
            let frame_ns = frame_time(i + 1) - pts_ns;
            if muted(&seg.video_mutes, pts_ns) {
                continue;
            }
            let (width, height) = match seg.resize {
                Some(r) if pts_ns >= to_seg_ns(r.at_ms) => (r.width, r.height),
                _ => (stream.width, stream.height),
            };
            frames.push(FramePlan {
                pts_ns,
                duration_ns: frame_ns,
                width,
                height,
                flash: marks_ns
                    .iter()
                    .any(|&m| m >= pts_ns && m < pts_ns + frame_ns),
                index: shown,
                code: stream
                    .frame_code
                    .then(|| (seg.start_ms * fps / 1000 + i) as u32),
            });
            shown += 1;
        }
        let beep_starts = stream
            .marks_ms
            .iter()
            .filter(|&&m| m >= seg.start_ms && m < seg.stop_ms)
            .map(|&m| ((m - seg.start_ms) as u64) * u64::from(SAMPLE_RATE) / 1000)
            .collect();
        let audio_mutes_ns = seg
            .audio_mutes
            .iter()
            .map(|[a, b]| {
                [
                    (a - seg.start_ms) * 1_000_000,
                    (b - seg.start_ms) * 1_000_000,
                ]
            })
            .collect();
        SegmentPlan {
            start_ms: seg.start_ms,
            duration_ms,
            color: stream.color,
            tone_hz: stream.tone_hz,
            frames,
            beep_starts,
            audio_mutes_ns,
            audio: !seg.no_audio,
            speech: Vec::new(),
        }
    }

    /// Total audio samples in the segment.
    pub fn audio_samples(&self) -> u64 {
        (self.duration_ms as u64) * u64::from(SAMPLE_RATE) / 1000
    }

    /// True when an encoded audio packet starting at `pts_ns` falls in a mute.
    pub fn audio_muted(&self, pts_ns: i64) -> bool {
        self.audio_mutes_ns
            .iter()
            .any(|[a, b]| pts_ns >= *a && pts_ns < *b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ArchiveSpec {
        ArchiveSpec {
            id: "a".into(),
            name: String::new(),
            created_at: 0,
            container: ContainerKind::Webm,
            fps: 10,
            h264_bframes: 0,
            video_kbps: 100,
            streams: vec![StreamSpec {
                id: "s".into(),
                label: None,
                video_type: "camera".into(),
                width: 64,
                height: 48,
                color: [255, 0, 0],
                tone_hz: 440.0,
                marks_ms: vec![1_250, 2_500, 9_000],
                speech: vec![],
                frame_code: false,
                segments: vec![SegmentSpec {
                    start_ms: 1_000,
                    stop_ms: 3_000,
                    video_mutes: vec![[1_500, 2_000]],
                    audio_mutes: vec![[2_000, 2_200]],
                    resize: Some(Resize {
                        at_ms: 2_500,
                        width: 128,
                        height: 96,
                    }),
                    no_audio: false,
                    no_video: false,
                }],
            }],
        }
    }

    #[test]
    fn plans_frames_mutes_flashes_and_resize() {
        let s = spec();
        let p = SegmentPlan::new(&s, &s.streams[0], &s.streams[0].segments[0]);
        // 2 s at 10 fps = 20 frames, 5 of them (1.5..2.0 s) muted.
        assert_eq!(p.frames.len(), 15);
        assert!(
            p.frames
                .iter()
                .all(|f| !(500_000_000..1_000_000_000).contains(&f.pts_ns))
        );
        let flashes: Vec<i64> = p
            .frames
            .iter()
            .filter(|f| f.flash)
            .map(|f| f.pts_ns)
            .collect();
        assert_eq!(flashes, [200_000_000, 1_500_000_000]);
        let big = p.frames.iter().filter(|f| f.width == 128).count();
        assert_eq!(big, 5);
        assert_eq!(p.beep_starts, [12_000, 72_000]);
        assert!(p.audio_muted(1_000_000_000) && !p.audio_muted(1_200_000_000));
        assert_eq!(p.audio_samples(), 96_000);
    }

    #[test]
    fn file_names_and_validation() {
        let mut s = spec();
        assert_eq!(s.filename(&s.streams[0], 0), "s.webm");
        let again = s.streams[0].segments[0].clone();
        s.streams[0].segments.push(again);
        assert_eq!(s.filename(&s.streams[0], 1), "s_2.webm");
        assert!(s.validate().is_ok());
        s.streams[0].width = 33;
        assert!(s.validate().is_err());
        s.streams[0].width = 64;
        s.streams[0].id = "../x".into();
        assert!(s.validate().is_err());
    }
}
