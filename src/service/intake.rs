//! What a verified webhook asks for (pure): a job to enqueue under an idempotency key, or an
//! event to record and answer 200. Parsing here comes after the signature check.

use serde_json::{Map, Value};

use super::job::{Fetch, JobSpec, Origin, PendingUrl};
use crate::names::{is_plain, plain_name};
use crate::source::liveswitch::event as ls_event;

/// What to do with a webhook.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Enqueue once per key; the same event again finds the same job.
    Enqueue { key: String, spec: Box<JobSpec> },
    /// Well formed, no work: record it (`events_key` groups events of one recording) and
    /// answer 200.
    Record {
        kind: String,
        events_key: Option<String>,
        reason: String,
    },
}

/// A body that is not a webhook mosaic understands (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

fn malformed<T>(why: impl Into<String>) -> Result<T, Malformed> {
    Err(Malformed(why.into()))
}

/// The body as a JSON object.
pub fn json_object(body: &[u8]) -> Result<Map<String, Value>, Malformed> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => malformed("the body is not a JSON object"),
        Err(e) => malformed(format!("the body is not JSON: {e}")),
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn field(obj: &Map<String, Value>, key: &str) -> Result<String, Malformed> {
    obj.get(key)
        .and_then(text)
        .ok_or_else(|| Malformed(format!("{key}: missing or not a string")))
}

/// An identifier that becomes part of a store path as it is (an uploaded archive's
/// `<partnerId>/<archiveId>`): it must already be a plain name, or the call is refused.
fn plain(what: &str, value: String) -> Result<String, Malformed> {
    if is_plain(&value) {
        Ok(value)
    } else {
        malformed(format!(
            "{what} {value:?} is not a plain name ([A-Za-z0-9._-], no leading dot)"
        ))
    }
}

/// An OpenTok archive status callback. `storage` is `opentok.storage`. The tenant is the
/// partner (API key) the callback names; its key is `opentok:<partner>:<archive>:<status>`
/// and the output `opentok/<archive>`.
pub fn opentok(obj: &Map<String, Value>, storage: Option<&str>) -> Result<Decision, Malformed> {
    let partner_of = || obj.get("partnerId").and_then(text).unwrap_or_default();
    if let Some(event) = obj.get("event").and_then(Value::as_str)
        && event != "archive"
    {
        return Ok(Decision::Record {
            kind: format!("opentok {event}"),
            events_key: obj
                .get("sessionId")
                .and_then(text)
                .map(|s| format!("{}/{s}", partner_of())),
            reason: "not an archive event".into(),
        });
    }
    let id = field(obj, "id")?;
    let partner = partner_of();
    let status = field(obj, "status")?;
    let record = |reason: String| Decision::Record {
        kind: format!("opentok archive {status}"),
        events_key: Some(format!("{partner}/{id}")),
        reason,
    };
    let size = obj.get("size").and_then(Value::as_u64).filter(|&s| s > 0);
    let fetch = match status.as_str() {
        "available" => {
            let url = field(obj, "url")?;
            Fetch {
                from: url,
                to: "archive.zip".into(),
                size,
                expires: true,
            }
        }
        "uploaded" => {
            let partner = plain("partnerId", field(obj, "partnerId")?)?;
            let id = plain("id", id.clone())?;
            let Some(storage) = storage else {
                return Ok(record(
                    "opentok.storage is not configured, so an uploaded archive cannot be read"
                        .into(),
                ));
            };
            Fetch {
                from: format!(
                    "{}/{partner}/{id}/archive.zip",
                    storage.trim_end_matches('/')
                ),
                to: "archive.zip".into(),
                size,
                expires: false,
            }
        }
        _ => return Ok(record(format!("status {status:?} needs no work"))),
    };
    Ok(Decision::Enqueue {
        key: format!("opentok:{partner}:{id}:{status}"),
        spec: Box::new(JobSpec {
            origin: Origin::Opentok,
            summary: format!("archive {id} ({status})"),
            fetch: vec![fetch],
            pending: Vec::new(),
            events_key: None,
            descriptor: None,
            open: "archive.zip".into(),
            produce: None,
            compose: None,
            chunk: None,
            output: Some(format!("opentok/{}", plain_name(&id))),
        }),
    })
}

/// The application id a LiveSwitch webhook is signed for.
pub fn liveswitch_application_id(obj: &Map<String, Value>) -> Option<String> {
    [
        "channelRecording",
        "connectionRecording",
        "channel",
        "client",
        "connection",
    ]
    .iter()
    .filter_map(|k| obj.get(*k)?.get("applicationId").and_then(text))
    .next()
    .or_else(|| obj.get("applicationId").and_then(text))
}

/// The channel recording a LiveSwitch recording event belongs to.
fn channel_recording_key(obj: &Map<String, Value>) -> Option<String> {
    let ch = obj.get("channelRecording")?;
    if let Some(id) = ch.get("id").and_then(text) {
        return Some(id);
    }
    let from_connection = obj
        .get("connectionRecordings")
        .and_then(|v| v.get(0))
        .or_else(|| obj.get("connectionRecording"))
        .and_then(|c| c.get("channelRecordingId"))
        .and_then(text);
    from_connection.or_else(|| {
        let start = ch.get("startTimestamp").and_then(text)?;
        let start = crate::source::time::parse_iso_ms(&start)
            .map(crate::source::time::compact_utc)
            .unwrap_or(start);
        Some(format!("{}-{start}", ch.get("channelId").and_then(text)?))
    })
}

/// A LiveSwitch webhook, verified as `app`'s: the application is the tenant. Its events are
/// kept under `<app>/<channel recording>`, its job's key is
/// `liveswitch:<app>:<channel recording>` and its output
/// `liveswitch/<app>/<channel recording>`, so one application can neither claim another's
/// key nor supply its URLs nor write over its outputs.
pub fn liveswitch(obj: &Map<String, Value>, app: &str) -> Result<Decision, Malformed> {
    let kind = field(obj, "type")?;
    let key = channel_recording_key(obj).map(|k| format!("{app}/{k}"));
    if kind != "connection.recordings.ready" {
        let reason = if ls_event::EVENT_TYPES.contains(&kind.as_str()) {
            "kept: its URLs complete the channel recording's job"
        } else {
            "carries no recordings"
        };
        return Ok(Decision::Record {
            kind: format!("liveswitch {kind}"),
            events_key: key,
            reason: reason.into(),
        });
    }
    let Some(events_key) = key else {
        return malformed("channelRecording: missing");
    };
    let recording = &events_key[app.len() + 1..];
    let mut event = Value::Object(obj.clone());
    let Some(Value::Array(connections)) = event.get_mut("connectionRecordings") else {
        return malformed("connectionRecordings: missing or not an array");
    };
    let mut fetch = Vec::new();
    let mut pending = Vec::new();
    for (i, c) in connections.iter_mut().enumerate() {
        let Some(c) = c.as_object_mut() else {
            return malformed(format!("connectionRecordings[{i}]: not an object"));
        };
        let id = field(c, "connectionId")?;
        let file = plain_name(&id);
        for (kind, ext) in [("audio", "mka"), ("video", "mkv")] {
            let has = c
                .get(&format!("has{}", capitalised(kind)))
                .and_then(Value::as_bool);
            let url = c.get(&format!("{kind}Url")).and_then(text);
            if has == Some(false) || (has.is_none() && url.is_none()) {
                continue;
            }
            let to = format!("{file}.{ext}");
            c.insert(format!("{kind}FileName"), Value::String(to.clone()));
            let size = c.get(&format!("{kind}FileSize")).and_then(Value::as_u64);
            match url {
                Some(from) => fetch.push(Fetch {
                    from,
                    to,
                    size,
                    expires: false,
                }),
                None => pending.push(PendingUrl {
                    connection_id: id.clone(),
                    kind: kind.into(),
                    to,
                }),
            }
        }
    }
    // The event must read as a recording once its files are named.
    let bytes = serde_json::to_vec(&event).map_err(|e| Malformed(e.to_string()))?;
    ls_event::parse("event", &bytes, &mut |id, _| {
        Err(crate::Error::InvalidEvent {
            name: "event".into(),
            field: id.into(),
            reason: "has no file".into(),
        })
    })
    .map_err(|e| Malformed(e.to_string()))?;
    Ok(Decision::Enqueue {
        key: format!("liveswitch:{app}:{recording}"),
        spec: Box::new(JobSpec {
            origin: Origin::Liveswitch,
            summary: format!("channel recording {recording} of {app}"),
            fetch,
            pending,
            chunk: None,
            output: Some(format!(
                "liveswitch/{}/{}",
                plain_name(app),
                plain_name(recording)
            )),
            events_key: Some(events_key),
            descriptor: Some(("event.json".into(), event)),
            open: "event.json".into(),
            produce: None,
            compose: None,
        }),
    })
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

/// The URL a per-connection LiveSwitch event gives for a connection's audio or video.
pub fn liveswitch_url(event: &Value, connection_id: &str, kind: &str) -> Option<String> {
    let c = event.get("connectionRecording")?;
    (c.get("connectionId").and_then(text)? == connection_id)
        .then(|| c.get(format!("{kind}Url"))?.as_str().map(str::to_owned))
        .flatten()
}

/// An EnableX notification.
pub fn enablex(obj: &Map<String, Value>, raw: &[u8]) -> Result<Decision, Malformed> {
    let kind = field(obj, "type")?;
    if kind != "recording" {
        return Ok(Decision::Record {
            kind: format!("enablex {kind}"),
            events_key: obj.get("room_id").and_then(text),
            reason: "lists no recording files".into(),
        });
    }
    let n =
        crate::source::enablex::parse("notification", raw).map_err(|e| Malformed(e.to_string()))?;
    let urls: Vec<String> = obj
        .get("recording")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(text).collect())
        .unwrap_or_default();
    if urls.len() != n.files.len() {
        return malformed("recording: every entry must be a URL");
    }
    let (room, conf) = (&n.room_id, &n.conf_num);
    // Each file gets its name through the gate; the notification kept for the source names
    // the files by those names (its URLs are not needed once the files are here).
    let names: Vec<String> = n.files.iter().map(|f| plain_name(f)).collect();
    let mut descriptor = obj.clone();
    descriptor.insert(
        "recording".into(),
        Value::Array(names.iter().cloned().map(Value::String).collect()),
    );
    Ok(Decision::Enqueue {
        key: format!("enablex:{room}:{conf}"),
        spec: Box::new(JobSpec {
            origin: Origin::Enablex,
            summary: format!("room {room}, conference {conf}"),
            fetch: urls
                .into_iter()
                .zip(names)
                .map(|(from, to)| Fetch {
                    from,
                    to,
                    size: None,
                    expires: false,
                })
                .collect(),
            pending: Vec::new(),
            events_key: None,
            descriptor: Some(("notification.json".into(), Value::Object(descriptor))),
            open: "notification.json".into(),
            produce: None,
            compose: None,
            chunk: None,
            output: Some(format!("enablex/{}", crate::names::joined(room, conf))),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn opentok_statuses() {
        let available = obj(serde_json::json!({
            "id": "b40ef09b", "event": "archive", "partnerId": 123456,
            "status": "available", "size": 1000, "url": "https://h/a.zip"
        }));
        let Decision::Enqueue { key, spec } = opentok(&available, None).unwrap() else {
            panic!()
        };
        assert_eq!(key, "opentok:123456:b40ef09b:available");
        assert_eq!(spec.output.as_deref(), Some("opentok/b40ef09b"));
        assert_eq!(spec.fetch[0].size, Some(1000));
        assert!(spec.fetch[0].expires);
        let mut uploaded = available.clone();
        uploaded.insert("status".into(), "uploaded".into());
        let Decision::Enqueue { spec, .. } = opentok(&uploaded, Some("file:///s/")).unwrap() else {
            panic!()
        };
        assert_eq!(spec.fetch[0].from, "file:///s/123456/b40ef09b/archive.zip");
        assert!(matches!(
            opentok(&uploaded, None).unwrap(),
            Decision::Record { .. }
        ));
        let mut stopped = available.clone();
        stopped.insert("status".into(), "stopped".into());
        assert!(matches!(
            opentok(&stopped, None).unwrap(),
            Decision::Record { .. }
        ));
        // A hostile id names no path: its output goes through the gate, and an uploaded
        // archive's store path takes plain ids only (`%2F` would be decoded to a folder).
        let mut hostile = available.clone();
        hostile.insert("id".into(), "../x".into());
        let Decision::Enqueue { spec, .. } = opentok(&hostile, None).unwrap() else {
            panic!()
        };
        let out = spec.output.unwrap();
        assert!(
            out.starts_with("opentok/x-h") && !out.contains(".."),
            "{out}"
        );
        for (k, v) in [("id", "a%2F..%2Fb"), ("partnerId", "1&x=2"), ("id", "..")] {
            let mut up = uploaded.clone();
            up.insert(k.into(), v.into());
            assert!(opentok(&up, Some("file:///s/")).is_err(), "{k}={v}");
        }
        assert!(json_object(b"[1]").is_err());
        assert!(json_object(b"{").is_err());
    }

    #[test]
    fn liveswitch_ready_names_its_files() {
        let v = serde_json::json!({
            "type": "connection.recordings.ready",
            "channelRecording": {"applicationId": "app", "channelId": "ch",
                "startTimestamp": "2022-02-28T01:51:18.830Z", "stopTimestamp": "2022-02-28T01:52:02Z"},
            "connectionRecordings": [{
                "applicationId": "app", "channelId": "ch", "connectionId": "c1",
                "channelRecordingId": "rec-1",
                "startTimestamp": "2022-02-28T01:51:18.830Z", "stopTimestamp": "2022-02-28T01:52:02Z",
                "hasAudio": true, "hasVideo": true, "audioUrl": "http://h/c1.mka?sig=1"
            }]
        });
        assert_eq!(
            liveswitch_application_id(&obj(v.clone())).as_deref(),
            Some("app")
        );
        let Decision::Enqueue { key, spec } = liveswitch(&obj(v.clone()), "app").unwrap() else {
            panic!()
        };
        assert_eq!(key, "liveswitch:app:rec-1");
        assert_eq!(spec.events_key.as_deref(), Some("app/rec-1"));
        assert_eq!(spec.output.as_deref(), Some("liveswitch/app/rec-1"));
        assert_eq!(spec.fetch[0].to, "c1.mka");
        assert_eq!(spec.pending[0].to, "c1.mkv");
        let event = &spec.descriptor.as_ref().unwrap().1;
        assert_eq!(event["connectionRecordings"][0]["videoFileName"], "c1.mkv");
        let audio_ready = serde_json::json!({"type": "connection.recording.video.ready",
            "connectionRecording": {"connectionId": "c1", "videoUrl": "http://h/v"}});
        assert_eq!(
            liveswitch_url(&audio_ready, "c1", "video").as_deref(),
            Some("http://h/v")
        );
        assert_eq!(liveswitch_url(&audio_ready, "c2", "video"), None);
        // Another application's event for the same recording id: another key, other events.
        let Decision::Enqueue { key, spec } = liveswitch(&obj(v.clone()), "other").unwrap() else {
            panic!()
        };
        assert_eq!(key, "liveswitch:other:rec-1");
        assert_eq!(spec.events_key.as_deref(), Some("other/rec-1"));
        // A hostile connection id becomes a plain file name.
        let mut hostile = v.clone();
        hostile["connectionRecordings"][0]["connectionId"] = "../../c1".into();
        let Decision::Enqueue { spec, .. } = liveswitch(&obj(hostile), "app").unwrap() else {
            panic!()
        };
        assert!(spec.fetch[0].to.starts_with("c1-h") && spec.fetch[0].to.ends_with(".mka"));
        assert_eq!(spec.pending[0].connection_id, "../../c1");
    }
}
