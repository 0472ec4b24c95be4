//! The canvas in real pipelines: where pictures land and what is painted black.

use super::*;

/// `buffers` frames of a white 640x480 picture into one pad of a `frame`-sized canvas,
/// ready to play; `sink` adds properties to the appsink.
struct Rig {
    pipeline: gst::Pipeline,
    /// The canvas pad, and the pad that feeds it.
    pad: gst::Pad,
    input: gst::Pad,
    sink: gstreamer_app::AppSink,
}

fn rig(buffers: u32, frame: (i32, i32), sink: &str) -> Rig {
    gst::init().unwrap();
    register().unwrap();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc pattern=white num-buffers={buffers} \
         ! video/x-raw,format=I420,width=640,height=480,pixel-aspect-ratio=1/1,framerate=30/1 \
         ! identity name=in \
         {FACTORY} name=c ! video/x-raw,width={},height={},pixel-aspect-ratio=1/1 \
         ! appsink name=out {sink}",
        frame.0, frame.1
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let pad = pipeline
        .by_name("c")
        .unwrap()
        .request_pad_simple("sink_%u")
        .unwrap();
    let input = pipeline.by_name("in").unwrap().static_pad("src").unwrap();
    input.link(&pad).unwrap();
    let sink = pipeline
        .by_name("out")
        .unwrap()
        .downcast::<gstreamer_app::AppSink>()
        .unwrap();
    Rig {
        pipeline,
        pad,
        input,
        sink,
    }
}

/// The luma plane's rows of a sample.
fn luma_rows(sample: &gst::Sample) -> Vec<Vec<u8>> {
    let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(sample.buffer().unwrap(), &info)
        .unwrap();
    let stride = frame.plane_stride()[0] as usize;
    let luma = frame.plane_data(0).unwrap();
    (0..info.height() as usize)
        .map(|r| luma[r * stride..r * stride + info.width() as usize].to_vec())
        .collect()
}

/// One output frame of a white 640x480 picture laid in a `tile` at `at` on a
/// `frame`-sized canvas, as the luma plane's rows (white is 235, black 16).
fn drawn(frame: (i32, i32), tile: (i32, i32), at: (i32, i32), stretch: bool) -> Vec<Vec<u8>> {
    let rig = rig(1, frame, "");
    rig.pad.set_property("xpos", at.0);
    rig.pad.set_property("ypos", at.1);
    rig.pad.set_property("width", tile.0);
    rig.pad.set_property("height", tile.1);
    rig.pad.set_property("stretch", stretch);
    rig.pipeline.set_state(gst::State::Playing).unwrap();
    let sample = rig.sink.pull_sample().unwrap();
    rig.pipeline.set_state(gst::State::Null).unwrap();
    luma_rows(&sample)
}

fn black(px: &[u8]) -> bool {
    px.iter().all(|&y| y == 16)
}

fn white(px: &[u8]) -> bool {
    px.iter().all(|&y| y >= 234)
}

/// The row is black, then white over `picture`, then black.
fn framed(line: &[u8], picture: std::ops::Range<usize>, row: usize) {
    assert!(
        black(&line[..picture.start]),
        "left of the picture, row {row}"
    );
    assert!(white(&line[picture.clone()]), "picture, row {row}");
    assert!(
        black(&line[picture.end..]),
        "right of the picture, row {row}"
    );
}

#[test]
fn a_picture_is_pillarboxed_in_its_tile_and_the_bare_frame_painted_black() {
    // The bottom-right tile of a 2x2 grid at 1280x720: 4:3 into 16:9, 80 columns of bar.
    let rows = drawn((1280, 720), (640, 360), (640, 360), false);
    assert!(
        rows[..360].iter().all(|r| black(r)),
        "the three empty tiles"
    );
    for row in [360, 540, 719] {
        framed(&rows[row], 720..1200, row);
    }
}

#[test]
fn a_picture_is_letterboxed_when_its_tile_is_tall() {
    let rows = drawn((320, 480), (320, 480), (0, 0), false);
    // 640x480 into 320 wide: 320x240, 120 rows of border above and below.
    assert!(rows[..120].iter().all(|r| black(r)));
    assert!(rows[120..360].iter().all(|r| white(r)));
    assert!(rows[360..].iter().all(|r| black(r)));
}

#[test]
fn a_picture_grows_into_a_larger_tile() {
    // A 2x2 grid at 1920x1080: 640x480 grows into 720x540 (the enlarger's tables).
    let rows = drawn((960, 540), (960, 540), (0, 0), false);
    for row in [0, 1, 270, 538, 539] {
        framed(&rows[row], 120..840, row);
    }
}

#[test]
fn a_tile_too_small_for_a_picture_leaves_the_frame_black() {
    let rows = drawn((64, 36), (1, 1), (10, 10), true);
    assert!(rows.iter().all(|r| black(r)));
}

#[test]
fn a_stretched_picture_fills_its_tile() {
    let rows = drawn((640, 360), (640, 360), (0, 0), true);
    assert!(rows.iter().all(|r| white(r)));
}

/// Row 180 of each frame of a white picture in a 640x360 tile on a 1280x360 canvas, the
/// tile moved from the left half to the right one at input frame 6 of 14. The sink keeps
/// one frame at a time, so the canvas's pool hands the same frames out again.
fn moved_tile_rows() -> Vec<Vec<u8>> {
    let rig = rig(14, (1280, 360), "max-buffers=1 sync=false");
    rig.pad.set_property("width", 640);
    rig.pad.set_property("height", 360);
    let moved = rig.pad.clone();
    rig.input
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if info.buffer().and_then(|b| b.pts()) == Some(gst::ClockTime::from_mseconds(200)) {
                moved.set_property("xpos", 640);
            }
            gst::PadProbeReturn::Ok
        });
    rig.pipeline.set_state(gst::State::Playing).unwrap();
    let mut rows = Vec::new();
    while let Ok(sample) = rig.sink.pull_sample() {
        rows.push(luma_rows(&sample).swap_remove(180));
    }
    rig.pipeline.set_state(gst::State::Null).unwrap();
    rows
}

#[test]
fn frames_used_again_show_no_trace_of_where_a_tile_was() {
    let rows = moved_tile_rows();
    assert_eq!(rows.len(), 14);
    // 640x480 into 640x360: 480 columns wide, 80 of bar on each side.
    let left = rows.iter().take_while(|r| white(&r[80..560])).count();
    assert!((1..14).contains(&left), "the tile moved once: {left}");
    for (i, row) in rows.iter().enumerate() {
        let picture = if i < left { 80..560 } else { 720..1200 };
        framed(row, picture, i);
    }
}

#[test]
fn a_tile_over_the_edge_is_clipped() {
    // The tile's picture is at 80..560 inside it: 400..880 on the frame, cut at 640.
    let rows = drawn((640, 360), (640, 360), (320, 0), false);
    for row in [0, 359] {
        framed(&rows[row], 400..640, row);
    }
}

#[test]
fn output_frames_lie_on_huge_pages() {
    let rig = rig(2, (1920, 1080), "");
    rig.pad.set_property("width", 1920);
    rig.pad.set_property("height", 1080);
    rig.pipeline.set_state(gst::State::Playing).unwrap();
    let sample = rig.sink.pull_sample().unwrap();
    let addr = sample.buffer().unwrap().map_readable().unwrap().as_ptr() as usize;
    // Still a frame of a white picture letterboxed in black (the pool does not change it).
    let rows = luma_rows(&sample);
    rig.pipeline.set_state(gst::State::Null).unwrap();
    // 640x480 into 1920x1080: 1440 columns wide, 240 of bar on each side.
    framed(&rows[540], 240..1680, 540);
    if let Some(huge) = super::pool::tests::on_huge_pages(addr) {
        assert!(huge, "{:?}", super::pool::tests::mapping_of(addr));
    }
}
