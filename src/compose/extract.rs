//! A recording's media files made readable by GStreamer: in place where they can be, copied
//! (without their damaged regions) where they cannot.

use std::path::Path;

use crate::error::{Error, Result};
use crate::inspect::{SegmentReport, TrackKind};
use crate::source::MediaStore;

use super::pipeline;

/// Copies `from` to `to` without the byte ranges `[start, end)` of `skip` (sorted, disjoint).
pub fn copy_skipping(
    mut from: impl std::io::Read,
    to: &mut dyn std::io::Write,
    skip: &[(u64, u64)],
) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 1 << 16];
    let (mut at, mut written) = (0u64, 0u64);
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(written),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let (start, end) = (at, at + n as u64);
        // Write the parts of [start, end) outside every skipped range.
        let mut pos = start;
        for &(a, b) in skip.iter().filter(|(a, b)| *b > start && *a < end) {
            if a > pos {
                to.write_all(&buf[(pos - start) as usize..(a - start) as usize])?;
                written += a - pos;
            }
            pos = pos.max(b);
        }
        if pos < end {
            to.write_all(&buf[(pos - start) as usize..n])?;
            written += end - pos;
        }
        at = end;
    }
}

/// A recording's media files as GStreamer reads them: a folder's files and a ZIP's stored
/// entries where they are, compressed (or damaged) entries copied under names of our own
/// into a private folder that is removed when this is dropped.
pub struct ExtractedMedia {
    /// The work folder (in the run's folder, see [`crate::workdir`]): extracted entries and
    /// the pipeline's own temporary files. It goes when this does.
    dir: tempfile::TempDir,
    files: Vec<(String, pipeline::MediaFile)>,
}

impl ExtractedMedia {
    pub fn extract<'a>(
        media: &mut MediaStore,
        segments: impl Iterator<Item = &'a SegmentReport>,
    ) -> Result<ExtractedMedia> {
        let dir = crate::workdir::tempdir("compose-")?;
        let mut files = Vec::new();
        for (i, seg) in segments.enumerate() {
            let damaged: Vec<(u64, u64)> = seg
                .damage
                .iter()
                .map(|d| (d.from_byte, d.to_byte))
                .collect();
            let in_place = if damaged.is_empty() {
                media.disk_range(&seg.filename)
            } else {
                None
            };
            let (path, range) = match in_place {
                // A folder's file, or a ZIP's stored entry: read where it is, no copy.
                Some(found) => found,
                // A compressed entry is expanded into the work folder. GStreamer's demuxer
                // does not always find the next cluster after damage (garbage between
                // clusters ends it): a damaged file is copied without its damaged regions,
                // cut where inspection stopped and resumed reading.
                None => {
                    let path = dir.path().join(format!("{i}.mkv"));
                    let mut file = std::fs::File::create(&path).map_err(|source| Error::Write {
                        path: path.clone(),
                        source,
                    })?;
                    let entry = media.open(&seg.filename)?;
                    copy_skipping(entry, &mut file, &damaged).map_err(|e| Error::DamagedEntry {
                        name: seg.filename.clone(),
                        reason: e.to_string(),
                    })?;
                    (path, None)
                }
            };
            let codec = |kind| {
                seg.tracks
                    .iter()
                    .find(|t| t.kind == kind && t.frames > 0)
                    .map(|t| t.codec)
            };
            files.push((
                seg.filename.clone(),
                pipeline::MediaFile {
                    path,
                    range,
                    video: codec(TrackKind::Video),
                    audio: codec(TrackKind::Audio),
                    clusters: damaged
                        .is_empty()
                        .then(|| std::sync::Arc::new(seg.clusters.clone())),
                    resumes_ns: seg
                        .damage
                        .iter()
                        .filter_map(|d| d.to_ms)
                        .map(|ms| ms.saturating_mul(1_000_000))
                        .collect(),
                    audio_delay_ns: seg
                        .tracks
                        .iter()
                        .find(|t| t.kind == TrackKind::Audio)
                        .and_then(|t| t.codec_delay_ns)
                        .unwrap_or(0),
                },
            ));
        }
        Ok(ExtractedMedia { dir, files })
    }

    /// The work folder, for the pipeline's temporary files.
    pub fn work_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The file for a media file's name.
    pub fn lookup(&self, name: &str) -> Option<pipeline::MediaFile> {
        self.files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, m)| m.clone())
    }

    /// The media file's name for a [`pipeline::MediaFile::id`] (for error messages).
    pub fn name_of(&self, id: &Path) -> Option<&str> {
        self.files
            .iter()
            .find(|(_, f)| f.id() == id)
            .map(|(n, _)| n.as_str())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn copies_around_the_skipped_ranges() {
        let data: Vec<u8> = (0..100).collect();
        let mut out = Vec::new();
        let n = super::copy_skipping(&data[..], &mut out, &[(10, 20), (50, 55)]).unwrap();
        let want: Vec<u8> = (0..10).chain(20..50).chain(55..100).collect();
        assert_eq!((out, n), (want, 85));
        let mut all = Vec::new();
        super::copy_skipping(&data[..], &mut all, &[]).unwrap();
        assert_eq!(all, data);
    }
}
