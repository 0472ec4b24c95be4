//! LiveSwitch sessions and their timeline (pure).
//!
//! A session is the set of connection recordings of one application and channel that
//! overlap in time (touching counts). Its timeline starts at the session's start (a
//! webhook event's `channelRecording.startTimestamp`). A participant is a client: its
//! successive connections (reconnects) are the segments of one stream. Each connection's
//! audio file is placed at its `audioFirstFrameTimestamp`, its video file at its
//! `videoFirstFrameTimestamp` plus `videoDelay` when it has both (LiveSwitch's own muxer
//! corrects lip sync this way), each by its first frame.

use std::collections::BTreeMap;

use super::ConnectionRecording;
use crate::source::time::compact_utc;
use crate::timeline::{
    Anchor, ArchiveMs, Segment, Source, SourceMedia, Stream, Timeline, TimelineWarning, VideoType,
};

/// One session: the recordings that make one composite.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub application_id: String,
    pub channel_id: String,
    /// The channel recording's id, when an event gave it.
    pub recording_id: Option<String>,
    /// Unix ms.
    pub start_ms: i64,
    pub stop_ms: i64,
    pub connections: Vec<ConnectionRecording>,
}

impl Session {
    /// One session of every connection, with the channel recording's bounds where known.
    pub fn of_channel(
        connections: Vec<ConnectionRecording>,
        bounds: Option<(i64, i64)>,
        recording_id: Option<String>,
        application_id: String,
        channel_id: String,
    ) -> Session {
        let (mut start, mut stop) = bounds.unwrap_or((i64::MAX, i64::MIN));
        for c in &connections {
            start = start.min(c.start_ms);
            stop = stop.max(c.stop_ms);
        }
        if start > stop {
            (start, stop) = (0, 0);
        }
        Session {
            application_id,
            channel_id,
            recording_id,
            start_ms: start,
            stop_ms: stop,
            connections,
        }
    }

    /// `<channelId>-<start>`, e.g. `123456-20220228T015118.830Z`: unique within a folder.
    pub fn key(&self) -> String {
        format!("{}-{}", self.channel_id, compact_utc(self.start_ms))
    }

    /// The session's timeline; `labels` answers a participant's label from its ids
    /// (client, user, device, connection), `None` for the default.
    pub fn timeline(&self, labels: &dyn Fn(&[&str]) -> Option<String>) -> Timeline {
        let origin = self.start_ms;
        let rel = |unix_ms: i64| ArchiveMs(unix_ms - origin);
        let mut fallbacks = Vec::new();
        let mut by_client: BTreeMap<&str, Vec<&ConnectionRecording>> = BTreeMap::new();
        for c in &self.connections {
            by_client.entry(c.client_id.as_str()).or_default().push(c);
        }
        let mut streams: Vec<Stream> = by_client
            .into_iter()
            .map(|(client, mut conns)| {
                conns.sort_by(|a, b| {
                    a.start_ms
                        .cmp(&b.start_ms)
                        .then_with(|| a.connection_id.cmp(&b.connection_id))
                });
                let segments = conns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| segment(i + 1, c, &rel, &mut fallbacks))
                    .collect();
                let first = conns[0];
                let ids: Vec<&str> = [Some(client)]
                    .into_iter()
                    .chain([first.user_id.as_deref(), first.device_id.as_deref()])
                    .chain(conns.iter().map(|c| Some(c.connection_id.as_str())))
                    .flatten()
                    .collect();
                Stream {
                    id: client.to_owned(),
                    label: labels(&ids).unwrap_or_else(|| {
                        first.user_id.clone().unwrap_or_else(|| client.to_owned())
                    }),
                    video_type: if conns.iter().any(|c| c.screen) {
                        VideoType::Screen
                    } else {
                        VideoType::Camera
                    },
                    segments,
                }
            })
            .collect();
        disambiguate_labels(&mut streams, &self.connections);
        let mut timeline = Timeline {
            archive_id: self.recording_id.clone().unwrap_or_else(|| self.key()),
            archive_name: Some(self.channel_id.clone()),
            created_at_ms: origin,
            streams,
            warnings: fallbacks,
        };
        timeline.sort_streams();
        timeline
    }
}

/// One connection as a segment: its audio and video files, each placed by its first frame,
/// or (a fallback, added to `fallbacks`) by the connection's start when the log or event
/// gives no first-frame time.
fn segment(
    index: usize,
    c: &ConnectionRecording,
    rel: &dyn Fn(i64) -> ArchiveMs,
    fallbacks: &mut Vec<TimelineWarning>,
) -> Segment {
    let mut sources = Vec::new();
    let delay = if c.audio.is_some() && c.video.is_some() {
        c.video_delay_ms
    } else {
        0
    };
    for (track, media, shift) in [
        (&c.audio, SourceMedia::Audio, 0),
        (&c.video, SourceMedia::Video, delay),
    ] {
        let Some(t) = track else { continue };
        let (start, anchor) = match t.first_ms {
            Some(first) => (rel(first + shift), Anchor::FirstFrame),
            None => {
                let kind = if media == SourceMedia::Audio {
                    "audio"
                } else {
                    "video"
                };
                fallbacks.push(TimelineWarning::Fallback {
                    what: format!(
                        "{}: connection {} gives no {kind}FirstFrameTimestamp; placed by a \
                         fallback at its startTimestamp, it may be out of step",
                        t.file, c.connection_id
                    ),
                });
                (rel(c.start_ms + shift), Anchor::FileStart)
            }
        };
        sources.push(Source {
            filename: t.file.clone(),
            media,
            start,
            stop: t.last_ms.map(|l| rel(l + shift)),
            anchor,
            declared_size: t.size,
        });
    }
    let start = sources
        .iter()
        .map(|s| s.start)
        .fold(rel(c.start_ms), ArchiveMs::min);
    let stop = sources
        .iter()
        .filter_map(|s| s.stop)
        .fold(rel(c.stop_ms), ArchiveMs::max);
    Segment {
        index,
        file_index: None,
        start,
        stop,
        sources,
    }
}

/// Two participants with the same default label (one user on two devices) get their
/// device (or client) id after it.
fn disambiguate_labels(streams: &mut [Stream], connections: &[ConnectionRecording]) {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for s in streams.iter() {
        *counts.entry(s.label.clone()).or_default() += 1;
    }
    for s in streams.iter_mut() {
        if counts.get(&s.label).copied().unwrap_or(0) < 2 {
            continue;
        }
        let device = connections
            .iter()
            .find(|c| c.client_id == s.id)
            .and_then(|c| c.device_id.clone())
            .unwrap_or_else(|| s.id.clone());
        s.label = format!("{} ({device})", s.label);
    }
}

/// Groups recordings into sessions: by application and channel, then by overlap in time.
pub fn sessions(mut connections: Vec<ConnectionRecording>) -> Vec<Session> {
    connections.sort_by(|a, b| {
        (
            &a.application_id,
            &a.channel_id,
            a.start_ms,
            &a.connection_id,
        )
            .cmp(&(
                &b.application_id,
                &b.channel_id,
                b.start_ms,
                &b.connection_id,
            ))
    });
    let mut out: Vec<Session> = Vec::new();
    for c in connections {
        match out.last_mut() {
            Some(s)
                if s.application_id == c.application_id
                    && s.channel_id == c.channel_id
                    && c.start_ms <= s.stop_ms =>
            {
                s.stop_ms = s.stop_ms.max(c.stop_ms);
                s.connections.push(c);
            }
            _ => {
                let mut session = Session::of_channel(
                    Vec::new(),
                    Some((c.start_ms, c.stop_ms)),
                    None,
                    c.application_id.clone(),
                    c.channel_id.clone(),
                );
                session.connections.push(c);
                out.push(session);
            }
        }
    }
    out.sort_by_key(|s| s.start_ms);
    out
}
