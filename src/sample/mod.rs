//! Deterministic sample archives, in the real layout, for trying mosaic, tests and
//! benchmarks.
//!
//! An [`ArchiveSpec`] says which streams exist when, where they are muted and where the
//! sync marks are; [`write_archive`] encodes them with GStreamer (VP8/Opus in WebM or
//! H.264/Opus in MKV), writes each segment the way the media server's live recorder does
//! (see [`mux`]) and zips them with an `<archiveId>.json` manifest.

pub mod enablex;
pub mod encode;
pub mod liveswitch;
pub mod mux;
pub mod spec;
pub mod synth;
pub mod wav;

use std::io::Write;
use std::path::Path;

use serde_json::json;
use zip::write::SimpleFileOptions;

use crate::error::{Error, Result};
use crate::output::AtomicFile;
pub use spec::{ArchiveSpec, ContainerKind, Resize, SegmentSpec, SpeechClip, StreamSpec};
use spec::{SAMPLE_RATE, SegmentPlan};

/// What [`write_archive`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Media files in the archive.
    pub files: usize,
    pub bytes: u64,
}

/// One segment's encoded tracks, with their Matroska descriptions.
pub struct EncodedSegment {
    pub video: Option<(encode::Encoded, &'static str, u32, u32)>,
    pub audio: Option<encode::Encoded>,
    pub doc_type: &'static str,
}

impl EncodedSegment {
    pub fn video_track(&self) -> Option<mux::TrackData<'_>> {
        self.video
            .as_ref()
            .map(|(encoded, codec_id, width, height)| mux::TrackData {
                codec_id,
                encoded,
                kind: mux::TrackKindData::Video {
                    width: *width,
                    height: *height,
                },
            })
    }

    pub fn audio_track(&self) -> Option<mux::TrackData<'_>> {
        self.audio.as_ref().map(|a| mux::TrackData {
            codec_id: "A_OPUS",
            encoded: a,
            kind: mux::TrackKindData::Audio {
                rate: f64::from(SAMPLE_RATE),
                channels: 1,
            },
        })
    }
}

/// Encodes one segment's audio and video with GStreamer.
pub fn encode_tracks(
    spec: &ArchiveSpec,
    stream: &StreamSpec,
    seg: &SegmentSpec,
) -> Result<EncodedSegment> {
    let mut plan = SegmentPlan::new(spec, stream, seg);
    for clip in &stream.speech {
        let samples = wav::read(&clip.wav, SAMPLE_RATE)?;
        let first = (clip.at_ms - seg.start_ms) * i64::from(SAMPLE_RATE) / 1000;
        plan.speech.push((first, samples));
    }
    let (codec, codec_id, doc_type) = match spec.container {
        ContainerKind::Webm => (encode::VideoCodec::Vp8, "V_VP8", "webm"),
        ContainerKind::Mkv => (
            encode::VideoCodec::H264 {
                bframes: spec.h264_bframes,
            },
            "V_MPEG4/ISO/AVC",
            "matroska",
        ),
    };
    let video = if seg.no_video {
        None
    } else {
        let encoded = encode::encode_video(&plan, codec, spec.fps, spec.video_kbps)?;
        Some((encoded, codec_id, stream.width, stream.height))
    };
    let audio = if plan.audio {
        Some(encode::encode_audio(&plan)?)
    } else {
        None
    };
    Ok(EncodedSegment {
        video,
        audio,
        doc_type,
    })
}

/// Encodes one segment into a complete container, in memory.
pub fn encode_segment(
    spec: &ArchiveSpec,
    stream: &StreamSpec,
    seg: &SegmentSpec,
) -> Result<Vec<u8>> {
    let tracks = encode_tracks(spec, stream, seg)?;
    mux::write_live_matroska(
        Vec::new(),
        tracks.doc_type,
        tracks.video_track(),
        tracks.audio_track(),
        None,
    )
}

/// Writes the archive described by `spec` to `dest` (atomically).
pub fn write_archive(spec: &ArchiveSpec, dest: impl AsRef<Path>) -> Result<Written> {
    spec.validate()?;
    let dest = dest.as_ref();
    let out = AtomicFile::create(dest)?;
    let mut zip = zip::ZipWriter::new(out);
    let when = zip::DateTime::default();
    let stored = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(when);
    let deflated = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(when);
    let zip_err = |e: zip::result::ZipError| Error::Write {
        path: dest.to_path_buf(),
        source: std::io::Error::other(e),
    };
    let io_err = |source| Error::Write {
        path: dest.to_path_buf(),
        source,
    };

    let mut files = Vec::new();
    let mut bytes = 0u64;
    for stream in &spec.streams {
        for (i, seg) in stream.segments.iter().enumerate() {
            let data = encode_segment(spec, stream, seg)?;
            let filename = spec.filename(stream, i);
            zip.start_file(filename.as_str(), stored).map_err(zip_err)?;
            zip.write_all(&data).map_err(io_err)?;
            bytes += data.len() as u64;
            let connection_data = stream
                .label
                .as_ref()
                .map(|l| json!({ "name": l }).to_string())
                .unwrap_or_default();
            files.push(json!({
                "connectionData": connection_data,
                "filename": filename,
                "size": data.len(),
                "startTimeOffset": seg.start_ms,
                "stopTimeOffset": seg.stop_ms,
                "streamId": stream.id,
                "videoType": stream.video_type,
            }));
        }
    }
    let manifest = json!({
        "createdAt": spec.created_at,
        "files": files,
        "id": spec.id,
        "name": spec.name,
        "partnerId": 123456,
        "sessionId": format!("2_MX4xMjM0NTZ-{}", spec.id),
    });
    let manifest =
        serde_json::to_vec_pretty(&manifest).map_err(|e| Error::InvalidSpec(e.to_string()))?;
    zip.start_file(format!("{}.json", spec.id), deflated)
        .map_err(zip_err)?;
    zip.write_all(&manifest).map_err(io_err)?;
    let out = zip.finish().map_err(zip_err)?;
    out.commit()?;
    Ok(Written {
        files: files.len(),
        bytes,
    })
}

/// Built-in archive descriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// Three streams over 10 s (two cameras, one in two segments, and a screen share that
    /// changes size), with audio and video mutes and sync marks; VP8/Opus in WebM.
    Demo,
    /// The same call as `demo`, recorded as H.264/Opus in MKV.
    H264,
    /// Four 640x480 cameras talking for 60 s, no mutes (the compose benchmark's input).
    Bench,
    /// A LiveSwitch recordings folder: three clients over 8 s, one reconnecting (two
    /// connections), one audio-only, a 90 ms videoDelay, sync marks; logs and event.
    Liveswitch,
}

impl Preset {
    pub fn spec(self) -> ArchiveSpec {
        match self {
            Preset::Demo => demo(ContainerKind::Webm),
            Preset::H264 => demo(ContainerKind::Mkv),
            Preset::Bench => bench(60_000),
            Preset::Liveswitch => liveswitch::demo(),
        }
    }
}

fn stream(
    id: &str,
    label: &str,
    color: [u8; 3],
    tone_hz: f64,
    marks_ms: Vec<i64>,
    segments: Vec<SegmentSpec>,
) -> StreamSpec {
    StreamSpec {
        id: id.into(),
        label: Some(label.into()),
        video_type: "camera".into(),
        width: 320,
        height: 240,
        color,
        tone_hz,
        marks_ms,
        segments,
        speech: vec![],
        frame_code: false,
    }
}

fn demo(container: ContainerKind) -> ArchiveSpec {
    let mut alice = SegmentSpec::new(0, 10_000);
    alice.audio_mutes = vec![[3_000, 4_500]];
    alice.video_mutes = vec![[5_000, 6_500]];
    let mut screen = stream(
        "c3f1e2d4-screen",
        "Alice's screen",
        [200, 200, 200],
        330.0,
        vec![6_000],
        vec![SegmentSpec::new(2_000, 9_000)],
    );
    screen.video_type = "screen".into();
    screen.width = 480;
    screen.height = 270;
    screen.segments[0].resize = Some(Resize {
        at_ms: 5_000,
        width: 640,
        height: 360,
    });
    ArchiveSpec {
        id: format!("5f0c7e1a-demo-{}", container.extension()),
        name: "mosaic demo call".into(),
        created_at: 1_700_000_000_000,
        container,
        fps: 30,
        h264_bframes: 0,
        video_kbps: 200,
        streams: vec![
            stream(
                "a1b2c3d4-alice",
                "Alice \"Ally\" Ångström",
                [220, 40, 40],
                440.0,
                vec![1_000, 4_000, 7_000],
                vec![alice],
            ),
            stream(
                "b5e6f7a8-bob",
                "Bob 🎥",
                [40, 80, 220],
                550.0,
                vec![2_000, 8_000],
                vec![
                    SegmentSpec::new(1_000, 4_000),
                    SegmentSpec::new(5_500, 10_000),
                ],
            ),
            screen,
        ],
    }
}

/// Four 640x480 cameras for `duration_ms`, no mutes: the compose benchmark's archive.
pub fn bench(duration_ms: i64) -> ArchiveSpec {
    let colors = [[220, 40, 40], [40, 180, 60], [40, 80, 220], [230, 200, 40]];
    ArchiveSpec {
        id: format!("bench-4x{}s", duration_ms / 1000),
        name: "benchmark call".into(),
        created_at: 1_700_000_000_000,
        container: ContainerKind::Webm,
        fps: 30,
        h264_bframes: 0,
        video_kbps: 500,
        streams: colors
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let mut s = stream(
                    &format!("cam{}", i + 1),
                    &format!("Camera {}", i + 1),
                    c,
                    300.0 + 110.0 * i as f64,
                    vec![],
                    vec![SegmentSpec::new(0, duration_ms)],
                );
                s.width = 640;
                s.height = 480;
                s
            })
            .collect(),
    }
}
