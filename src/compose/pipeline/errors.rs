//! What a failure on the pipeline's bus means for the user: a damaged input file, named, or
//! a failure of mosaic's own.

use std::path::{Path, PathBuf};

use gstreamer as gst;
use gstreamer::prelude::*;

use super::{Error, source};

/// A bus error as mosaic's error. A decoder, demuxer or parser failing on a file is bad
/// input (the file is damaged in a way inspection could not see), named by the file; any
/// other failure is ours.
pub(super) fn bus_error(
    err: &gst::message::Error,
    name_of: &dyn Fn(&Path) -> Option<String>,
) -> Error {
    let who = err
        .src()
        .map(|s| s.path_string().to_string())
        .unwrap_or_else(|| "pipeline".into());
    let debug = err.debug().map(|d| d.to_string()).unwrap_or_default();
    let debug = debug.lines().last().unwrap_or_default().to_owned();
    let text = format!(
        "{}{}",
        err.error(),
        if debug.is_empty() {
            String::new()
        } else {
            format!(" ({debug})")
        }
    );
    let element = err
        .src()
        .and_then(|s| s.downcast_ref::<gst::Element>().cloned());
    let input_side = element.as_ref().is_some_and(|e| {
        e.factory().is_some_and(|f| {
            let klass = f.klass();
            ["Decoder", "Demuxer", "Parser"]
                .iter()
                .any(|k| klass.contains(k))
        })
    });
    if input_side && !text.contains("is missing") {
        let file = element
            .as_ref()
            .and_then(upstream_file)
            .and_then(|p| name_of(&p))
            .unwrap_or_else(|| who.clone());
        return Error::CorruptMedia {
            filename: file,
            reason: format!("cannot be decoded: {text}"),
        };
    }
    Error::Gstreamer(format!("{who}: {text}"))
}

/// The file an element reads from: the location of the `filesrc` upstream of it, or the
/// [`MediaFile::id`] in the name of the `appsrc` that reads a range.
fn upstream_file(element: &gst::Element) -> Option<PathBuf> {
    let mut current = element.clone();
    for _ in 0..32 {
        if current.factory().is_some_and(|f| f.name() == "filesrc") {
            let location: String = current.property("location");
            return Some(PathBuf::from(location));
        }
        if let Some(id) = source::range_source_id(&current) {
            return Some(id);
        }
        let peer = current.sink_pads().first()?.peer()?;
        current = peer.parent_element()?;
    }
    None
}

pub(super) fn first_error(
    pipeline: &gst::Pipeline,
    name_of: &dyn Fn(&Path) -> Option<String>,
) -> Option<Error> {
    let bus = pipeline.bus()?;
    let msg = bus.pop_filtered(&[gst::MessageType::Error])?;
    match msg.view() {
        gst::MessageView::Error(err) => Some(bus_error(err, name_of)),
        _ => None,
    }
}
