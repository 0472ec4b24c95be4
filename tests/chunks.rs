//! A chunked compose is the one-pass compose, frame for frame. A generated 3-minute call
//! whose cameras burn their frame number into the picture (the sample generator's block
//! code): sync marks within a second of every chunk boundary, a layout change and a video
//! freeze that cross a boundary, a participant whose segment starts in one chunk and ends in
//! another, one who joins on a boundary. `--chunk-secs 40` against one pass, in MP4 and WebM:
//! the same frame count and duration, the camera frame the one pass shows at every output
//! frame, every flash within a frame and every beep within 20 ms of its mark. The same in
//! chunks as HLS: an event playlist with the first chunk while the rest composes, which
//! ffmpeg plays to its end.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::*;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use mosaic::compose::plan::{Plan, PlanOptions};
use mosaic::sample::ContainerKind;
use mosaic::sample::synth::{FRAME_CODE_BITS, frame_code_spot};

const W: i32 = 640;
const H: i32 = 480;
const FPS: u64 = 30;
const CAM: (u32, u32) = (160, 120);
/// Ana's video is muted 79.5-81.5 s: frozen to 80.5 s (across the 80 s boundary), then her
/// placeholder.
const MARKS: [&[i64]; 3] = [
    &[39_600, 40_400, 81_800, 119_700, 160_300],
    &[79_800],
    &[120_600, 159_500],
];

/// Ana all along; Ben from 60 s to 100 s (the layout changes as he joins and leaves, his
/// segment across the 80 s boundary); Cy from 120 s, on a boundary.
fn call(dir: &Path) -> std::path::PathBuf {
    let mut ana_seg = segment(0, 180_000);
    ana_seg.video_mutes = vec![[79_500, 81_500]];
    let segs = [ana_seg, segment(60_000, 100_000), segment(120_000, 180_000)];
    let colours = [[200, 40, 40], [40, 170, 60], [40, 70, 210]];
    let streams = ["ana", "ben", "cy"]
        .iter()
        .zip(segs)
        .enumerate()
        .map(|(i, (id, seg))| {
            let mut s = stream(id, colours[i], MARKS[i].to_vec(), vec![seg]);
            s.frame_code = true;
            s
        })
        .collect();
    write_sample(dir, &archive("chunks", ContainerKind::Webm, streams))
}

/// What one output frame shows of each camera: the number it burned in (read where the plan
/// puts its picture), and whether it flashes.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    codes: Vec<Option<u32>>,
    flashes: Vec<bool>,
}

/// Where each stream's picture is at output frame `k`, as the plan lays it out.
fn pictures(plan: &Plan, k: u64) -> Vec<Option<mosaic::layout::Rect>> {
    let t_ms = ((k * 1_000_000_000 + FPS / 2) / FPS / 1_000_000) as i64;
    plan.streams
        .iter()
        .map(|s| {
            s.tile_at(t_ms)
                .map(|tile| mosaic::layout::fit(tile.rect, CAM.0, CAM.1))
        })
        .collect()
}

/// Decodes `path`: what every frame shows of each camera, and the sound (mono, 48 kHz).
fn watch(path: &Path, plan: &Plan) -> (Vec<Seen>, Decoded) {
    gst::init().unwrap();
    let pipeline = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! decodebin name=d \
         d. ! queue ! videoconvert ! video/x-raw,format=GRAY8 ! appsink name=v sync=false \
         d. ! queue ! audioconvert ! audioresample \
            ! audio/x-raw,format=F32LE,rate=48000,channels=1,layout=interleaved \
            ! appsink name=a sync=false",
        path.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = |name| {
        pipeline
            .by_name(name)
            .unwrap()
            .downcast::<gst_app::AppSink>()
            .unwrap()
    };
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let audio: Arc<Mutex<(Vec<f32>, Option<u64>)>> = Arc::default();
    let plan = Arc::new(plan.clone());
    let into = seen.clone();
    let first_video: Arc<Mutex<Option<u64>>> = Arc::default();
    let first_pts = first_video.clone();
    sink("v").set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buffer = sample.buffer().unwrap();
                let map = buffer.map_readable().unwrap();
                let luma = map.as_slice();
                // MPEG-TS starts its clock an hour in: frames count from the first.
                let pts = buffer.pts().unwrap().nseconds();
                let first = *first_pts.lock().unwrap().get_or_insert(pts);
                let k = ((pts - first) * FPS + 500_000_000) / 1_000_000_000;
                let at = |r: &mosaic::layout::Rect, fx: f64, fy: f64| {
                    let x = r.x + (fx * f64::from(r.w)) as i32;
                    let y = r.y + (fy * f64::from(r.h)) as i32;
                    luma[(y * W + x) as usize]
                };
                let mut frame = Seen {
                    codes: vec![],
                    flashes: vec![],
                };
                for pic in pictures(&plan, k) {
                    let Some(r) = pic else {
                        frame.codes.push(None);
                        frame.flashes.push(false);
                        continue;
                    };
                    let code = (0..FRAME_CODE_BITS).fold(0u32, |acc, bit| {
                        let (fx, fy) = frame_code_spot(bit);
                        acc << 1 | u32::from(at(&r, fx, fy) > 128)
                    });
                    frame.codes.push(Some(code));
                    // White above the code and below the moving bar.
                    let bright = [0.2, 0.3, 0.4]
                        .iter()
                        .flat_map(|&fy| [0.2, 0.5, 0.8].map(|fx| at(&r, fx, fy)))
                        .all(|v| v > 200);
                    frame.flashes.push(bright);
                }
                into.lock().unwrap().push(frame);
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    let into = audio.clone();
    sink("a").set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buffer = sample.buffer().unwrap();
                let map = buffer.map_readable().unwrap();
                let mut a = into.lock().unwrap();
                let start = *a.1.get_or_insert(buffer.pts().unwrap().nseconds());
                let at = ((buffer.pts().unwrap().nseconds() - start) * 48 / 1_000_000) as usize;
                a.0.resize(at, 0.0);
                a.0.extend(
                    map.as_slice()
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                );
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(300)) {
        match msg.view() {
            gst::MessageView::Eos(..) => break,
            gst::MessageView::Error(e) => panic!("decoding {}: {}", path.display(), e.error()),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    let (mut samples, start) = std::mem::take(&mut *audio.lock().unwrap());
    // The sound on the frames' clock (MPEG-TS starts both a little after its own zero).
    let (start, first) = (start.unwrap_or(0), first_video.lock().unwrap().unwrap_or(0));
    let audio_start_ns = match start.checked_sub(first) {
        Some(late) => late,
        None => {
            let early = ((first - start) * 48 / 1_000_000) as usize;
            samples.drain(..early.min(samples.len()));
            0
        }
    };
    let sound = Decoded {
        audio: samples,
        audio_start_ns,
        ..Default::default()
    };
    (seen, sound)
}

/// Every mark: a flash in its camera's picture within a frame, a beep within 20 ms.
fn check_marks(what: &str, seen: &[Seen], sound: &Decoded) {
    let frame = 1000.0 / FPS as f64;
    for (cam, marks) in MARKS.iter().enumerate() {
        let flashes: Vec<f64> = seen
            .iter()
            .enumerate()
            .filter(|(k, s)| s.flashes[cam] && (*k == 0 || !seen[k - 1].flashes[cam]))
            .map(|(k, _)| k as f64 * frame)
            .collect();
        assert_eq!(
            flashes.len(),
            marks.len(),
            "{what}: camera {cam} flashes {flashes:?}"
        );
        for (f, m) in flashes.iter().zip(marks.iter()) {
            near(
                *f,
                *m as f64,
                frame,
                &format!("{what}: camera {cam}'s flash"),
            );
        }
    }
    let mut marks: Vec<i64> = MARKS.iter().flat_map(|m| m.iter().copied()).collect();
    marks.sort_unstable();
    let beeps = sound.beeps_ms();
    assert_eq!(beeps.len(), marks.len(), "{what}: beeps {beeps:?}");
    for (b, m) in beeps.iter().zip(&marks) {
        near(*b, *m as f64, 20.0, &format!("{what}: the beep"));
    }
}

#[test]
fn chunks_make_the_one_pass_output_frame_for_frame() {
    let dir = tempfile::tempdir().unwrap();
    let zip = call(dir.path());
    let mut recording = mosaic::source::open_one(&zip, &Default::default()).unwrap();
    let report = mosaic::inspect::inspect_recording(&mut recording, &Default::default()).unwrap();
    let plan = Plan::new(
        &recording.timeline,
        |name| report.segment(name),
        &PlanOptions {
            width: W,
            height: H,
            ..Default::default()
        },
    )
    .unwrap();
    let frame = 1000.0 / FPS as f64;
    let mut mp4_one = None;
    for ext in ["mp4", "webm"] {
        let compose = |name: &str, extra: &[&str]| {
            let out = dir.path().join(format!("{name}.{ext}"));
            run_ok(
                Command::new(env!("CARGO_BIN_EXE_mosaic"))
                    .arg("compose")
                    .arg(&zip)
                    .arg("-o")
                    .arg(&out)
                    .args(["--size", "640x480", "--speed", "fast"])
                    .args(extra),
            );
            out
        };
        let one = compose("one", &[]);
        let chunked = compose("chunked", &["--chunk-secs", "40"]);
        let (d_one, d_chunked) = (probe(&one).1, probe(&chunked).1);
        near(
            d_chunked * 1000.0,
            d_one * 1000.0,
            frame,
            &format!("{ext}: durations"),
        );
        near(
            d_one * 1000.0,
            180_000.0,
            frame,
            &format!("{ext}: the one pass's duration"),
        );
        let (seen_one, sound_one) = watch(&one, &plan);
        let (seen_chunked, sound_chunked) = watch(&chunked, &plan);
        assert_eq!(seen_one.len(), 5_400, "{ext}: the one pass's frames");
        assert_eq!(seen_chunked.len(), seen_one.len(), "{ext}: frames");
        // The reading itself: while Ana's camera runs alone, output frame k shows her k-th.
        let ana_right = (0..1_800)
            .filter(|&k| seen_one[k].codes[0] == Some(k as u32))
            .count();
        assert!(
            ana_right >= 1_790,
            "{ext}: {ana_right} of Ana's first 1800 frames read"
        );
        for (k, (a, b)) in seen_one.iter().zip(&seen_chunked).enumerate() {
            assert_eq!(
                a.codes,
                b.codes,
                "{ext}: output frame {k} ({:.3} s) shows other camera frames chunked",
                k as f64 / FPS as f64
            );
        }
        check_marks(&format!("{ext}, one pass"), &seen_one, &sound_one);
        check_marks(&format!("{ext}, chunked"), &seen_chunked, &sound_chunked);
        if ext == "mp4" {
            mp4_one = Some(seen_one);
        }
    }
    hls_in_chunks_plays_like_the_one_pass(dir.path(), &zip, &plan, &mp4_one.unwrap());
}

/// HLS in chunks: while it composes, the event playlist lists the first chunk's segments and
/// not the last's; done, ffmpeg plays it to its end with the one pass's duration, and its
/// frames and marks are the one pass's.
fn hls_in_chunks_plays_like_the_one_pass(dir: &Path, zip: &Path, plan: &Plan, one: &[Seen]) {
    let out = dir.join("hls");
    std::fs::create_dir(&out).unwrap();
    let playlist = out.join("call.m3u8");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mosaic"))
        .arg("compose")
        .arg(zip)
        .arg("-o")
        .arg(&playlist)
        .args(["--size", "640x480", "--speed", "fast", "--chunk-secs", "40"])
        .spawn()
        .unwrap();
    let mut early = None;
    while child.try_wait().unwrap().is_none() {
        if let Ok(text) = std::fs::read_to_string(&playlist)
            && early.is_none()
        {
            early = Some(text);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(child.wait().unwrap().success());
    let early = early.expect("a playlist while the chunks compose");
    println!("while composing:\n{early}");
    assert!(early.contains("#EXT-X-PLAYLIST-TYPE:EVENT"), "{early}");
    assert!(early.contains("call-0000-00000.ts"), "{early}");
    assert!(
        !early.contains("-0004-") && !early.contains("#EXT-X-ENDLIST"),
        "{early}"
    );
    let done = std::fs::read_to_string(&playlist).unwrap();
    assert!(done.ends_with("#EXT-X-ENDLIST\n"), "{done}");

    let frame = 1000.0 / FPS as f64;
    near(
        probe(&playlist).1 * 1000.0,
        180_000.0,
        frame,
        "HLS duration",
    );
    run_ok(
        Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&playlist)
            .args(["-f", "null", "-"]),
    );
    // Its segments back to back are one MPEG-TS stream: its frames and marks.
    let all = dir.join("all.ts");
    let mut bytes = Vec::new();
    for name in done.lines().filter(|l| l.ends_with(".ts")) {
        bytes.extend(std::fs::read(out.join(name)).unwrap());
    }
    std::fs::write(&all, bytes).unwrap();
    let (seen, sound) = watch(&all, plan);
    assert_eq!(seen.len(), one.len(), "HLS frames");
    for (k, (a, b)) in one.iter().zip(&seen).enumerate() {
        assert_eq!(a.codes, b.codes, "HLS: output frame {k}");
    }
    check_marks("HLS", &seen, &sound);
}
