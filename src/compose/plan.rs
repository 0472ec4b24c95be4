//! The compose plan: everything the pipeline needs to know, decided up front from the
//! timeline and the inspected containers (pure, no I/O).
//!
//! Output time 0 is the earliest `startTimeOffset` (or `--from`); the output lasts until the
//! last `stopTimeOffset` (or `--to`). Each segment's file enters at its `startTimeOffset`.
//! A stream has one tile from its first start to its last stop, through all its segments;
//! `bestFit` and the presentation layouts are recomputed whenever a stream joins or leaves.
//! Inside its tile a stream shows, by time:
//! - its video while a segment is playing and frames arrive;
//! - during a video gap: the last frame (up to the freeze limit), then the placeholder (its
//!   label on a dark tile), or black, by the [`VideoMutePolicy`];
//! - between its segments (away), and in a segment with no video: the placeholder.

use crate::inspect::{SegmentReport, TrackKind};
use crate::layout::{Layout, Tile, TileRequest, speaker};
use crate::timeline::{Timeline, VideoType};

/// An output size, `WIDTHxHEIGHT`.
pub fn parse_size(s: &str) -> Result<(i32, i32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{s:?} is not WIDTHxHEIGHT"))?;
    let num = |v: &str| {
        v.trim()
            .parse::<i32>()
            .map_err(|_| format!("{s:?} is not WIDTHxHEIGHT"))
    };
    Ok((num(w)?, num(h)?))
}

/// What a tile shows while a stream's video is muted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoMutePolicy {
    /// The last frame, up to the freeze limit, then the placeholder.
    Freeze,
    /// Black at once.
    Black,
    /// The placeholder at once.
    Placeholder,
}

/// Half-open `[from, to)` intervals in archive ms, sorted and disjoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spans(Vec<(i64, i64)>);

impl Spans {
    pub fn new(mut v: Vec<(i64, i64)>) -> Spans {
        v.retain(|(a, b)| a < b);
        v.sort_unstable();
        let mut out: Vec<(i64, i64)> = Vec::with_capacity(v.len());
        for (a, b) in v {
            match out.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => out.push((a, b)),
            }
        }
        Spans(out)
    }

    pub fn intervals(&self) -> &[(i64, i64)] {
        &self.0
    }

    pub fn contains(&self, t: i64) -> bool {
        self.0.iter().any(|&(a, b)| t >= a && t < b)
    }

    pub fn union(&self, other: &Spans) -> Spans {
        Spans::new(self.0.iter().chain(&other.0).copied().collect())
    }

    pub fn subtract(&self, other: &Spans) -> Spans {
        let mut out = Vec::new();
        for &(a, b) in &self.0 {
            let mut cur = a;
            for &(c, d) in &other.0 {
                if d <= cur || c >= b {
                    continue;
                }
                if c > cur {
                    out.push((cur, c));
                }
                cur = cur.max(d);
            }
            if cur < b {
                out.push((cur, b));
            }
        }
        Spans::new(out)
    }

    pub fn clip(&self, from: i64, to: i64) -> Spans {
        Spans::new(
            self.0
                .iter()
                .map(|&(a, b)| (a.max(from), b.min(to)))
                .collect(),
        )
    }
}

/// Options that shape the plan: the canvas, the layout, the mute policy and the window.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanOptions {
    pub width: i32,
    pub height: i32,
    pub fps: u32,
    pub layout: Layout,
    pub video_mute: VideoMutePolicy,
    /// How long the last frame may stay frozen in a video gap (with [`VideoMutePolicy::Freeze`]).
    pub max_freeze_ms: i64,
    /// Trim on the archive timeline.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            width: 1280,
            height: 720,
            fps: 30,
            layout: Layout::BestFit,
            video_mute: VideoMutePolicy::Freeze,
            max_freeze_ms: 1_000,
            from_ms: None,
            to_ms: None,
        }
    }
}

impl PlanOptions {
    /// Checks the values a user can get wrong.
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |m: String| Err(crate::Error::InvalidOption(m));
        if !(640..=1920).contains(&self.width) || !(480..=1080).contains(&self.height) {
            return bad(format!(
                "size {}x{} is outside 640x480 .. 1920x1080",
                self.width, self.height
            ));
        }
        if self.width % 2 != 0 || self.height % 2 != 0 {
            return bad(format!("size {}x{} must be even", self.width, self.height));
        }
        if !(1..=60).contains(&self.fps) {
            return bad(format!("frame rate {} is outside 1..60", self.fps));
        }
        if let (Some(f), Some(t)) = (self.from_ms, self.to_ms)
            && t <= f
        {
            return bad(format!("--to {t} ms is not after --from {f} ms"));
        }
        Ok(())
    }
}

/// One segment's file in the output.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentLayer {
    pub filename: String,
    /// Where the file's time 0 sits in output time (may be negative with `--from`).
    pub offset_ms: i64,
    pub has_video: bool,
    pub has_audio: bool,
    /// When (output ms) its video shows.
    pub video_visible: Spans,
}

/// One stream in the output.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamLayer {
    pub stream_id: String,
    pub label: String,
    /// Its tile over output time: `(from_ms, tile)` steps; `None` when it has no tile.
    pub tiles: Vec<(i64, Option<Tile>)>,
    /// When (output ms) the placeholder shows.
    pub placeholder_visible: Spans,
    pub segments: Vec<SegmentLayer>,
}

impl StreamLayer {
    /// The tile at output time `t`.
    pub fn tile_at(&self, t: i64) -> Option<Tile> {
        self.tiles
            .iter()
            .take_while(|(at, _)| *at <= t)
            .last()
            .and_then(|(_, tile)| *tile)
    }
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The output window on the archive timeline.
    pub start_ms: i64,
    pub stop_ms: i64,
    pub width: i32,
    pub height: i32,
    pub fps: u32,
    pub streams: Vec<StreamLayer>,
}

impl Plan {
    pub fn duration_ms(&self) -> i64 {
        self.stop_ms - self.start_ms
    }

    /// Frames in the output.
    pub fn frames(&self) -> u64 {
        (self.duration_ms() as u64 * u64::from(self.fps)).div_ceil(1000)
    }

    /// How much later than its own time a decoded frame is handed to the canvas (half an
    /// output frame, rounded down), so that it shows from the output frame nearest its time.
    ///
    /// GStreamer's video aggregators show, in the output frame `[t, t + d)`, the last input
    /// frame that begins before `t + d`: up to a whole frame early, when a camera's frames
    /// fall between the output's (its file starts at an odd millisecond, or its clock runs
    /// its own way). Half a frame later they begin before `t + d/2`: the nearest.
    pub fn video_delay_ns(&self) -> i64 {
        1_000_000_000 / i64::from(self.fps.max(1)) / 2
    }

    /// The output window on the archive timeline: `--from`/`--to`, else the recording's
    /// span; `None` when it is empty. A window beyond the span is allowed (repair's
    /// `--align archive` re-encodes a stream over the whole archive's span): it shows black and
    /// silence there.
    pub fn window(timeline: &Timeline, opts: &PlanOptions) -> Option<(i64, i64)> {
        let span = timeline.span()?;
        let start = opts.from_ms.unwrap_or(span.start.0);
        let stop = opts.to_ms.unwrap_or(span.stop.0);
        (stop > start).then_some((start, stop))
    }

    /// Builds the plan. `segment` answers the inspection of a file by name.
    pub fn new<'a>(
        timeline: &Timeline,
        segment: impl Fn(&str) -> Option<&'a SegmentReport>,
        opts: &PlanOptions,
    ) -> Option<Plan> {
        let (start, stop) = Plan::window(timeline, opts)?;
        let out = |t: i64| t - start;
        let frame_ms = (1000 / i64::from(opts.fps.max(1))).max(1);
        let freeze = match opts.video_mute {
            VideoMutePolicy::Freeze => opts.max_freeze_ms.max(frame_ms),
            _ => frame_ms,
        };

        // Layout epochs: boundaries where a stream joins or leaves.
        let mut bounds: Vec<i64> = vec![start];
        for s in &timeline.streams {
            bounds.extend(
                [s.start().0, s.stop().0]
                    .into_iter()
                    .filter(|&t| t > start && t < stop),
            );
        }
        if let Layout::Speaker(shots) = &opts.layout {
            bounds.extend(
                shots
                    .iter()
                    .map(|s| s.from_ms)
                    .filter(|&t| t > start && t < stop),
            );
        }
        bounds.sort_unstable();
        bounds.dedup();
        let mut tiles: Vec<Vec<(i64, Option<Tile>)>> = vec![Vec::new(); timeline.streams.len()];
        for &t in &bounds {
            let present: Vec<usize> = (0..timeline.streams.len())
                .filter(|&i| timeline.streams[i].start().0 <= t && t < timeline.streams[i].stop().0)
                .collect();
            let requests: Vec<TileRequest> = present
                .iter()
                .map(|&i| TileRequest {
                    stream_id: timeline.streams[i].id.clone(),
                    screen: timeline.streams[i].video_type == VideoType::Screen,
                })
                .collect();
            let arranged = match &opts.layout {
                Layout::Speaker(shots) if !shots.is_empty() => {
                    let shot = shots
                        .iter()
                        .take_while(|s| s.from_ms <= t)
                        .last()
                        .unwrap_or(&shots[0]);
                    speaker::arrange(opts.width, opts.height, &requests, &present, shot)
                }
                layout => layout.arrange(opts.width, opts.height, &requests),
            };
            for (i, steps) in tiles.iter_mut().enumerate() {
                let tile = present
                    .iter()
                    .position(|&p| p == i)
                    .and_then(|k| arranged[k]);
                if steps.last().map(|(_, t)| *t) != Some(tile) {
                    steps.push((out(t), tile));
                }
            }
        }

        let streams = timeline
            .streams
            .iter()
            .zip(tiles)
            .map(|(stream, tiles)| {
                let in_layout = Spans::new(vec![(stream.start().0, stream.stop().0)]);
                let mut video_shown = Spans::default();
                let mut segment_time = Spans::default();
                let mut segments = Vec::new();
                for seg in &stream.segments {
                    for src in &seg.sources {
                        let report = segment(&src.filename);
                        // A video nothing can decode counts as none: the placeholder shows.
                        let video = report
                            .and_then(|r| r.tracks.iter().find(|t| t.kind == TrackKind::Video))
                            .filter(|v| !v.undecodable());
                        let has_audio = report.is_some_and(|r| {
                            r.tracks
                                .iter()
                                .any(|t| t.kind == TrackKind::Audio && t.frames > 0)
                        });
                        let at = |container_ms: i64| src.start.0 + container_ms;
                        let visible =
                            match video.and_then(|v| Some((v.first_ms?, v.last_ms?, &v.gaps))) {
                                Some((first, last, gaps)) => {
                                    let whole = Spans::new(vec![(
                                        at(first).max(seg.start.0),
                                        (at(last) + freeze).min(seg.stop.0),
                                    )]);
                                    let hidden = Spans::new(
                                        gaps.iter()
                                            .map(|g| (at(g.from_ms) + freeze, at(g.to_ms)))
                                            .collect(),
                                    );
                                    whole.subtract(&hidden)
                                }
                                None => Spans::default(),
                            };
                        video_shown = video_shown.union(&visible);
                        segment_time =
                            segment_time.union(&Spans::new(vec![(seg.start.0, seg.stop.0)]));
                        segments.push(SegmentLayer {
                            filename: src.filename.clone(),
                            offset_ms: out(src.start.0),
                            has_video: video.is_some_and(|v| v.frames > 0),
                            has_audio,
                            video_visible: shift(&visible.clip(start, stop), start),
                        });
                    }
                }
                // The placeholder: whenever the stream has a tile and no video shows, except
                // in muted time under the black policy.
                let mut placeholder = in_layout.subtract(&video_shown);
                if opts.video_mute == VideoMutePolicy::Black {
                    placeholder = placeholder.subtract(&segment_time);
                }
                StreamLayer {
                    stream_id: stream.id.clone(),
                    label: stream.label.clone(),
                    tiles,
                    placeholder_visible: shift(&placeholder.clip(start, stop), start),
                    segments,
                }
            })
            .collect();

        Some(Plan {
            start_ms: start,
            stop_ms: stop,
            width: opts.width,
            height: opts.height,
            fps: opts.fps,
            streams,
        })
    }
}

fn shift(s: &Spans, by: i64) -> Spans {
    Spans::new(
        s.intervals()
            .iter()
            .map(|&(a, b)| (a - by, b - by))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::manifest::{Manifest, ManifestFile};
    use crate::inspect::{Codec, Gap, TrackReport};
    use crate::layout::Rect;

    fn mf(stream: &str, name: &str, start: i64, stop: i64, video_type: &str) -> ManifestFile {
        ManifestFile {
            stream_id: stream.into(),
            filename: name.into(),
            start_time_offset: start,
            stop_time_offset: stop,
            video_type: Some(video_type.into()),
            connection_data: None,
            size: None,
        }
    }

    fn seg_report(name: &str, first: i64, last: i64, gaps: Vec<(i64, i64)>) -> SegmentReport {
        let track = |kind| TrackReport {
            number: 1,
            kind,
            codec: Codec::Vp8,
            codec_id: String::new(),
            width: None,
            height: None,
            resolution_changes: vec![],
            sample_rate: None,
            channels: None,
            pre_skip: None,
            codec_delay_ns: None,
            codec_private: None,
            first_ms: Some(first),
            last_ms: Some(last),
            frames: 10,
            keyframes: 1,
            decodable_keyframes: 1,
            backwards_timestamps: 0,
            gaps: if kind == TrackKind::Video {
                gaps.iter()
                    .map(|&(from_ms, to_ms)| Gap { from_ms, to_ms })
                    .collect()
            } else {
                vec![]
            },
        };
        SegmentReport {
            index: 1,
            file_index: None,
            filename: name.into(),
            media: crate::timeline::SourceMedia::AudioVideo,
            size: 1,
            start_ms: 0,
            stop_ms: 0,
            offset_ms: 0,
            container: "webm".into(),
            has_duration: false,
            has_cues: false,
            truncated: None,
            damage: vec![],
            duration_ms: None,
            tracks: vec![track(TrackKind::Video), track(TrackKind::Audio)],
            clusters: Default::default(),
        }
    }

    fn opts(policy: VideoMutePolicy) -> PlanOptions {
        PlanOptions {
            video_mute: policy,
            ..PlanOptions::default()
        }
    }

    fn timeline(files: Vec<ManifestFile>) -> Timeline {
        crate::source::opentok::timeline(&Manifest {
            id: "a".into(),
            name: None,
            created_at: 0,
            files,
            session_id: None,
            partner_id: None,
        })
    }

    #[test]
    fn spans_algebra() {
        let a = Spans::new(vec![(0, 10), (5, 20), (30, 40)]);
        assert_eq!(a.intervals(), [(0, 20), (30, 40)]);
        let b = a.subtract(&Spans::new(vec![(3, 4), (15, 35)]));
        assert_eq!(b.intervals(), [(0, 3), (4, 15), (35, 40)]);
        assert_eq!(b.clip(2, 36).intervals(), [(2, 3), (4, 15), (35, 36)]);
        assert!(b.contains(0) && !b.contains(3) && !b.contains(40));
    }

    #[test]
    fn grid_recomputed_on_join_and_leave_with_offsets() {
        let t = timeline(vec![
            mf("a", "a.webm", 1_000, 9_000, "camera"),
            mf("b", "b.webm", 3_000, 6_000, "camera"),
        ]);
        let reports = [
            seg_report("a.webm", 0, 7_990, vec![]),
            seg_report("b.webm", 0, 2_990, vec![]),
        ];
        let plan = Plan::new(
            &t,
            |n| reports.iter().find(|r| r.filename == n),
            &opts(VideoMutePolicy::Freeze),
        )
        .unwrap();
        assert_eq!(
            (plan.start_ms, plan.stop_ms, plan.duration_ms()),
            (1_000, 9_000, 8_000)
        );
        assert_eq!(plan.frames(), 240);
        // Frames reach the canvas half an output frame late: shown at the nearest one.
        assert_eq!(plan.video_delay_ns(), 16_666_666);
        let a = &plan.streams[0];
        assert_eq!(a.tile_at(0).unwrap().rect, Rect::new(0, 0, 1280, 720));
        assert_eq!(a.tile_at(2_000).unwrap().rect, Rect::new(0, 0, 640, 720));
        assert_eq!(a.tile_at(5_000).unwrap().rect, Rect::new(0, 0, 1280, 720));
        let b = &plan.streams[1];
        assert_eq!(b.tile_at(1_000), None);
        assert_eq!(b.tile_at(2_000).unwrap().rect, Rect::new(640, 0, 640, 720));
        assert_eq!(b.segments[0].offset_ms, 2_000);
        assert!(
            a.placeholder_visible.intervals().is_empty(),
            "{:?}",
            a.placeholder_visible
        );
    }

    #[test]
    fn video_gap_freezes_then_shows_the_placeholder() {
        let t = timeline(vec![mf("a", "a.webm", 0, 10_000, "camera")]);
        let reports = [seg_report("a.webm", 0, 9_990, vec![(2_000, 6_000)])];
        let find = |n: &str| reports.iter().find(|r| r.filename == n);
        let freeze = Plan::new(&t, find, &opts(VideoMutePolicy::Freeze)).unwrap();
        let s = &freeze.streams[0];
        assert_eq!(
            s.segments[0].video_visible.intervals(),
            [(0, 3_000), (6_000, 10_000)]
        );
        assert_eq!(s.placeholder_visible.intervals(), [(3_000, 6_000)]);
        let black = Plan::new(&t, find, &opts(VideoMutePolicy::Black)).unwrap();
        assert_eq!(
            black.streams[0].segments[0].video_visible.intervals(),
            [(0, 2_033), (6_000, 10_000)]
        );
        assert!(black.streams[0].placeholder_visible.intervals().is_empty());
        let ph = Plan::new(&t, find, &opts(VideoMutePolicy::Placeholder)).unwrap();
        assert_eq!(
            ph.streams[0].placeholder_visible.intervals(),
            [(2_033, 6_000)]
        );
    }

    #[test]
    fn tile_kept_between_segments_with_placeholder_while_away() {
        let t = timeline(vec![
            mf("a", "a_1.webm", 0, 3_000, "camera"),
            mf("a", "a_2.webm", 5_000, 8_000, "camera"),
            mf("b", "b.webm", 0, 8_000, "camera"),
        ]);
        let reports = [
            seg_report("a_1.webm", 0, 2_990, vec![]),
            seg_report("a_2.webm", 0, 2_990, vec![]),
            seg_report("b.webm", 0, 7_990, vec![]),
        ];
        let plan = Plan::new(
            &t,
            |n| reports.iter().find(|r| r.filename == n),
            &opts(VideoMutePolicy::Freeze),
        )
        .unwrap();
        let a = &plan.streams[0];
        assert_eq!(
            a.tiles.len(),
            1,
            "one tile through both segments: {:?}",
            a.tiles
        );
        assert_eq!(a.placeholder_visible.intervals(), [(3_000, 5_000)]);
        assert_eq!(a.segments[1].offset_ms, 5_000);
        assert_eq!(a.segments[1].video_visible.intervals(), [(5_000, 8_000)]);
    }

    #[test]
    fn trim_moves_time_zero() {
        let t = timeline(vec![mf("a", "a.webm", 0, 10_000, "camera")]);
        let reports = [seg_report("a.webm", 0, 9_990, vec![])];
        let mut o = opts(VideoMutePolicy::Freeze);
        o.from_ms = Some(2_000);
        o.to_ms = Some(5_000);
        let plan = Plan::new(&t, |n| reports.iter().find(|r| r.filename == n), &o).unwrap();
        assert_eq!(plan.duration_ms(), 3_000);
        assert_eq!(plan.streams[0].segments[0].offset_ms, -2_000);
        assert_eq!(
            plan.streams[0].segments[0].video_visible.intervals(),
            [(0, 3_000)]
        );
        o.from_ms = Some(6_000);
        assert!(Plan::new(&t, |n| reports.iter().find(|r| r.filename == n), &o).is_none());
    }
}
