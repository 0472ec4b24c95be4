//! Sample EnableX recordings: one file per participant (audio and video, with the
//! Segment's `DateUTC` saying when it started) and the `recording` notification that lists
//! them. A spec's streams are the participants; each must be in one segment.

use std::path::Path;

use serde_json::json;

use super::spec::ArchiveSpec;
use super::{Written, encode_tracks, mux};
use crate::error::{Error, Result};
use crate::output::write_atomic;

/// Milliseconds from the Unix epoch to Matroska's (2001-01-01T00:00:00Z).
const MATROSKA_EPOCH_MS: i64 = 978_307_200_000;

/// Writes each stream of `spec` as `<dir>/<streamId>.<ext>` and `<dir>/notification.json`
/// (a `recording` notification for room `room_id`, conference `conf_num`).
pub fn write_folder(
    spec: &ArchiveSpec,
    dir: &Path,
    room_id: &str,
    conf_num: &str,
) -> Result<Written> {
    spec.validate()?;
    std::fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Written { files: 0, bytes: 0 };
    let mut urls = Vec::new();
    for stream in &spec.streams {
        let [seg] = stream.segments.as_slice() else {
            return Err(Error::InvalidSpec(format!(
                "stream {}: an EnableX file is one segment",
                stream.id
            )));
        };
        let tracks = encode_tracks(spec, stream, seg)?;
        let date_ns = (spec.created_at + seg.start_ms - MATROSKA_EPOCH_MS) * 1_000_000;
        let bytes = mux::write_live_matroska(
            Vec::new(),
            tracks.doc_type,
            tracks.video_track(),
            tracks.audio_track(),
            Some(date_ns),
        )?;
        let file = format!("{}.{}", stream.id, spec.container.extension());
        write_atomic(dir.join(&file), &bytes)?;
        written.files += 1;
        written.bytes += bytes.len() as u64;
        urls.push(format!("https://FQDN/recordings/{room_id}/{file}"));
    }
    let notification = json!({
        "type": "recording",
        "trans_date": (spec.created_at / 1000).to_string(),
        "app_id": "mosaic-sample-app",
        "room_id": room_id,
        "conf_num": conf_num,
        "recording": urls,
    });
    let bytes =
        serde_json::to_vec_pretty(&notification).map_err(|e| Error::InvalidSpec(e.to_string()))?;
    write_atomic(dir.join("notification.json"), &bytes)?;
    Ok(written)
}
