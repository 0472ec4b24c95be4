//! A LiveSwitch recording log: `<connectionId>-<n>.json` beside `<connectionId>-<n>.mka` and
//! `.mkv`, a JSON array of `startRecording`, `updateRecording` and `stopRecording` entries
//! (pure).

use serde_json::Value;

use super::{ConnectionRecording, MediaTrack};
use crate::error::{Error, Result};
use crate::source::fields::Fields;
use crate::source::media::base_name;

/// The entry types a log may hold.
pub const ENTRY_TYPES: [&str; 3] = ["startRecording", "updateRecording", "stopRecording"];

/// A parsed log: the recording, and what a user should know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Log {
    pub recording: ConnectionRecording,
    pub warnings: Vec<String>,
}

/// What the log's `data` objects say, later entries overriding earlier ones.
#[derive(Default)]
struct Data {
    audio_file: Option<String>,
    video_file: Option<String>,
    audio_first: Option<(i64, String)>,
    audio_last: Option<(i64, String)>,
    video_first: Option<(i64, String)>,
    video_last: Option<(i64, String)>,
    video_delay_ms: Option<i64>,
    tag: Option<String>,
    content: Option<String>,
}

impl Data {
    fn merge(&mut self, data: &Fields<'_>) -> Result<()> {
        let time = |key: &str| -> Result<Option<(i64, String)>> {
            Ok(data.time(key)?.map(|t| (t, data.path(key))))
        };
        if let Some(f) = data.opt_str("audioFile")? {
            self.audio_file = Some(base_name(f));
        }
        if let Some(f) = data.opt_str("videoFile")? {
            self.video_file = Some(base_name(f));
        }
        self.audio_first = time("audioFirstFrameTimestamp")?.or(self.audio_first.take());
        self.audio_last = time("audioLastFrameTimestamp")?.or(self.audio_last.take());
        self.video_first = time("videoFirstFrameTimestamp")?.or(self.video_first.take());
        self.video_last = time("videoLastFrameTimestamp")?.or(self.video_last.take());
        self.video_delay_ms = data.seconds_ms("videoDelay")?.or(self.video_delay_ms);
        if let Some(t) = data.opt_str("connectionTag")? {
            self.tag = Some(t.to_owned());
        }
        if let Some(c) = data.opt_str("videoContent")? {
            self.content = Some(c.to_owned());
        }
        // Mutes and disabled tracks show in the media itself (no frames); nothing to keep.
        for key in ["audioMuted", "videoMuted", "audioDisabled", "videoDisabled"] {
            data.bool(key)?;
        }
        Ok(())
    }
}

/// Parses one log. `file` names it in messages.
pub fn parse(file: &str, bytes: &[u8]) -> Result<Log> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| Error::InvalidEvent {
        name: file.to_owned(),
        field: "(file)".into(),
        reason: format!("not valid JSON: {e}"),
    })?;
    let Some(entries) = value.as_array() else {
        return Err(Error::InvalidEvent {
            name: file.to_owned(),
            field: "(root)".into(),
            reason: "a recording log is a JSON array of entries".into(),
        });
    };
    let mut start: Option<(i64, Fields<'_>)> = None;
    let mut stop: Option<(i64, String)> = None;
    let mut last_seen: Option<i64> = None;
    let mut data = Data::default();
    for (i, entry) in entries.iter().enumerate() {
        let e = Fields::object(file, format!("[{i}]"), entry)?;
        let kind = e.required_str("type")?;
        if !ENTRY_TYPES.contains(&kind) {
            return Err(e.error(
                "type",
                format!("unknown entry type {kind:?}; expected one of {ENTRY_TYPES:?}"),
            ));
        }
        let at = e.required_time("timestamp")?;
        last_seen = Some(last_seen.map_or(at, |l| l.max(at)));
        if let Some(d) = e.child("data")? {
            data.merge(&d)?;
        }
        match kind {
            "startRecording" if start.is_none() => start = Some((at, e)),
            "stopRecording" => stop = Some((at, e.path("timestamp"))),
            _ => {}
        }
    }
    let Some((start_ms, first)) = start else {
        return Err(Error::InvalidEvent {
            name: file.to_owned(),
            field: "(entries)".into(),
            reason: "the log has no startRecording entry".into(),
        });
    };
    let mut warnings = Vec::new();
    let stop_ms = match stop {
        Some((t, field)) if t < start_ms => {
            return Err(Error::InvalidEvent {
                name: file.to_owned(),
                field,
                reason: format!("stopRecording is {} ms before startRecording", start_ms - t),
            });
        }
        Some((t, _)) => t,
        None => {
            warnings.push(format!(
                "{file}: no stopRecording entry (the recording may have been cut short); \
                 it ends at its last entry or frame"
            ));
            last_seen.unwrap_or(start_ms)
        }
    };
    let connection_id = first.required_str("connectionId")?.to_owned();
    let track = |file_name: Option<String>,
                 first_at: Option<(i64, String)>,
                 last_at: Option<(i64, String)>|
     -> Result<Option<MediaTrack>> {
        let Some(file_name) = file_name else {
            return Ok(None);
        };
        if let (Some((a, _)), Some((b, field))) = (&first_at, &last_at)
            && b < a
        {
            return Err(Error::InvalidEvent {
                name: file.to_owned(),
                field: field.clone(),
                reason: format!("the last frame is {} ms before the first", a - b),
            });
        }
        Ok(Some(MediaTrack {
            file: file_name,
            first_ms: first_at.map(|(t, _)| t),
            last_ms: last_at.map(|(t, _)| t),
            size: None,
        }))
    };
    let audio = track(data.audio_file, data.audio_first, data.audio_last)?;
    let video = track(data.video_file, data.video_first, data.video_last)?;
    let stop_ms = [audio.as_ref(), video.as_ref()]
        .into_iter()
        .flatten()
        .filter_map(|t| t.last_ms)
        .fold(stop_ms, i64::max);
    Ok(Log {
        recording: ConnectionRecording {
            application_id: first.required_str("applicationId")?.to_owned(),
            channel_id: first.required_str("channelId")?.to_owned(),
            client_id: first
                .opt_str("clientId")?
                .map_or_else(|| connection_id.clone(), str::to_owned),
            user_id: first.opt_str("userId")?.map(str::to_owned),
            device_id: first.opt_str("deviceId")?.map(str::to_owned),
            connection_id,
            start_ms,
            stop_ms,
            audio,
            video,
            video_delay_ms: data.video_delay_ms.unwrap_or(0),
            screen: super::is_screen(data.content.as_deref(), data.tag.as_deref()),
            tag: data.tag,
            origin: file.to_owned(),
        },
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = r#"[
      {"type":"startRecording","timestamp":"2022-02-28T01:51:18.830406Z",
       "applicationId":"app","channelId":"ch","userId":"alice","deviceId":"laptop",
       "clientId":"c1","connectionId":"k1",
       "data":{"audioFile":"C:\\rec\\k1-0.mka","videoFile":"/rec/k1-0.mkv",
               "audioFirstFrameTimestamp":"2022-02-28T01:51:18.830406Z",
               "videoFirstFrameTimestamp":"2022-02-28T01:51:19.127785Z",
               "videoDelay":0.091534,"connectionTag":"sfu-upstream"}},
      {"type":"updateRecording","timestamp":"2022-02-28T01:51:30Z",
       "applicationId":"app","channelId":"ch","clientId":"c1","connectionId":"k1",
       "data":{"audioMuted":true}},
      {"type":"stopRecording","timestamp":"2022-02-28T01:52:02.377Z",
       "applicationId":"app","channelId":"ch","clientId":"c1","connectionId":"k1",
       "data":{"audioLastFrameTimestamp":"2022-02-28T01:52:01.72Z",
               "videoLastFrameTimestamp":"2022-02-28T01:52:02.285Z"}}
    ]"#;

    #[test]
    fn reads_a_whole_log() {
        let log = parse("k1-0.json", LOG.as_bytes()).unwrap();
        let r = &log.recording;
        assert!(log.warnings.is_empty());
        assert_eq!(
            (r.client_id.as_str(), r.connection_id.as_str()),
            ("c1", "k1")
        );
        assert_eq!(r.user_id.as_deref(), Some("alice"));
        assert_eq!(r.start_ms, 1_646_013_078_830);
        assert_eq!(r.stop_ms, 1_646_013_122_377);
        assert_eq!(r.video_delay_ms, 92);
        let audio = r.audio.as_ref().unwrap();
        assert_eq!(audio.file, "k1-0.mka");
        assert_eq!(audio.last_ms, Some(1_646_013_121_720));
        assert_eq!(r.video.as_ref().unwrap().file, "k1-0.mkv");
        assert!(!r.screen);
    }

    fn refused(json: &str) -> String {
        match parse("x.json", json.as_bytes()) {
            Err(e @ Error::InvalidEvent { .. }) => e.to_string(),
            other => panic!("expected InvalidEvent, got {other:?}"),
        }
    }

    #[test]
    fn refuses_broken_logs_naming_the_field() {
        let start = r#"{"type":"startRecording","timestamp":"2022-02-28T01:51:18Z","applicationId":"a","channelId":"c","connectionId":"k"}"#;
        assert!(refused("{}").contains("JSON array"));
        assert!(refused("[1]").contains("[0]"));
        assert!(
            refused(r#"[{"type":"startRecording","applicationId":"a"}]"#).contains("[0].timestamp")
        );
        assert!(
            refused(r#"[{"type":"startRecording","timestamp":"noon"}]"#).contains("[0].timestamp")
        );
        assert!(
            refused(r#"[{"type":"pauseRecording","timestamp":"2022-02-28T01:51:18Z"}]"#)
                .contains("[0].type")
        );
        assert!(
            refused(&format!(
                r#"[{start},{{"type":"stopRecording","timestamp":"2022-02-28T01:51:17Z"}}]"#
            ))
            .contains("[1].timestamp")
        );
        let backwards = format!(
            r#"[{start},{{"type":"stopRecording","timestamp":"2022-02-28T01:52:00Z","data":{{"audioFile":"k.mka","audioFirstFrameTimestamp":"2022-02-28T01:51:30Z","audioLastFrameTimestamp":"2022-02-28T01:51:20Z"}}}}]"#
        );
        assert!(refused(&backwards).contains("[1].data.audioLastFrameTimestamp"));
        assert!(
            refused(r#"[{"type":"updateRecording","timestamp":"2022-02-28T01:51:18Z"}]"#)
                .contains("no startRecording")
        );
        assert!(
            refused(&format!(
                "[{}]",
                start.replace(r#""connectionId":"k""#, r#""x":1"#)
            ))
            .contains("connectionId")
        );
    }

    #[test]
    fn a_log_without_stop_warns_and_ends_at_its_last_entry() {
        let json = r#"[{"type":"startRecording","timestamp":"2022-02-28T01:51:18Z","applicationId":"a","channelId":"c","connectionId":"k",
            "data":{"audioFile":"k-0.mka"}},
            {"type":"updateRecording","timestamp":"2022-02-28T01:51:28Z","data":{"videoContent":"screen"}}]"#;
        let log = parse("k-0.json", json.as_bytes()).unwrap();
        assert_eq!(log.recording.stop_ms - log.recording.start_ms, 10_000);
        assert_eq!(log.recording.client_id, "k");
        assert!(log.recording.screen);
        assert!(
            log.warnings[0].contains("no stopRecording"),
            "{:?}",
            log.warnings
        );
    }
}
