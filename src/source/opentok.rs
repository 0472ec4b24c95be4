//! OpenTok / Vonage individual-stream archives: a ZIP, or the same files unzipped into a
//! folder, with a JSON manifest placing each file on the archive's timeline.
//!
//! Both forms go through the same checks: the manifest is found and validated the same way,
//! the names it gives must be plain names, every listed file must be present and non-empty,
//! and unlisted media or size mismatches are warnings. The timeline is built from the
//! manifest alone (pure).

use std::cmp::Ordering;
use std::path::Path;

use super::media::{Folder, MediaStore};
use super::{GivenTime, Recording, SourceKind, SourceOptions, check_span};
use crate::archive::manifest::{Manifest, ManifestFile};
use crate::archive::{Archive, ArchiveLimits, Entry, check_files, find_manifest};
use crate::error::{Error, Result};
use crate::timeline::{ArchiveMs, Segment, Source, Stream, Timeline, TimelineWarning, VideoType};

/// Opens an archive ZIP.
pub fn open_zip(path: &Path, opts: &SourceOptions) -> Result<Recording> {
    let archive = Archive::open(path)?;
    check_times(archive.manifest_name(), archive.manifest(), opts)?;
    let mut timeline = timeline(archive.manifest());
    opts.relabel(&mut timeline, |s| vec![s.id.clone()]);
    Ok(Recording {
        kind: SourceKind::Opentok,
        described_by: archive.manifest_name().to_owned(),
        key: timeline.archive_id.clone(),
        warnings: archive.warnings().to_vec(),
        timeline,
        media: MediaStore::Zip(Box::new(archive)),
    })
}

/// Opens an unzipped archive: a folder holding the manifest and the media files.
pub fn open_folder(dir: &Path, opts: &SourceOptions) -> Result<Recording> {
    let limits = ArchiveLimits::default();
    let entries = folder_entries(dir, &limits)?;
    let (manifest_name, manifest) = find_manifest(&entries, &limits, |entry| {
        let path = dir.join(&entry.name);
        std::fs::read(&path).map_err(|source| Error::Open { path, source })
    })?;
    check_times(&manifest_name, &manifest, opts)?;
    let warnings = check_files(&manifest, &entries)?;
    let mut folder = Folder::new(dir);
    for f in &manifest.files {
        folder.add(&f.filename)?;
    }
    let mut timeline = timeline(&manifest);
    opts.relabel(&mut timeline, |s| vec![s.id.clone()]);
    Ok(Recording {
        kind: SourceKind::Opentok,
        described_by: manifest_name,
        key: timeline.archive_id.clone(),
        warnings,
        timeline,
        media: MediaStore::Folder(folder),
    })
}

/// Refuses offsets that cannot be true (see [`super::check_span`]).
fn check_times(name: &str, manifest: &Manifest, opts: &SourceOptions) -> Result<()> {
    // Offsets count from createdAt, which is the recording's start.
    let created = GivenTime {
        name: name.to_owned(),
        field: "createdAt".into(),
        ms: 0,
    };
    let times: Vec<GivenTime> = std::iter::once(created)
        .chain(manifest.files.iter().enumerate().flat_map(|(i, f)| {
            [
                ("startTimeOffset", f.start_time_offset),
                ("stopTimeOffset", f.stop_time_offset),
            ]
            .map(|(field, ms)| GivenTime {
                name: name.to_owned(),
                field: format!("files[{i}].{field} ({})", f.filename),
                ms,
            })
        }))
        .collect();
    check_span(&times, opts.max_span())
}

/// True when `dir` holds a root `.json` file that parses as a manifest.
pub fn folder_has_manifest(dir: &Path) -> bool {
    let limits = ArchiveLimits::default();
    folder_entries(dir, &limits).is_ok_and(|entries| {
        entries
            .iter()
            .filter(|e| !e.is_dir && e.name.to_ascii_lowercase().ends_with(".json"))
            .filter(|e| e.size <= limits.max_manifest_size)
            .any(|e| {
                std::fs::read(dir.join(&e.name))
                    .is_ok_and(|bytes| Manifest::parse(&e.name, &bytes).is_ok())
            })
    })
}

/// The folder's files as archive entries (names sorted, as a listing is unordered).
fn folder_entries(dir: &Path, limits: &ArchiveLimits) -> Result<Vec<Entry>> {
    let read = std::fs::read_dir(dir).map_err(|source| Error::Open {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut entries: Vec<Entry> = Vec::new();
    for item in read {
        let item = item.map_err(|source| Error::Open {
            path: dir.to_path_buf(),
            source,
        })?;
        let Ok(name) = item.file_name().into_string() else {
            continue; // not UTF-8: no manifest can name it
        };
        let meta = std::fs::metadata(item.path()).map_err(|source| Error::Open {
            path: item.path(),
            source,
        })?;
        entries.push(Entry {
            index: 0,
            is_dir: meta.is_dir(),
            size: meta.len(),
            compressed_size: meta.len(),
            name,
        });
        if entries.len() > limits.max_entries {
            return Err(Error::TooManyEntries {
                count: entries.len(),
                limit: limits.max_entries,
            });
        }
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    for (i, e) in entries.iter_mut().enumerate() {
        e.index = i;
    }
    Ok(entries)
}

/// Builds the timeline of an individual-stream manifest.
pub fn timeline(manifest: &Manifest) -> Timeline {
    let mut by_stream: Vec<(String, Vec<&ManifestFile>)> = Vec::new();
    for file in &manifest.files {
        match by_stream.iter_mut().find(|(id, _)| *id == file.stream_id) {
            Some((_, files)) => files.push(file),
            None => by_stream.push((file.stream_id.clone(), vec![file])),
        }
    }

    let mut warnings = Vec::new();
    let streams: Vec<Stream> = by_stream
        .into_iter()
        .map(|(id, mut files)| {
            files.sort_by(|a, b| segment_order(&id, a, b));
            let segments: Vec<Segment> = files
                .iter()
                .enumerate()
                .map(|(i, f)| Segment {
                    index: i + 1,
                    file_index: file_index(&id, &f.filename),
                    start: ArchiveMs(f.start_time_offset),
                    stop: ArchiveMs(f.stop_time_offset),
                    sources: vec![Source::whole(
                        f.filename.clone(),
                        ArchiveMs(f.start_time_offset),
                        f.size,
                    )],
                })
                .collect();
            for pair in segments.windows(2) {
                let overlap = pair[0].stop.0 - pair[1].start.0;
                if overlap > 0 {
                    warnings.push(TimelineWarning::OverlappingSegments {
                        stream: id.clone(),
                        first: pair[0].sources[0].filename.clone(),
                        second: pair[1].sources[0].filename.clone(),
                        overlap_ms: overlap,
                    });
                }
            }
            // The first file's connection data and video type describe the stream.
            let first = files[0];
            Stream {
                label: label_from_connection_data(first.connection_data.as_ref())
                    .unwrap_or_else(|| id.clone()),
                video_type: VideoType::parse(first.video_type.as_deref()),
                id,
                segments,
            }
        })
        .collect();
    let mut timeline = Timeline {
        archive_id: manifest.id.clone(),
        archive_name: manifest.name.clone().filter(|n| !n.is_empty()),
        created_at_ms: manifest.created_at,
        streams,
        warnings,
    };
    timeline.sort_streams();
    timeline
}

/// Segment order within a stream: by start offset, then by the `_N` file index (numerically,
/// so `_10` comes after `_9`), then by name.
fn segment_order(stream_id: &str, a: &ManifestFile, b: &ManifestFile) -> Ordering {
    a.start_time_offset
        .cmp(&b.start_time_offset)
        .then_with(|| file_index(stream_id, &a.filename).cmp(&file_index(stream_id, &b.filename)))
        .then_with(|| a.filename.cmp(&b.filename))
}

/// The `N` of `<streamId>_N.ext`, or of any `<name>_N.ext` when the name does not start
/// with the stream id.
pub fn file_index(stream_id: &str, filename: &str) -> Option<u32> {
    let stem = filename.rsplit_once('.').map_or(filename, |(stem, _)| stem);
    let rest = stem.strip_prefix(stream_id).unwrap_or(stem);
    let (_, digits) = rest.rsplit_once('_')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A stream's display label from its connection data: a JSON object's `name` (the data may
/// be the object itself or a string holding it), else the raw string; `None` when empty.
pub fn label_from_connection_data(data: Option<&serde_json::Value>) -> Option<String> {
    let name_of = |v: &serde_json::Value| {
        v.get("name")
            .and_then(serde_json::Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    match data? {
        serde_json::Value::String(s) => {
            let trimmed = s.trim();
            if trimmed.is_empty() {
                return None;
            }
            match serde_json::from_str::<serde_json::Value>(trimmed) {
                Ok(v) if v.is_object() => name_of(&v).or_else(|| Some(trimmed.to_owned())),
                _ => Some(trimmed.to_owned()),
            }
        }
        v @ serde_json::Value::Object(_) => name_of(v),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::manifest::ManifestFile;
    use crate::timeline::{ArchiveMs, Interval, Stream, TimelineWarning, VideoType};
    use serde_json::json;

    fn file(stream: &str, name: &str, start: i64, stop: i64) -> ManifestFile {
        ManifestFile {
            stream_id: stream.into(),
            filename: name.into(),
            start_time_offset: start,
            stop_time_offset: stop,
            video_type: Some("camera".into()),
            connection_data: None,
            size: None,
        }
    }

    fn manifest(files: Vec<ManifestFile>) -> Manifest {
        Manifest {
            id: "arch".into(),
            name: Some(String::new()),
            created_at: 1_000,
            files,
            session_id: None,
            partner_id: None,
        }
    }

    fn names(stream: &Stream) -> Vec<&str> {
        stream
            .segments
            .iter()
            .map(|s| s.sources[0].filename.as_str())
            .collect()
    }

    #[test]
    fn orders_out_of_order_segments_by_offset() {
        let t = timeline(&manifest(vec![
            file("s", "s_3.webm", 9_000, 12_000),
            file("s", "s_1.webm", 0, 3_000),
            file("s", "s_2.webm", 4_000, 8_000),
        ]));
        assert_eq!(names(&t.streams[0]), ["s_1.webm", "s_2.webm", "s_3.webm"]);
        let idx: Vec<_> = t.streams[0].segments.iter().map(|s| s.index).collect();
        assert_eq!(idx, [1, 2, 3]);
        assert!(t.warnings.is_empty());
    }

    #[test]
    fn ten_comes_after_nine_on_equal_offsets() {
        let t = timeline(&manifest(vec![
            file("s", "s_10.webm", 5_000, 6_000),
            file("s", "s_9.webm", 5_000, 5_000),
            file("s", "s_2.webm", 5_000, 5_000),
        ]));
        assert_eq!(names(&t.streams[0]), ["s_2.webm", "s_9.webm", "s_10.webm"]);
        assert_eq!(t.streams[0].segments[2].file_index, Some(10));
    }

    #[test]
    fn equal_offsets_without_index_are_stable_by_name() {
        let t = timeline(&manifest(vec![
            file("s", "s_b.webm", 0, 10),
            file("s", "s.webm", 0, 10),
        ]));
        assert_eq!(names(&t.streams[0]), ["s.webm", "s_b.webm"]);
        assert_eq!(t.streams[0].segments[0].file_index, None);
    }

    #[test]
    fn flags_overlapping_segments() {
        let t = timeline(&manifest(vec![
            file("s", "s_1.webm", 0, 5_000),
            file("s", "s_2.webm", 4_000, 8_000),
        ]));
        assert_eq!(
            t.warnings,
            [TimelineWarning::OverlappingSegments {
                stream: "s".into(),
                first: "s_1.webm".into(),
                second: "s_2.webm".into(),
                overlap_ms: 1_000,
            }]
        );
        assert_eq!(
            t.streams[0].presence(),
            [Interval {
                start: ArchiveMs(0),
                stop: ArchiveMs(8_000)
            }]
        );
    }

    #[test]
    fn span_and_presence() {
        let t = timeline(&manifest(vec![
            file("b", "b.webm", 2_799, 48_764),
            file("a", "a_1.webm", 3_119, 10_000),
            file("a", "a_2.webm", 20_000, 48_765),
        ]));
        assert_eq!(
            t.span(),
            Some(Interval {
                start: ArchiveMs(2_799),
                stop: ArchiveMs(48_765)
            })
        );
        // Streams ordered by first appearance.
        assert_eq!(t.streams[0].id, "b");
        let a = &t.streams[1];
        assert_eq!(a.start(), ArchiveMs(3_119));
        assert_eq!(a.stop(), ArchiveMs(48_765));
        assert_eq!(
            a.presence(),
            [
                Interval {
                    start: ArchiveMs(3_119),
                    stop: ArchiveMs(10_000)
                },
                Interval {
                    start: ArchiveMs(20_000),
                    stop: ArchiveMs(48_765)
                }
            ]
        );
        assert_eq!(timeline(&manifest(vec![])).span(), None);
    }

    #[test]
    fn labels_from_connection_data() {
        let l = |v: serde_json::Value| label_from_connection_data(Some(&v));
        assert_eq!(
            l(json!(r#"{"name":"Zoë \"Z\" Ångström"}"#)).as_deref(),
            Some("Zoë \"Z\" Ångström")
        );
        assert_eq!(
            l(json!({"name": "日本語 🎥"})).as_deref(),
            Some("日本語 🎥")
        );
        assert_eq!(
            l(json!(r#"name=Firefox "53""#)).as_deref(),
            Some(r#"name=Firefox "53""#)
        );
        assert_eq!(
            l(json!(r#"{"role":"host"}"#)).as_deref(),
            Some(r#"{"role":"host"}"#)
        );
        assert_eq!(l(json!("  ")), None);
        assert_eq!(l(json!(null)), None);
        assert_eq!(l(json!(42)).as_deref(), Some("42"));
        assert_eq!(label_from_connection_data(None), None);
    }

    #[test]
    fn label_falls_back_to_stream_id_and_video_type_is_read() {
        let mut f = file("abc", "abc.webm", 0, 10);
        f.video_type = Some("screen".into());
        f.connection_data = Some(json!(""));
        let t = timeline(&manifest(vec![f]));
        assert_eq!(t.streams[0].label, "abc");
        assert_eq!(t.streams[0].video_type, VideoType::Screen);
    }

    #[test]
    fn file_index_parsing() {
        assert_eq!(file_index("s", "s.webm"), None);
        assert_eq!(file_index("s", "s_1.webm"), Some(1));
        assert_eq!(file_index("s", "s_10.mkv"), Some(10));
        assert_eq!(file_index("a_b", "a_b.webm"), None);
        assert_eq!(file_index("a_b", "a_b_7.webm"), Some(7));
        assert_eq!(file_index("s", "s_x.webm"), None);
        assert_eq!(file_index("s", "s_99999999999.webm"), None);
    }

    #[test]
    fn duration_mismatch_warns_with_both_numbers() {
        let t = timeline(&manifest(vec![
            file("a", "a.webm", 1_000, 11_000),
            file("b", "b.webm", 0, 5_000),
        ]));
        let w = t.duration_warnings(|name| match name {
            "a.webm" => Some((0, 10_050)),
            "b.webm" => Some((0, 4_800)),
            _ => None,
        });
        assert_eq!(w.len(), 1);
        let text = w[0].to_string();
        assert!(text.contains("5000") && text.contains("4800"), "{text}");
    }

    #[test]
    fn archive_ms_display() {
        assert_eq!(ArchiveMs(61_005).to_string(), "1:01.005");
        assert_eq!(ArchiveMs(-1).to_string(), "-0:00.001");
    }
}
