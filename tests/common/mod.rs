//! Helpers shared by the integration tests: sample specs, hand-made ZIPs, and a GStreamer
//! decoder that measures what generated media really contains.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use mosaic::sample::{ArchiveSpec, ContainerKind, Resize, SegmentSpec, StreamSpec};
use zip::write::SimpleFileOptions;

pub fn segment(start_ms: i64, stop_ms: i64) -> SegmentSpec {
    SegmentSpec::new(start_ms, stop_ms)
}

pub fn stream(
    id: &str,
    color: [u8; 3],
    marks_ms: Vec<i64>,
    segments: Vec<SegmentSpec>,
) -> StreamSpec {
    StreamSpec {
        id: id.into(),
        label: Some(format!("{id} \"label\" ü")),
        video_type: "camera".into(),
        width: 160,
        height: 120,
        tone_hz: 300.0 + f64::from(color[0]) + 2.0 * f64::from(color[2]),
        color,
        marks_ms,
        segments,
        speech: vec![],
        frame_code: false,
    }
}

pub fn archive(id: &str, container: ContainerKind, streams: Vec<StreamSpec>) -> ArchiveSpec {
    ArchiveSpec {
        id: id.into(),
        name: "test".into(),
        created_at: 1_600_000_000_000,
        container,
        fps: 30,
        h264_bframes: 0,
        video_kbps: 150,
        streams,
    }
}

/// `spec` in WebM (VP8) and in Matroska (H.264): the two decoders time their frames
/// differently.
pub fn in_webm_and_mkv(spec: &ArchiveSpec) -> [(ContainerKind, ArchiveSpec); 2] {
    [ContainerKind::Webm, ContainerKind::Mkv].map(|container| {
        (
            container,
            ArchiveSpec {
                container,
                ..spec.clone()
            },
        )
    })
}

/// The mutes-and-segments archive most inspection tests use: stream `m` has an audio mute
/// 2000..3000 and a video mute 4000..5500 in one 8 s file and changes size at 6000; stream
/// `s` comes in two segments, 500..3500 and 4500..8000.
pub fn mutes_spec(container: ContainerKind) -> ArchiveSpec {
    let mut m = segment(0, 8_000);
    m.audio_mutes = vec![[2_000, 3_000]];
    m.video_mutes = vec![[4_000, 5_500]];
    m.resize = Some(Resize {
        at_ms: 6_000,
        width: 320,
        height: 180,
    });
    archive(
        &format!("mutes-{}", container.extension()),
        container,
        vec![
            stream("m", [200, 30, 30], vec![1_000, 3_500, 6_500], vec![m]),
            stream(
                "s",
                [30, 30, 200],
                vec![1_000, 5_000],
                vec![segment(500, 3_500), segment(4_500, 8_000)],
            ),
        ],
    )
}

/// Compose options for tests: a 640x480 output with x264's fastest preset.
pub fn small() -> mosaic::compose::ComposeOptions {
    mosaic::compose::ComposeOptions {
        plan: mosaic::compose::plan::PlanOptions {
            width: 640,
            height: 480,
            ..Default::default()
        },
        speed: mosaic::compose::Speed::Fast,
        ..Default::default()
    }
}

/// Writes `spec` as an archive in a new temporary folder and composes it to `out_name`
/// there: (the folder, the output, the report).
pub fn compose_sample(
    spec: &ArchiveSpec,
    out_name: &str,
    opts: &mosaic::compose::ComposeOptions,
) -> (tempfile::TempDir, PathBuf, mosaic::compose::ComposeReport) {
    let dir = tempfile::tempdir().unwrap();
    let zip = write_sample(dir.path(), spec);
    let out = dir.path().join(out_name);
    let report =
        mosaic::compose::compose(&zip, &out, opts, &mosaic::compose::Control::default()).unwrap();
    assert_eq!(report.output, out);
    (dir, out, report)
}

/// Asserts a measured time is within `tol` ms of where it belongs.
pub fn near(got: f64, want: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: {got:.1} ms, expected {want:.1} ± {tol:.1}"
    );
}

/// Runs `cmd`, which must succeed (else the test fails with its stderr).
pub fn run_ok(cmd: &mut std::process::Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs ffprobe on `path`: the codec names of its streams, and its duration in seconds.
pub fn probe(path: &Path) -> (Vec<String>, f64) {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name:format=duration",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe (installed by scripts/install-deps.sh)");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let codecs = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["codec_name"].as_str().unwrap().to_owned())
        .collect();
    let duration = v["format"]["duration"].as_str().unwrap().parse().unwrap();
    (codecs, duration)
}

/// Writes `spec` to `dir/<id>.zip`.
pub fn write_sample(dir: &Path, spec: &ArchiveSpec) -> PathBuf {
    let path = dir.join(format!("{}.zip", spec.id));
    mosaic::sample::write_archive(spec, &path).expect("sample archive");
    path
}

/// One ZIP entry of a hand-made archive.
pub enum Item<'a> {
    Stored(&'a str, &'a [u8]),
    Deflated(&'a str, &'a [u8]),
    Dir(&'a str),
}

/// Writes a ZIP of `items` to `path`.
pub fn write_zip(path: &Path, items: &[Item<'_>]) {
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let deflated =
        SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for item in items {
        match item {
            Item::Stored(name, data) => {
                zip.start_file(*name, stored).unwrap();
                zip.write_all(data).unwrap();
            }
            Item::Deflated(name, data) => {
                zip.start_file(*name, deflated).unwrap();
                zip.write_all(data).unwrap();
            }
            Item::Dir(name) => zip.add_directory(*name, stored).unwrap(),
        }
    }
    zip.finish().unwrap();
}

/// A one-file manifest.
pub fn manifest_for(filename: &str, size: usize) -> String {
    format!(
        r#"{{"id":"x","createdAt":1,"files":[{{"streamId":"s","filename":"{filename}","size":{size},"startTimeOffset":0,"stopTimeOffset":1000,"videoType":"camera","connectionData":""}}]}}"#
    )
}

/// The shared real captures, or `None` (with a note) where `../shared` is absent, as in a
/// user's own clone. CI always has it.
pub fn shared_media() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/media");
    if dir.join("real-manifest.json").exists() {
        Some(dir)
    } else {
        eprintln!("skipping: ../shared/media (real browser captures) is not present");
        None
    }
}

/// The source documents, or `None` (with a note) where `../shared` is absent.
pub fn shared_seeds() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/seeds");
    if dir.join("003_2fdc01585013d741.txt").exists() {
        Some(dir)
    } else {
        eprintln!("skipping: ../shared/seeds (the source documents) is not present");
        None
    }
}

/// Zips the real captures with their manifest into `dir/real.zip`.
pub fn real_archive(media: &Path, dir: &Path) -> PathBuf {
    let manifest = std::fs::read(media.join("real-manifest.json")).unwrap();
    let names = [
        "chrome52.webm",
        "chrome57.webm",
        "firefox53.webm",
        "firefox55nightly.webm",
    ];
    let data: Vec<Vec<u8>> = names
        .iter()
        .map(|n| std::fs::read(media.join(n)).unwrap())
        .collect();
    let mut items = vec![Item::Deflated(
        "7c1a2f4e-real-capture-archive.json",
        &manifest,
    )];
    for (n, d) in names.iter().zip(&data) {
        items.push(Item::Stored(n, d));
    }
    let path = dir.join("real.zip");
    write_zip(&path, &items);
    path
}

/// Width and height of the RGB frames [`decode`] keeps.
pub const THUMB_W: usize = 128;
pub const THUMB_H: usize = 96;

/// What a decode of a media file measured.
#[derive(Debug, Default)]
pub struct Decoded {
    /// (presentation time ns, mean luma 0..255) of every decoded video frame.
    pub frames: Vec<(u64, f64)>,
    /// Every frame scaled to THUMB_W x THUMB_H, RGB.
    pub thumbs: Vec<Vec<u8>>,
    /// Decoded audio, mono f32 at 48 kHz, each buffer placed at its own timestamp (holes
    /// between buffers filled with silence), and the time of the first sample.
    pub audio: Vec<f32>,
    pub audio_start_ns: u64,
    /// The same audio as a naive player hears it: buffers back to back, timestamps ignored.
    pub audio_naive: Vec<f32>,
}

impl Decoded {
    /// Mean RGB of frame `i` in a box of +-3 thumbnail pixels around (fx, fy), fractions of
    /// the picture.
    pub fn rgb_at(&self, i: usize, fx: f64, fy: f64) -> [f64; 3] {
        let t = &self.thumbs[i];
        let (cx, cy) = ((fx * THUMB_W as f64) as i64, (fy * THUMB_H as f64) as i64);
        let mut sum = [0.0; 3];
        let mut n = 0.0;
        for y in (cy - 3).max(0)..(cy + 4).min(THUMB_H as i64) {
            for x in (cx - 3).max(0)..(cx + 4).min(THUMB_W as i64) {
                let o = (y as usize * THUMB_W + x as usize) * 3;
                for c in 0..3 {
                    sum[c] += f64::from(t[o + c]);
                }
                n += 1.0;
            }
        }
        sum.map(|v| v / n)
    }

    /// The index of the frame shown at `ms`.
    pub fn frame_at(&self, ms: f64) -> usize {
        let ns = (ms * 1e6) as u64;
        self.frames
            .iter()
            .rposition(|(pts, _)| *pts <= ns + 1_000_000)
            .unwrap_or(0)
    }

    /// Where the sample picture's moving bar is in frame `i`: the mean x (thumbnail pixels)
    /// of the dark pixels on the row at `fy` (in the picture's top eighth), if any.
    pub fn bar_x(&self, i: usize, fy: f64) -> Option<f64> {
        let t = &self.thumbs[i];
        let y = (fy * THUMB_H as f64) as usize;
        let dark: Vec<f64> = (0..THUMB_W)
            .filter(|&x| {
                let o = (y * THUMB_W + x) * 3;
                t[o..o + 3].iter().map(|&c| u32::from(c)).sum::<u32>() < 3 * 80
            })
            .map(|x| x as f64)
            .collect();
        (!dark.is_empty()).then(|| dark.iter().sum::<f64>() / dark.len() as f64)
    }

    /// Times (ms) at which the region around (fx, fy) turns white, one per flash.
    pub fn flashes_at(&self, fx: f64, fy: f64) -> Vec<f64> {
        let mut out = Vec::new();
        let mut white = false;
        for i in 0..self.frames.len() {
            let [r, g, b] = self.rgb_at(i, fx, fy);
            let now = r > 200.0 && g > 200.0 && b > 200.0;
            if now && !white {
                out.push(self.frames[i].0 as f64 / 1e6);
            }
            white = now;
        }
        out
    }

    /// RMS of the audio in `[from_ms, to_ms)`.
    pub fn rms(&self, from_ms: f64, to_ms: f64) -> f64 {
        let w = self.window(from_ms, to_ms);
        (w.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / w.len().max(1) as f64).sqrt()
    }

    /// Amplitude of the `hz` component of the audio in `[from_ms, to_ms)` (Goertzel).
    pub fn tone_level(&self, hz: f64, from_ms: f64, to_ms: f64) -> f64 {
        let w = self.window(from_ms, to_ms);
        let k = 2.0 * (std::f64::consts::TAU * hz / 48_000.0).cos();
        let (mut s1, mut s2) = (0.0, 0.0);
        for &x in w {
            let s0 = f64::from(x) + k * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        let power = s1 * s1 + s2 * s2 - k * s1 * s2;
        2.0 * power.sqrt() / w.len().max(1) as f64
    }

    fn window(&self, from_ms: f64, to_ms: f64) -> &[f32] {
        let start = self.audio_start_ns as f64 / 1e6;
        let a = (((from_ms - start) * 48.0).max(0.0) as usize).min(self.audio.len());
        let b = (((to_ms - start) * 48.0).max(0.0) as usize).min(self.audio.len());
        &self.audio[a..b.max(a)]
    }

    /// Times (ms) at which the picture turns white (a sync flash), one per flash.
    pub fn flashes_ms(&self) -> Vec<f64> {
        let mut out = Vec::new();
        let mut white = false;
        for &(pts, luma) in &self.frames {
            let now = luma > 200.0;
            if now && !white {
                out.push(pts as f64 / 1e6);
            }
            white = now;
        }
        out
    }

    /// Beep onsets (ms) in the naive audio, counted from its first sample.
    pub fn naive_beeps_ms(&self) -> Vec<f64> {
        onsets(&self.audio_naive, 0.0)
    }

    /// Times (ms) at which a loud beep starts (above 0.3: the mix of four -24 dBFS tones stays
    /// under 0.26).
    pub fn beeps_ms(&self) -> Vec<f64> {
        onsets(&self.audio, self.audio_start_ns as f64 / 1e6)
    }
}

/// Beep onsets (ms, from `start_ms`) in mono 48 kHz `audio`: above 0.3 (the mix of four
/// -24 dBFS tones stays under 0.26), at least 100 ms after the previous loud sample.
fn onsets(audio: &[f32], start_ms: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut last_loud: Option<usize> = None;
    for (i, s) in audio.iter().enumerate() {
        if s.abs() > 0.3 {
            if last_loud.is_none_or(|l| i - l > 4_800) {
                // A 2 kHz beep peaks within a quarter period; step back to its start.
                let mut start = i;
                while start > 0 && i - start < 48 && audio[start - 1].abs() > 0.02 {
                    start -= 1;
                }
                out.push(start_ms + start as f64 / 48.0);
            }
            last_loud = Some(i);
        }
    }
    out
}

/// Decodes a media file with GStreamer's decodebin: every video frame's mean luma and all
/// audio as mono f32.
pub fn decode(path: &Path) -> Decoded {
    gst::init().unwrap();
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("filesrc")
        .property("location", path.to_str().unwrap())
        .build()
        .unwrap();
    let decodebin = gst::ElementFactory::make("decodebin").build().unwrap();
    pipeline.add_many([&src, &decodebin]).unwrap();
    src.link(&decodebin).unwrap();

    let video_sink = gst_app::AppSink::builder()
        .caps(
            &gst::Caps::builder("video/x-raw")
                .field("format", "RGB")
                .field("width", THUMB_W as i32)
                .field("height", THUMB_H as i32)
                .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
                .build(),
        )
        .sync(false)
        .build();
    let audio_sink = gst_app::AppSink::builder()
        .caps(
            &gst::Caps::builder("audio/x-raw")
                .field("format", "F32LE")
                .field("rate", 48_000i32)
                .field("channels", 1i32)
                .field("layout", "interleaved")
                .build(),
        )
        .sync(false)
        .build();
    let pipeline_weak = pipeline.downgrade();
    let (vs, aus) = (video_sink.clone(), audio_sink.clone());
    decodebin.connect_pad_added(move |_, pad| {
        let Some(pipeline) = pipeline_weak.upgrade() else {
            return;
        };
        let caps = pad.current_caps().unwrap();
        let name = caps.structure(0).unwrap().name().to_string();
        let (conv, sink): (Vec<gst::Element>, gst::Element) = if name.starts_with("video/") {
            (
                vec![
                    gst::ElementFactory::make("videoconvert").build().unwrap(),
                    gst::ElementFactory::make("videoscale")
                        .property("add-borders", false)
                        .build()
                        .unwrap(),
                ],
                vs.clone().upcast(),
            )
        } else {
            (
                vec![
                    gst::ElementFactory::make("audioconvert").build().unwrap(),
                    gst::ElementFactory::make("audioresample").build().unwrap(),
                ],
                aus.clone().upcast(),
            )
        };
        let mut chain = conv.clone();
        chain.push(sink);
        pipeline.add_many(&chain).unwrap();
        gst::Element::link_many(&chain).unwrap();
        for e in &chain {
            e.sync_state_with_parent().unwrap();
        }
        pad.link(&conv[0].static_pad("sink").unwrap()).unwrap();
    });

    let out = std::sync::Arc::new(std::sync::Mutex::new(Decoded::default()));
    let o = out.clone();
    video_sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buf = sample.buffer().unwrap();
                let info = gstreamer_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
                let map = buf.map_readable().unwrap();
                let stride = info.stride()[0] as usize;
                let mut rgb = Vec::with_capacity(THUMB_W * THUMB_H * 3);
                for row in 0..THUMB_H {
                    rgb.extend_from_slice(&map[row * stride..row * stride + THUMB_W * 3]);
                }
                let luma = rgb
                    .chunks_exact(3)
                    .map(|p| {
                        0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2])
                    })
                    .sum::<f64>()
                    / (THUMB_W * THUMB_H) as f64;
                let mut d = o.lock().unwrap();
                d.frames.push((buf.pts().unwrap().nseconds(), luma));
                d.thumbs.push(rgb);
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    let o = out.clone();
    audio_sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buf = sample.buffer().unwrap();
                let map = buf.map_readable().unwrap();
                let mut d = o.lock().unwrap();
                let pts = buf.pts().map_or(0, |p| p.nseconds());
                if d.audio.is_empty() {
                    d.audio_start_ns = pts;
                }
                let at = (pts.saturating_sub(d.audio_start_ns) as u128 * 48_000 / 1_000_000_000)
                    as usize;
                if at > d.audio.len() {
                    let len = d.audio.len();
                    d.audio.resize(len + (at - len), 0.0);
                }
                let samples: Vec<f32> = map
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                d.audio.extend_from_slice(&samples);
                d.audio_naive.extend_from_slice(&samples);
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );

    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(120)) {
        match msg.view() {
            gst::MessageView::Eos(..) => break,
            gst::MessageView::Error(e) => {
                pipeline.set_state(gst::State::Null).unwrap();
                panic!(
                    "decoding {}: {} ({:?})",
                    path.display(),
                    e.error(),
                    e.debug()
                );
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    std::mem::take(&mut *out.lock().unwrap())
}

/// Asserts a measured colour is within 40 of `want` in every channel.
pub fn is_colour(rgb: [f64; 3], want: [u8; 3], what: &str) {
    let d = rgb
        .iter()
        .zip(want)
        .map(|(a, b)| (a - f64::from(b)).abs())
        .fold(0.0, f64::max);
    assert!(d < 40.0, "{what}: {rgb:?} is not {want:?}");
}

/// The placeholder tile's colour.
pub const PLACEHOLDER: [u8; 3] = [48, 48, 64];

/// Four streams' colours, for tests that tell tiles apart.
pub const COLOURS: [[u8; 3]; 4] = [[220, 40, 40], [40, 200, 40], [40, 40, 220], [230, 220, 40]];
