//! Sample LiveSwitch recordings: the folder the media server writes (per connection a
//! `.mka` audio file, a `.mkv` video file and a `.json` log), plus the session's
//! `connection.recordings.ready` event, so tests and benchmarks need no real server.
//!
//! A spec's streams are clients and their segments are connections (a reconnect is a
//! second segment). Times in the spec are the real times of the sound and picture; the
//! logs say `videoFirstFrameTimestamp` `video_delay_ms` early, as LiveSwitch does when the
//! video lags, so a reader that ignores `videoDelay` shows the picture that much early.

use std::path::Path;

use serde_json::{Value, json};

use super::encode::Encoded;
use super::spec::{ArchiveSpec, ContainerKind, SegmentSpec, StreamSpec};
use super::{Written, encode_tracks, mux};
use crate::error::{Error, Result};
use crate::output::write_atomic;

/// What the recordings folder says beyond the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveswitchOptions {
    pub application_id: String,
    pub channel_id: String,
    /// How much the video lags the timestamps the logs give (`videoDelay`).
    pub video_delay_ms: i64,
}

impl Default for LiveswitchOptions {
    fn default() -> Self {
        LiveswitchOptions {
            application_id: "mosaic-sample-app".into(),
            channel_id: "sample-channel".into(),
            video_delay_ms: 90,
        }
    }
}

/// The `liveswitch` preset: alice (camera, 0..8 s, an audio mute), bob (two connections:
/// 0.5..3.5 s and 4.5..8 s) and carol (audio only, 1..7 s), with sync marks.
pub fn demo() -> ArchiveSpec {
    let client = |id: &str, label: &str, color, tone, marks: Vec<i64>, segs| StreamSpec {
        id: id.into(),
        label: Some(label.into()),
        video_type: "camera".into(),
        width: 320,
        height: 240,
        color,
        tone_hz: tone,
        marks_ms: marks,
        segments: segs,
        speech: vec![],
        frame_code: false,
    };
    let mut alice = SegmentSpec::new(0, 8_000);
    alice.audio_mutes = vec![[3_500, 4_200]];
    let mut carol = SegmentSpec::new(1_000, 7_000);
    carol.no_video = true;
    ArchiveSpec {
        id: "liveswitch-sample".into(),
        name: "LiveSwitch sample session".into(),
        created_at: 1_700_000_000_000,
        container: ContainerKind::Webm,
        fps: 30,
        h264_bframes: 0,
        video_kbps: 200,
        streams: vec![
            client(
                "client-alice",
                "alice",
                [220, 40, 40],
                440.0,
                vec![1_500, 5_000],
                vec![alice],
            ),
            client(
                "client-bob",
                "bob",
                [40, 80, 220],
                550.0,
                vec![2_000, 6_000],
                vec![SegmentSpec::new(500, 3_500), SegmentSpec::new(4_500, 8_000)],
            ),
            client(
                "client-carol",
                "carol",
                [40, 180, 60],
                660.0,
                vec![3_000],
                vec![carol],
            ),
        ],
    }
}

/// The connection id of a client's `n`th (0-based) connection.
pub fn connection_id(stream: &StreamSpec, n: usize) -> String {
    format!("{}-conn{}", stream.id, n + 1)
}

fn iso(unix_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(unix_ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
        .unwrap_or_default()
}

fn pts_range_ms(e: &Encoded) -> Option<(i64, i64)> {
    let first = e.packets.iter().map(|p| p.pts_ns).min()?;
    let last = e.packets.iter().map(|p| p.pts_ns).max()?;
    Some((first.div_euclid(1_000_000), last.div_euclid(1_000_000)))
}

/// One connection's facts, for its log and the event.
struct Connection {
    id: String,
    start_ms: i64,
    stop_ms: i64,
    /// (file, first, last) in Unix ms, as the logs say them (video already `delay` early).
    audio: Option<(String, i64, i64)>,
    video: Option<(String, i64, i64)>,
    delay_ms: i64,
}

/// Writes `spec` as a LiveSwitch recordings folder `dir` (created; it must not exist, or
/// be empty) with `event.json`. The folder appears only when complete.
pub fn write_folder(spec: &ArchiveSpec, dir: &Path, opts: &LiveswitchOptions) -> Result<Written> {
    spec.validate()?;
    let write_err = |source| Error::Write {
        path: dir.to_path_buf(),
        source,
    };
    if dir.exists() {
        std::fs::remove_dir(dir).map_err(write_err)?; // refuses a folder that is not empty
    }
    let name = dir
        .file_name()
        .map_or_else(|| "recordings".into(), |n| n.to_string_lossy().into_owned());
    let temp = dir.with_file_name(format!(".{name}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&temp);
    std::fs::create_dir_all(&temp).map_err(write_err)?;
    let result = write_into(spec, &temp, opts);
    match result {
        Ok(written) => {
            std::fs::rename(&temp, dir).map_err(write_err)?;
            Ok(written)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&temp);
            Err(e)
        }
    }
}

fn write_into(spec: &ArchiveSpec, dir: &Path, opts: &LiveswitchOptions) -> Result<Written> {
    let t0 = spec.created_at;
    let mut written = Written { files: 0, bytes: 0 };
    let mut event_connections = Vec::new();
    let mut stop_all = t0;
    for (k, stream) in spec.streams.iter().enumerate() {
        for (n, seg) in stream.segments.iter().enumerate() {
            let tracks = encode_tracks(spec, stream, seg)?;
            let id = connection_id(stream, n);
            let at = |ms: i64| t0 + seg.start_ms + ms;
            let both = tracks.audio.is_some() && tracks.video.is_some();
            let delay_ms = if both { opts.video_delay_ms } else { 0 };
            let mut conn = Connection {
                id: id.clone(),
                start_ms: t0 + seg.start_ms,
                stop_ms: t0 + seg.stop_ms,
                audio: None,
                video: None,
                delay_ms,
            };
            if let (Some(audio), Some(range)) = (
                tracks.audio_track(),
                tracks.audio.as_ref().and_then(pts_range_ms),
            ) {
                let file = format!("{id}-0.mka");
                let bytes =
                    mux::write_live_matroska(Vec::new(), "matroska", None, Some(audio), None)?;
                written.bytes += bytes.len() as u64;
                written.files += 1;
                write_atomic(dir.join(&file), &bytes)?;
                conn.audio = Some((file, at(range.0), at(range.1)));
            }
            if let (Some(video), Some(range)) = (
                tracks.video_track(),
                tracks.video.as_ref().and_then(|v| pts_range_ms(&v.0)),
            ) {
                let file = format!("{id}-0.mkv");
                let bytes =
                    mux::write_live_matroska(Vec::new(), "matroska", Some(video), None, None)?;
                written.bytes += bytes.len() as u64;
                written.files += 1;
                write_atomic(dir.join(&file), &bytes)?;
                conn.video = Some((file, at(range.0) - delay_ms, at(range.1) - delay_ms));
            }
            stop_all = stop_all.max(conn.stop_ms);
            let log = log_entries(stream, seg, &conn, opts, t0);
            write_atomic(dir.join(format!("{id}-0.json")), &pretty(&log)?)?;
            event_connections.push(event_connection(stream, &conn, opts, k % 2 == 0));
        }
    }
    let event = json!({
        "timestamp": stop_all + 5_000,
        "type": "connection.recordings.ready",
        "origin": "recordingmover",
        "channelRecording": {
            "applicationId": opts.application_id,
            "channelId": opts.channel_id,
            "startTimestamp": iso(t0),
            "stopTimestamp": iso(stop_all),
            "id": format!("{}-recording", spec.id),
        },
        "connectionRecordings": event_connections,
    });
    write_atomic(dir.join("event.json"), &pretty(&event)?)?;
    Ok(written)
}

fn pretty(v: &Value) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(v).map_err(|e| Error::InvalidSpec(e.to_string()))
}

/// The ids every entry and event carries.
fn ids(
    stream: &StreamSpec,
    conn: &Connection,
    opts: &LiveswitchOptions,
) -> serde_json::Map<String, Value> {
    let user = stream.label.clone().unwrap_or_else(|| stream.id.clone());
    let mut m = serde_json::Map::new();
    m.insert("applicationId".into(), json!(opts.application_id));
    m.insert("channelId".into(), json!(opts.channel_id));
    m.insert("userId".into(), json!(user));
    m.insert("deviceId".into(), json!(format!("{}-device", stream.id)));
    m.insert("clientId".into(), json!(stream.id));
    m.insert("connectionId".into(), json!(conn.id));
    m
}

fn log_entries(
    stream: &StreamSpec,
    seg: &SegmentSpec,
    conn: &Connection,
    opts: &LiveswitchOptions,
    t0: i64,
) -> Value {
    let entry = |kind: &str, at: i64, data: Value| {
        let mut e = ids(stream, conn, opts);
        e.insert("type".into(), json!(kind));
        e.insert("timestamp".into(), json!(iso(at)));
        e.insert("data".into(), data);
        Value::Object(e)
    };
    let mut start = json!({
        "connectionTag": "sfu-upstream",
        "videoContent": if stream.video_type == "screen" { "screen" } else { "camera" },
        "videoDelay": conn.delay_ms as f64 / 1000.0,
        "audioMuted": false, "videoMuted": false,
        "audioDisabled": conn.audio.is_none(), "videoDisabled": conn.video.is_none(),
    });
    let mut stop = json!({});
    for (kind, track) in [("audio", &conn.audio), ("video", &conn.video)] {
        if let Some((file, first, last)) = track {
            start[format!("{kind}File")] = json!(format!("/var/lib/liveswitch/recordings/{file}"));
            start[format!("{kind}FirstFrameTimestamp")] = json!(iso(*first));
            stop[format!("{kind}LastFrameTimestamp")] = json!(iso(*last));
        }
    }
    let mut entries = vec![entry("startRecording", conn.start_ms, start)];
    let mut mutes: Vec<(i64, &str, bool)> = Vec::new();
    for (key, list) in [
        ("audioMuted", &seg.audio_mutes),
        ("videoMuted", &seg.video_mutes),
    ] {
        for [from, to] in list {
            mutes.push((*from, key, true));
            mutes.push((*to, key, false));
        }
    }
    mutes.sort();
    for (at, key, muted) in mutes {
        entries.push(entry("updateRecording", t0 + at, json!({ key: muted })));
    }
    entries.push(entry("stopRecording", conn.stop_ms, stop));
    Value::Array(entries)
}

fn event_connection(
    stream: &StreamSpec,
    conn: &Connection,
    opts: &LiveswitchOptions,
    with_names: bool,
) -> Value {
    let mut c = ids(stream, conn, opts);
    let mut put = |k: &str, v: Value| {
        c.insert(k.into(), v);
    };
    put("connectionType", json!("sfu"));
    put("startTimestamp", json!(iso(conn.start_ms)));
    put("stopTimestamp", json!(iso(conn.stop_ms)));
    put("hasAudio", json!(conn.audio.is_some()));
    put("hasVideo", json!(conn.video.is_some()));
    put("connectionTag", json!("sfu-upstream"));
    put(
        "videoContent",
        json!(if stream.video_type == "screen" {
            "screen"
        } else {
            "camera"
        }),
    );
    put("videoDelay", json!(conn.delay_ms as f64 / 1000.0));
    for (kind, track) in [("audio", &conn.audio), ("video", &conn.video)] {
        if let Some((file, first, last)) = track {
            if with_names {
                put(&format!("{kind}FileName"), json!(file));
            }
            put(&format!("{kind}FirstFrameTimestamp"), json!(iso(*first)));
            put(&format!("{kind}LastFrameTimestamp"), json!(iso(*last)));
        }
    }
    Value::Object(c)
}
