//! LiveSwitch recording webhook events (pure): `connection.recordings.ready` (every
//! connection of a channel recording) and the per-connection
//! `connection.recording.audio.ready` / `connection.recording.video.ready`.

use serde_json::Value;

use super::{ConnectionRecording, MediaTrack};
use crate::error::{Error, Result};
use crate::source::fields::Fields;
use crate::source::media::base_name;

/// The event types that carry recordings.
pub const EVENT_TYPES: [&str; 3] = [
    "connection.recordings.ready",
    "connection.recording.audio.ready",
    "connection.recording.video.ready",
];

/// The channel recording an event belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRecording {
    pub id: Option<String>,
    pub application_id: String,
    pub channel_id: String,
    pub start_ms: i64,
    pub stop_ms: i64,
}

/// A parsed event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: String,
    pub channel: ChannelRecording,
    pub connections: Vec<ConnectionRecording>,
}

/// Which of a connection's files a lookup is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Audio,
    Video,
}

impl FileKind {
    pub fn extension(self) -> &'static str {
        match self {
            FileKind::Audio => "mka",
            FileKind::Video => "mkv",
        }
    }
}

/// Parses an event. Where a connection has audio or video but the event gives no file name,
/// `find` names the file from the connection id (the edge looks in the media folder).
pub fn parse(
    file: &str,
    bytes: &[u8],
    find: &mut dyn FnMut(&str, FileKind) -> Result<String>,
) -> Result<Event> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| Error::InvalidEvent {
        name: file.to_owned(),
        field: "(file)".into(),
        reason: format!("not valid JSON: {e}"),
    })?;
    let root = Fields::root(file, &value)?;
    let kind = root.required_str("type")?;
    if !EVENT_TYPES.contains(&kind) {
        return Err(root.error(
            "type",
            format!("{kind:?} carries no recordings; expected one of {EVENT_TYPES:?}"),
        ));
    }
    let ch = root
        .child("channelRecording")?
        .ok_or_else(|| root.error("channelRecording", "is missing"))?;
    let channel = ChannelRecording {
        id: ch.opt_str("id")?.map(str::to_owned),
        application_id: ch.required_str("applicationId")?.to_owned(),
        channel_id: ch.required_str("channelId")?.to_owned(),
        start_ms: ch.required_time("startTimestamp")?,
        stop_ms: ch.required_time("stopTimestamp")?,
    };
    if channel.stop_ms < channel.start_ms {
        return Err(ch.error("stopTimestamp", "is before startTimestamp"));
    }
    let mut connections = Vec::new();
    match (
        root.obj.get("connectionRecordings"),
        root.child("connectionRecording")?,
    ) {
        (Some(Value::Array(list)), _) => {
            for (i, item) in list.iter().enumerate() {
                let c = Fields::object(file, format!("connectionRecordings[{i}]"), item)?;
                connections.push(connection(&c, &channel, find)?);
            }
        }
        (Some(other), _) if !other.is_null() => {
            return Err(root.error("connectionRecordings", "is not an array"));
        }
        (_, Some(c)) => connections.push(connection(&c, &channel, find)?),
        _ => return Err(root.error("connectionRecordings", "is missing")),
    }
    Ok(Event {
        kind: kind.to_owned(),
        channel,
        connections,
    })
}

fn connection(
    c: &Fields<'_>,
    channel: &ChannelRecording,
    find: &mut dyn FnMut(&str, FileKind) -> Result<String>,
) -> Result<ConnectionRecording> {
    let connection_id = c.required_str("connectionId")?.to_owned();
    let start_ms = c.required_time("startTimestamp")?;
    let stop_ms = c.required_time("stopTimestamp")?;
    if stop_ms < start_ms {
        return Err(c.error("stopTimestamp", "is before startTimestamp"));
    }
    let mut track = |kind: FileKind| -> Result<Option<MediaTrack>> {
        let (has, name_key, size_key, first_key, last_key) = match kind {
            FileKind::Audio => (
                "hasAudio",
                "audioFileName",
                "audioFileSize",
                "audioFirstFrameTimestamp",
                "audioLastFrameTimestamp",
            ),
            FileKind::Video => (
                "hasVideo",
                "videoFileName",
                "videoFileSize",
                "videoFirstFrameTimestamp",
                "videoLastFrameTimestamp",
            ),
        };
        let named = c.opt_str(name_key)?.map(base_name);
        let has = c.bool(has)?.unwrap_or(named.is_some());
        if !has {
            return Ok(None);
        }
        let first_ms = c.time(first_key)?;
        let last_ms = c.time(last_key)?;
        if let (Some(a), Some(b)) = (first_ms, last_ms)
            && b < a
        {
            return Err(c.error(last_key, format!("is {} ms before {first_key}", a - b)));
        }
        let file = match named {
            Some(name) => name,
            None => find(&connection_id, kind)?,
        };
        Ok(Some(MediaTrack {
            file,
            first_ms,
            last_ms,
            size: c.u64(size_key)?,
        }))
    };
    let audio = track(FileKind::Audio)?;
    let video = track(FileKind::Video)?;
    let tag = c.opt_str("connectionTag")?.map(str::to_owned);
    Ok(ConnectionRecording {
        application_id: c
            .opt_str("applicationId")?
            .unwrap_or(&channel.application_id)
            .to_owned(),
        channel_id: c
            .opt_str("channelId")?
            .unwrap_or(&channel.channel_id)
            .to_owned(),
        client_id: c
            .opt_str("clientId")?
            .map_or_else(|| connection_id.clone(), str::to_owned),
        user_id: c.opt_str("userId")?.map(str::to_owned),
        device_id: c.opt_str("deviceId")?.map(str::to_owned),
        start_ms,
        stop_ms,
        audio,
        video,
        video_delay_ms: c.seconds_ms("videoDelay")?.unwrap_or(0),
        screen: super::is_screen(c.opt_str("videoContent")?, tag.as_deref()),
        tag,
        origin: format!("{} {}", c.file, c.at),
        connection_id,
    })
}
