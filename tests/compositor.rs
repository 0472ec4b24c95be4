//! The canvas draws each decoded picture straight into its tile: no layer of a compose goes
//! through a converted or temporary copy frame by frame. Such a copy costs a fresh buffer per
//! tile per frame on the aggregator's one thread (with GStreamer's compositor it was 14 % of a
//! compose's CPU and nearly all its page faults, issue 11). Read from GStreamer's debug log
//! of real composes (the video aggregator's conversions, the canvas's copies): VP8 in WebM
//! and H.264 in Matroska (whose decoder describes its colours differently), each picture
//! scaled into its half of the frame.
//!
//! (Its own test binary: the log hook and threshold are process-wide.)

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use gstreamer as gst;
use mosaic::sample::ContainerKind;

/// The "this pad will be converted" (video aggregator) and "through a copy" (mosaic's
/// canvas) decisions logged while `run` runs.
fn conversions_during(run: impl FnOnce()) -> Vec<String> {
    gst::init().unwrap();
    gst::log::remove_default_log_function();
    gst::log::set_threshold_for_name("videoaggregator", gst::DebugLevel::Debug);
    gst::log::set_threshold_for_name("mosaiccanvas", gst::DebugLevel::Debug);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hook = {
        let seen = seen.clone();
        gst::log::add_log_function(
            move |_cat, _level, _file, _function, _line, object, message| {
                let text = message.get().map(|m| m.to_string()).unwrap_or_default();
                if text.contains("will be converted") || text.contains("through a copy") {
                    let who = object.map(|o| o.to_string()).unwrap_or_default();
                    seen.lock().unwrap().push(format!("{who}: {text}"));
                }
            },
        )
    };
    run();
    gst::log::remove_log_function(hook);
    seen.lock().unwrap().clone()
}

fn two_cameras(container: ContainerKind) -> mosaic::sample::ArchiveSpec {
    archive(
        "copies",
        container,
        vec![
            stream("a", [200, 40, 40], vec![1_000], vec![segment(0, 3_000)]),
            stream("b", [40, 40, 200], vec![1_000], vec![segment(0, 3_000)]),
        ],
    )
}

#[test]
fn no_layer_is_converted_frame_by_frame() {
    let opts = small();
    for container in [ContainerKind::Webm, ContainerKind::Mkv] {
        let mut report = None;
        let converted = conversions_during(|| {
            report = Some(compose_sample(&two_cameras(container), "copies.mp4", &opts));
        });
        let (_dir, out, report) = report.unwrap();
        assert_eq!(report.frames, 90, "{container:?}");
        // The tiles did show: both pictures, scaled from 160x120 into their half.
        let d = decode(&out);
        let left = d.rgb_at(45, 0.25, 0.5);
        let right = d.rgb_at(45, 0.75, 0.5);
        assert!(
            left[0] > 150.0 && left[2] < 90.0,
            "{container:?} left {left:?}"
        );
        assert!(
            right[2] > 150.0 && right[0] < 90.0,
            "{container:?} right {right:?}"
        );
        assert!(
            converted.is_empty(),
            "{container:?}: the canvas converted {converted:?}"
        );
    }
}
