//! The individual-stream archive manifest: typed structs and pure validation.
//!
//! The manifest is the `<archiveId>.json` file at the root of an OpenTok/Vonage
//! individual-stream archive. Unknown fields are tolerated (the format grows); a missing
//! required field is an error that names the field.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The archive manifest, as written by the media server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The archive id (also the manifest's file name stem).
    pub id: String,
    /// The archive name; empty or absent when none was given.
    #[serde(default)]
    pub name: Option<String>,
    /// Unix time in ms when recording effectively started: the archive timeline's origin.
    #[serde(rename = "createdAt")]
    pub created_at: i64,
    /// One entry per media file (a stream, or one segment of a stream).
    pub files: Vec<ManifestFile>,
    #[serde(rename = "sessionId", default)]
    pub session_id: Option<String>,
    #[serde(rename = "partnerId", default)]
    pub partner_id: Option<serde_json::Value>,
}

/// One media file of the archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestFile {
    #[serde(rename = "streamId")]
    pub stream_id: String,
    pub filename: String,
    /// ms from `createdAt` when this file started recording.
    #[serde(rename = "startTimeOffset")]
    pub start_time_offset: i64,
    /// ms from `createdAt` when this file stopped recording.
    #[serde(rename = "stopTimeOffset")]
    pub stop_time_offset: i64,
    /// `camera`, `screen` or `custom`; absent in some archives.
    #[serde(rename = "videoType", default)]
    pub video_type: Option<String>,
    /// The publisher's connection data: free text, often a JSON object in a string.
    #[serde(rename = "connectionData", default)]
    pub connection_data: Option<serde_json::Value>,
    /// Size in bytes of the file in the ZIP, as the server recorded it.
    #[serde(default)]
    pub size: Option<u64>,
}

impl Manifest {
    /// Parses and validates a manifest. `name` is the manifest's entry name, for messages.
    pub fn parse(name: &str, bytes: &[u8]) -> Result<Manifest> {
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| Error::InvalidManifest {
                name: name.to_owned(),
                reason: e.to_string(),
            })?;
        manifest
            .validate()
            .map_err(|reason| Error::InvalidManifest {
                name: name.to_owned(),
                reason,
            })?;
        Ok(manifest)
    }

    /// Checks what serde cannot: plain file names, sane offsets, no duplicates.
    fn validate(&self) -> std::result::Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for (i, f) in self.files.iter().enumerate() {
            if f.stream_id.trim().is_empty() {
                return Err(format!("files[{i}]: empty streamId"));
            }
            if let Some(reason) = crate::source::media::unsafe_plain_name(&f.filename) {
                return Err(format!("files[{i}]: filename {:?} {reason}", f.filename));
            }
            if f.start_time_offset < 0 {
                return Err(format!(
                    "files[{i}] ({}): negative startTimeOffset {}",
                    f.filename, f.start_time_offset
                ));
            }
            if f.stop_time_offset < f.start_time_offset {
                return Err(format!(
                    "files[{i}] ({}): stopTimeOffset {} is before startTimeOffset {}",
                    f.filename, f.stop_time_offset, f.start_time_offset
                ));
            }
            if !seen.insert(f.filename.as_str()) {
                return Err(format!("files[{i}]: {:?} is listed twice", f.filename));
            }
        }
        Ok(())
    }
}

/// True for the media extensions an individual-stream archive holds.
pub fn is_media_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".webm", ".mkv", ".mka"]
        .iter()
        .any(|ext| lower.ends_with(ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample from the archiving documentation (seed 002).
    const SEED_SAMPLE: &str = r#"{
        "createdAt" : 1429305105162,
        "files" : [
          { "connectionData" : "connection data for this stream's connection",
            "filename" : "a1475893-99f5-4f02-b697-5d69e8e30d19.webm",
            "size" : 5558064, "startTimeOffset" : 3119, "stopTimeOffset" : 48765,
            "streamId" : "a1475893-99f5-4f02-b697-5d69e8e30d19", "videoType": "camera" },
          { "connectionData" : "connection data for this stream's connection",
            "filename" : "5ab71b7b-d998-4683-ad2b-7769d6533666.webm",
            "size" : 5396527, "startTimeOffset" : 2799, "stopTimeOffset" : 48764,
            "streamId" : "5ab71b7b-d998-4683-ad2b-7769d6533666", "videoType": "screen" }
        ],
        "id" : "297b9c62-78b3-4152-9e98-7e167354c9e6",
        "name" : "archive name",
        "partnerId" : 123456,
        "sessionId" : "2_MX4xMDB-fjE0MjkzMDQ3NzY3NTZ-WUpRUGVFUmhFSkRmVGljeU5zVnJpaXYxfn4"
    }"#;

    #[test]
    fn parses_the_seed_sample() {
        let m = Manifest::parse("m.json", SEED_SAMPLE.as_bytes()).unwrap();
        assert_eq!(m.id, "297b9c62-78b3-4152-9e98-7e167354c9e6");
        assert_eq!(m.created_at, 1429305105162);
        assert_eq!(m.files.len(), 2);
        assert_eq!(m.files[1].video_type.as_deref(), Some("screen"));
        assert_eq!(m.files[0].start_time_offset, 3119);
        assert_eq!(m.files[0].stop_time_offset, 48765);
        assert_eq!(m.files[0].size, Some(5558064));
    }

    #[test]
    fn tolerates_unknown_fields_and_null_name() {
        let json = r#"{"id":"a","name":null,"createdAt":1,"future":{"x":[1]},
            "files":[{"streamId":"s","filename":"s.webm","startTimeOffset":0,
            "stopTimeOffset":10,"hasAudio":true,"codec":"vp8"}]}"#;
        let m = Manifest::parse("a.json", json.as_bytes()).unwrap();
        assert_eq!(m.name, None);
        assert_eq!(m.files[0].video_type, None);
        assert_eq!(m.files[0].connection_data, None);
    }

    #[test]
    fn missing_required_fields_are_named() {
        for (field, json) in [
            ("createdAt", r#"{"id":"a","files":[]}"#),
            ("files", r#"{"id":"a","createdAt":1}"#),
            ("id", r#"{"createdAt":1,"files":[]}"#),
            (
                "streamId",
                r#"{"id":"a","createdAt":1,"files":[{"filename":"x.webm","startTimeOffset":0,"stopTimeOffset":1}]}"#,
            ),
            (
                "stopTimeOffset",
                r#"{"id":"a","createdAt":1,"files":[{"streamId":"x","filename":"x.webm","startTimeOffset":0}]}"#,
            ),
        ] {
            let err = Manifest::parse("a.json", json.as_bytes()).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(field), "{field}: {msg}");
            assert!(matches!(err, Error::InvalidManifest { .. }));
        }
    }

    #[test]
    fn rejects_invalid_json_and_wrong_types() {
        assert!(Manifest::parse("a.json", b"{not json").is_err());
        let json = r#"{"id":"a","createdAt":"yesterday","files":[]}"#;
        let msg = Manifest::parse("a.json", json.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("createdAt") || msg.contains("invalid type"),
            "{msg}"
        );
    }

    #[test]
    fn rejects_path_names_reversed_offsets_and_duplicates() {
        let file = |name: &str, start: i64, stop: i64| {
            format!(
                r#"{{"streamId":"s","filename":{name:?},"startTimeOffset":{start},"stopTimeOffset":{stop}}}"#
            )
        };
        for (files, expect) in [
            (file("../evil.webm", 0, 1), "path separator"),
            (file("/abs.webm", 0, 1), "path separator"),
            (file("a\\b.webm", 0, 1), "path separator"),
            (file("", 0, 1), "empty"),
            (file("s.webm", 5, 1), "before startTimeOffset"),
            (file("s.webm", -5, 1), "negative"),
            (
                format!("{},{}", file("s.webm", 0, 1), file("s.webm", 2, 3)),
                "twice",
            ),
        ] {
            let json = format!(r#"{{"id":"a","createdAt":1,"files":[{files}]}}"#);
            let msg = Manifest::parse("a.json", json.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(msg.contains(expect), "{expect}: {msg}");
        }
    }

    #[test]
    fn media_names() {
        assert!(is_media_name("a.webm"));
        assert!(is_media_name("A.MKV"));
        assert!(is_media_name("audio.mka"));
        assert!(!is_media_name("a.json"));
        assert!(!is_media_name("webm"));
    }
}
