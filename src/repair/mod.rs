//! Repairing an archive into one standalone, playable file per participant.
//!
//! The fast path copies every real packet, audio and video, and rebuilds the container:
//! a stream's segments are joined on one clock, audio holes (mutes, the time between
//! segments, and with `--align archive` the time before and after the stream) are filled
//! with silent Opus frames so that even a decoder that just plays packets back to back hears
//! each sound where it was recorded, and the file gets a `Duration` and `Cues`. Nothing is
//! decoded or encoded. Video holes stay holes: players hold the last frame.

pub mod audio_only;
pub mod fill;
pub mod remux;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::compose::Control;
use crate::error::{Error, Result};
use crate::inspect::matroska::scan_frames;
use crate::inspect::{Codec, InspectOptions, SegmentReport, TrackKind, inspect_recording};
use crate::names::NameSet;
use crate::output::AtomicFile;
use crate::source::{self, MediaStore, Recording, SourceOptions};
use crate::timeline::SourceMedia;
pub use audio_only::AudioFormat;
use fill::{opus_silence, schedule};
use remux::{OutTrack, Remuxer};

/// Where each repaired file's time 0 is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Align {
    /// Each file starts when its stream starts and ends when it stops.
    #[default]
    Stream,
    /// Every file starts at the archive's first startTimeOffset and lasts the whole span,
    /// so all files drop into an editor together.
    Archive,
}

/// What was written for one stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepairedStream {
    pub stream_id: String,
    pub label: String,
    pub output: PathBuf,
    /// `remux`: packets copied, container rebuilt, no re-encode.
    pub path: &'static str,
    pub segments: usize,
    /// Where the file's time 0 is on the archive timeline.
    pub start_ms: i64,
    pub duration_ms: i64,
    /// Silence inserted to make the audio continuous.
    pub silence_ms: i64,
    pub video_packets: u64,
    pub audio_packets: u64,
}

/// `mosaic repair --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepairReport {
    pub align: Align,
    pub streams: Vec<RepairedStream>,
    pub warnings: Vec<String>,
    pub wall_ms: u64,
}

/// Repairs every stream of the recording at `input` into `out_dir` (created if missing).
pub fn repair(input: &Path, out_dir: &Path, align: Align) -> Result<RepairReport> {
    repair_with(
        input,
        out_dir,
        &RepairOptions {
            align,
            ..Default::default()
        },
        &Control::default(),
    )
}

/// How to repair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RepairOptions {
    pub align: Align,
    /// Write one aligned audio file per stream instead.
    pub audio_only: Option<AudioFormat>,
    /// Re-encode every stream (the fallback path), even where packets could be copied.
    pub reencode: bool,
    /// Any damage is an error (nothing written), instead of copying what is readable.
    pub strict: bool,
}

/// Like [`repair`], with every option. `control.progress` is told (streams done, streams)
/// after each stream; `control.cancel` is checked between streams (files already written
/// stay: each is complete).
pub fn repair_with(
    input: &Path,
    out_dir: &Path,
    opts: &RepairOptions,
    control: &Control<'_>,
) -> Result<RepairReport> {
    let mut recording = source::open_one(input, &SourceOptions::default())?;
    repair_recording(&mut recording, out_dir, opts, control)
}

/// Repairs every stream of one recording into `out_dir`. A stream recorded as separate
/// audio and video files (LiveSwitch) becomes one file with both.
pub fn repair_recording(
    recording: &mut Recording,
    out_dir: &Path,
    opts: &RepairOptions,
    control: &Control<'_>,
) -> Result<RepairReport> {
    let report = inspect_recording(recording, &InspectOptions::default())?;
    repair_inspected(recording, &report, out_dir, opts, control)
}

/// Repairs every stream of one recording into `out_dir`, given its inspection
/// (`inspect_recording` of the same recording).
pub fn repair_inspected(
    recording: &mut Recording,
    report: &crate::inspect::ArchiveReport,
    out_dir: &Path,
    opts: &RepairOptions,
    control: &Control<'_>,
) -> Result<RepairReport> {
    let started = Instant::now();
    if opts.strict {
        crate::compose::refuse_damage(report)?;
    }
    let timeline = recording.timeline.clone();
    let media = &mut recording.media;
    let span = timeline.span().ok_or_else(|| {
        Error::InvalidOption("nothing to repair: the recording has no streams".into())
    })?;
    let created = !out_dir.exists();
    std::fs::create_dir_all(out_dir).map_err(|source| Error::Write {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let mut streams = Vec::new();
    let job = Job {
        report,
        out_dir,
        span: (span.start.0, span.stop.0),
        opts,
        control,
    };
    if let Err(e) = job.run(&timeline, media, &mut streams) {
        // Stopped or failed: what this run wrote goes, so nothing looks finished.
        for s in &streams {
            let _ = std::fs::remove_file(&s.output);
        }
        if created {
            let _ = std::fs::remove_dir(out_dir);
        }
        return Err(e);
    }
    Ok(RepairReport {
        align: opts.align,
        streams,
        warnings: report.warnings.clone(),
        wall_ms: started.elapsed().as_millis() as u64,
    })
}

/// One repair run over a recording's streams.
struct Job<'a> {
    report: &'a crate::inspect::ArchiveReport,
    out_dir: &'a Path,
    /// The recording's span, archive ms.
    span: (i64, i64),
    opts: &'a RepairOptions,
    control: &'a Control<'a>,
}

impl Job<'_> {
    /// Repairs every stream, adding each written file to `streams` as it is done.
    fn run(
        &self,
        timeline: &crate::timeline::Timeline,
        media: &mut MediaStore,
        streams: &mut Vec<RepairedStream>,
    ) -> Result<()> {
        let RepairOptions {
            align,
            audio_only,
            reencode,
            ..
        } = *self.opts;
        let (report, out_dir, control) = (self.report, self.out_dir, self.control);
        let total = timeline.streams.len() as u64;
        let mut names = NameSet::default();
        for stream in &timeline.streams {
            if control
                .cancel
                .is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed))
            {
                return Err(Error::Cancelled);
            }
            if let Some(progress) = control.progress {
                progress(streams.len() as u64, total);
            }
            let (origin, end) = match align {
                Align::Stream => (stream.start().0, stream.stop().0),
                Align::Archive => self.span,
            };
            // Every file of the stream, in segment order; within a segment a separate audio
            // file comes before its video file (see remux_stream).
            let segments: Vec<(&SegmentReport, i64)> = stream
                .segments
                .iter()
                .flat_map(|seg| {
                    let mut sources: Vec<_> = seg.sources.iter().collect();
                    sources.sort_by_key(|src| src.media != SourceMedia::Audio);
                    sources
                })
                .filter_map(|src| {
                    report
                        .segment(&src.filename)
                        .map(|r| (r, src.start.0 - origin))
                })
                .collect();
            let joined = output_tracks(&segments);
            let container_ext = if segments.iter().all(|(r, _)| r.container == "webm") {
                "webm"
            } else {
                "mkv"
            };
            // The fallback: the video cannot be joined by copying (or a re-encode was asked
            // for), so the stream goes through the compose pipeline alone, at its own size.
            let ext = audio_only.map_or(container_ext, AudioFormat::extension);
            let name = names.take(&joined_name(&stream.id, &stream.label), &stream.id, ext);
            let out_path = crate::names::join_under(out_dir, &name)?;
            if audio_only.is_none() && (reencode || joined.is_none()) {
                let written =
                    self.reencode_stream(media, stream, (origin, end), &out_path, container_ext)?;
                streams.push(written);
                continue;
            }
            let Some(mut tracks) = joined else {
                return Err(Error::InvalidOption(format!(
                    "stream {}: its segments' audio codec parameters differ; --audio-only cannot join them",
                    stream.id
                )));
            };
            if audio_only.is_some() {
                tracks.retain(|t| t.kind == TrackKind::Audio);
                if tracks.is_empty() {
                    return Err(Error::InvalidOption(format!(
                        "stream {}: no audio to write",
                        stream.id
                    )));
                }
            }
            let duration_ms = end - origin;
            let written = match audio_only {
                None => remux_stream(media, &segments, &tracks, duration_ms, &out_path, ext)?,
                Some(format) => {
                    // The repaired audio, remuxed to a private file, then re-wrapped.
                    let temp = crate::workdir::tempfile("repair-", ".webm")?;
                    let webm = temp.path().to_path_buf();
                    let written =
                        remux_stream(media, &segments, &tracks, duration_ms, &webm, "webm")?;
                    let out = AtomicFile::create(&out_path)?;
                    audio_only::convert(&webm, out.temp_path(), format)?;
                    out.commit()?;
                    RepairedStream {
                        path: if format == AudioFormat::Opus {
                            "remux"
                        } else {
                            "remux+decode"
                        },
                        ..written
                    }
                }
            };
            streams.push(RepairedStream {
                stream_id: stream.id.clone(),
                label: stream.label.clone(),
                output: out_path,
                segments: stream.segments.len(),
                start_ms: origin,
                ..written
            });
        }
        Ok(())
    }
}

/// `<streamId>-<label>`, or `<streamId>` when the label adds nothing, both through the
/// identifier gate ([`crate::names`]); the extension and distinctness come from a [`NameSet`].
fn joined_name(stream_id: &str, label: &str) -> String {
    crate::names::joined(stream_id, label)
}

/// The fallback path: one stream, decoded and encoded again through the compose pipeline at
/// its own picture size (even), with the compose issue's mute policy for video holes and
/// continuous audio from the mixer. Used when the packets cannot simply be copied.
impl Job<'_> {
    fn reencode_stream(
        &self,
        media: &mut MediaStore,
        stream: &crate::timeline::Stream,
        (origin, end): (i64, i64),
        out_path: &Path,
        ext: &str,
    ) -> Result<RepairedStream> {
        let (report, cancel, strict) = (self.report, self.control.cancel, self.opts.strict);
        use crate::compose::plan::{Plan, PlanOptions};
        use crate::compose::trim::TimeMap;
        use crate::compose::{ExtractedMedia, OutputFormat, Speed, pipeline};

        let seg_reports: Vec<&SegmentReport> = stream
            .segments
            .iter()
            .flat_map(|s| &s.sources)
            .filter_map(|src| report.segment(&src.filename))
            .collect();
        let size = seg_reports
            .iter()
            .filter_map(|r| r.track(TrackKind::Video))
            .find_map(|v| Some((v.width?, v.height?)))
            .unwrap_or((640, 480));
        let even = |v: u32| (v.max(16) & !1) as i32;
        let mut alone = crate::timeline::Timeline {
            streams: vec![stream.clone()],
            ..Default::default()
        };
        alone.warnings.clear();
        let plan = Plan::new(
            &alone,
            |name| report.segment(name),
            &PlanOptions {
                width: even(size.0),
                height: even(size.1),
                from_ms: Some(origin),
                to_ms: Some(end),
                ..PlanOptions::default()
            },
        )
        .ok_or_else(|| {
            Error::InvalidOption(format!("stream {}: nothing to re-encode", stream.id))
        })?;
        let files = ExtractedMedia::extract(media, seg_reports.iter().copied())?;
        let lookup = |name: &str| files.lookup(name);
        let name_of = |path: &Path| files.name_of(path).map(str::to_owned);
        let out = AtomicFile::create(out_path)?;
        pipeline::run(&pipeline::PipelineInput {
            plan: &plan,
            parts: pipeline::Parts::Whole,
            segments: None,
            time_map: &std::sync::Arc::new(TimeMap::identity(plan.start_ms, plan.fps)),
            media: &lookup,
            format: if ext == "webm" {
                OutputFormat::Webm
            } else {
                OutputFormat::Mkv
            },
            speed: Speed::Balanced,
            quality: 23,
            // A repaired file is for editing: a seek point every 2 s.
            gop_frames: 60,
            labels: false,
            loudness: None,
            name_of: &name_of,
            strict,
            work_dir: files.work_dir(),
            output: out.temp_path(),
            progress: None,
            cancel,
        })?;
        let output = out.commit()?;
        Ok(RepairedStream {
            stream_id: stream.id.clone(),
            label: stream.label.clone(),
            output,
            path: "reencode",
            segments: stream.segments.len(),
            start_ms: origin,
            duration_ms: end - origin,
            silence_ms: 0,
            video_packets: 0,
            audio_packets: 0,
        })
    }
}

/// The tracks of a stream's joined file, from its segments; `None` when they cannot be
/// joined without re-encoding (a codec or its parameters change between segments).
fn output_tracks(segments: &[(&SegmentReport, i64)]) -> Option<Vec<OutTrack>> {
    let mut out: Vec<OutTrack> = Vec::new();
    for (kind, number) in [(TrackKind::Video, 1), (TrackKind::Audio, 2)] {
        let found: Vec<_> = segments
            .iter()
            .filter_map(|(r, _)| r.tracks.iter().find(|t| t.kind == kind && t.frames > 0))
            .collect();
        let Some(first) = found.first() else { continue };
        let joinable = found.iter().all(|t| {
            t.codec_id == first.codec_id
                && t.channels == first.channels
                && (t.codec != Codec::H264 || t.codec_private == first.codec_private)
        });
        if !joinable {
            return None;
        }
        out.push(OutTrack {
            number,
            kind,
            codec_id: first.codec_id.clone(),
            codec_private: first.codec_private.clone(),
            width: first.width,
            height: first.height,
            sample_rate: first.sample_rate,
            channels: first.channels,
            codec_delay_ns: first
                .pre_skip
                .filter(|_| first.codec == Codec::Opus)
                .map(|samples| u64::from(samples) * 1_000_000_000 / 48_000),
        });
    }
    Some(out)
}

fn remux_stream(
    media: &mut MediaStore,
    segments: &[(&SegmentReport, i64)],
    tracks: &[OutTrack],
    end_ms: i64,
    out_path: &Path,
    ext: &str,
) -> Result<RepairedStream> {
    let opts = InspectOptions::default();
    let audio = tracks.iter().find(|t| t.kind == TrackKind::Audio).cloned();
    let end_ns = end_ms * 1_000_000;

    // Pass 1: where the real audio goes. Scheduling happens in decoded-sample time: a
    // decoder drops the file's pre-skip P (its encoder priming, 6.5 ms) once, at the start,
    // and presents the rest at timestamp - P (CodecDelay). Sources stamp each packet with
    // the time of its content, i.e. its decoded start - P; so a packet's target is its
    // time + P. A segment's first packet also carries its own encoder's priming, and may be
    // stamped late (GStreamer stamps 0 for a packet whose content is 13.5 ms): it is put
    // where it ends, the next packet's start. Without this, every sound after a hole or a
    // segment join comes 6.5-7.5 ms early or late.
    let preroll = audio.as_ref().and_then(|a| a.codec_delay_ns).unwrap_or(0) as i64;
    let mut packets: Vec<(i64, i64)> = Vec::new();
    if audio.is_some() {
        for (seg, offset_ms) in segments {
            let offset = offset_ms * 1_000_000;
            let mut seg_packets: Vec<(i64, i64)> = Vec::new();
            scan_frames(media.open(&seg.filename)?, &seg.filename, &opts, &mut |f| {
                if f.kind == TrackKind::Audio {
                    let target = (f.pts_ns + offset).max(0) + preroll;
                    seg_packets.push((target, f.duration_ns.unwrap_or(20_000_000)));
                }
                Ok(())
            })?;
            if let [first, second, ..] = seg_packets.as_mut_slice() {
                first.0 = first.0.min(second.0 - first.1).max(0);
            }
            packets.extend(seg_packets);
        }
    }
    let plan = if audio.is_some() {
        schedule(&packets, 0, end_ns + preroll)
    } else {
        Default::default()
    };
    let silence = plan.silence;
    let mut audio_times = plan.packets.into_iter();
    let channels = audio.as_ref().and_then(|a| a.channels).unwrap_or(1);

    // Pass 2: every packet, with the silence merged in by time.
    let file = AtomicFile::create(out_path)?;
    let doc_type = if ext == "webm" { "webm" } else { "matroska" };
    let mut mux = Remuxer::new(file, doc_type, tracks)?;
    let mut next_silence = 0;
    let (mut video_packets, mut audio_packets) = (0u64, 0u64);
    let write_silence_until =
        |mux: &mut Remuxer<AtomicFile>, t: i64, next: &mut usize| -> Result<()> {
            while let Some(s) = silence.get(*next).filter(|s| s.pts_ns <= t) {
                mux.write(
                    2,
                    TrackKind::Audio,
                    s.pts_ns,
                    s.duration_ns,
                    true,
                    &opus_silence(s.duration_ns, channels),
                )?;
                *next += 1;
            }
            Ok(())
        };
    // A segment recorded as separate files (LiveSwitch's .mka and .mkv) is interleaved
    // by time: its audio file (first in `segments`) is held in memory, which is small, and
    // merged in while its video file is copied.
    let mut held: std::collections::VecDeque<(i64, i64, Vec<u8>)> = Default::default();
    for (i, (seg, offset_ms)) in segments.iter().enumerate() {
        let offset = offset_ms * 1_000_000;
        let separate = |j: usize| segments.get(j).is_some_and(|(r, _)| r.index == seg.index);
        let hold_audio = seg.media == SourceMedia::Audio && separate(i + 1);
        scan_frames(media.open(&seg.filename)?, &seg.filename, &opts, &mut |f| {
            if !tracks.iter().any(|t| t.kind == f.kind) {
                return Ok(()); // video, with --audio-only
            }
            // Audio goes where the schedule says: continuous, re-stamped if jittery.
            let recorded = (f.pts_ns + offset).max(0);
            // (Audio timestamps are in decoded-sample time: presented at t - preroll.)
            let (number, t, duration, end) = match f.kind {
                TrackKind::Video => (1, recorded, 0, end_ns),
                TrackKind::Audio => (
                    2,
                    audio_times.next().unwrap_or(recorded + preroll),
                    f.duration_ns.unwrap_or(20_000_000),
                    end_ns + preroll,
                ),
            };
            if t >= end {
                return Ok(());
            }
            match f.kind {
                TrackKind::Video => video_packets += 1,
                TrackKind::Audio => audio_packets += 1,
            }
            if hold_audio {
                held.push_back((t, duration, f.data.to_vec()));
                return Ok(());
            }
            while let Some((at, d, data)) = held.front().filter(|h| h.0 <= t) {
                write_silence_until(&mut mux, *at, &mut next_silence)?;
                mux.write(2, TrackKind::Audio, *at, *d, true, data)?;
                held.pop_front();
            }
            write_silence_until(&mut mux, t, &mut next_silence)?;
            mux.write(number, f.kind, t, duration, f.keyframe, f.data)
        })?;
        if !hold_audio {
            for (at, d, data) in held.drain(..) {
                write_silence_until(&mut mux, at, &mut next_silence)?;
                mux.write(2, TrackKind::Audio, at, d, true, &data)?;
            }
        }
    }
    write_silence_until(&mut mux, i64::MAX, &mut next_silence)?;
    let (file, duration_ms) = mux.finish(end_ms)?;
    file.commit()?;
    Ok(RepairedStream {
        stream_id: String::new(),
        label: String::new(),
        output: out_path.to_path_buf(),
        path: "remux",
        segments: segments.len(),
        start_ms: 0,
        duration_ms,
        silence_ms: silence.iter().map(|s| s.duration_ns).sum::<i64>() / 1_000_000,
        video_packets,
        audio_packets,
    })
}

#[cfg(test)]
mod tests {
    use super::joined_name;
    use std::path::Path;

    #[test]
    fn file_names_go_through_the_gate() {
        assert_eq!(joined_name("s1", "Alice"), "s1-Alice");
        assert_eq!(joined_name("s1", ""), "s1");
        let hostile = joined_name("../../x", "Alice \"Ally\" Ångström");
        assert!(
            hostile.starts_with("x-h")
                && crate::names::join_under(Path::new("/o"), &hostile).is_ok()
        );
    }
}
