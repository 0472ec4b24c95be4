//! The human-readable form of an [`ArchiveReport`] (what `mosaic inspect` prints by default).

use std::fmt::Write;

use super::{ArchiveReport, TrackKind, TrackReport};
use crate::timeline::{ArchiveMs, SourceMedia};

/// Renders the report as aligned plain text.
pub fn render(report: &ArchiveReport) -> String {
    let mut out = String::new();
    let a = &report.archive;
    let _ = writeln!(
        out,
        "{} {}{}  (created at {} ms, from {})",
        a.source.as_str(),
        a.id,
        a.name
            .as_deref()
            .map(|n| format!(" \"{n}\""))
            .unwrap_or_default(),
        a.created_at_ms,
        a.manifest
    );
    match report.span_ms {
        Some([start, stop]) => {
            let _ = writeln!(
                out,
                "span    {} .. {}  ({} streams)",
                ArchiveMs(start),
                ArchiveMs(stop),
                report.streams.len()
            );
        }
        None => {
            let _ = writeln!(out, "span    (no streams)");
        }
    }
    for s in &report.streams {
        let _ = writeln!(
            out,
            "\nstream {}  \"{}\"  {}  {} .. {}",
            s.stream_id,
            s.label,
            s.video_type.as_str(),
            ArchiveMs(s.start_ms),
            ArchiveMs(s.stop_ms)
        );
        for seg in &s.segments {
            let flags = [
                (!seg.has_duration).then_some("no Duration"),
                (!seg.has_cues).then_some("no Cues"),
                seg.truncated.as_ref().map(|_| "TRUNCATED"),
            ];
            let flags: Vec<&str> = flags.into_iter().flatten().collect();
            let _ = writeln!(
                out,
                "  #{} {}{}  {} .. {}  {} bytes, {}{}",
                seg.index,
                seg.filename,
                match seg.media {
                    SourceMedia::AudioVideo => String::new(),
                    _ => format!(" (file time 0 at {})", ArchiveMs(seg.offset_ms)),
                },
                ArchiveMs(seg.start_ms),
                ArchiveMs(seg.stop_ms),
                seg.size,
                seg.container,
                if flags.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", flags.join(", "))
                }
            );
            for t in &seg.tracks {
                let _ = writeln!(out, "    {}", track_line(t));
                for g in &t.gaps {
                    let _ = writeln!(
                        out,
                        "      gap {:>10} -> {:<10} ({} ms)",
                        ArchiveMs(g.from_ms).to_string(),
                        ArchiveMs(g.to_ms).to_string(),
                        g.to_ms - g.from_ms
                    );
                }
            }
        }
    }
    speech_table(&mut out, report);
    if !report.warnings.is_empty() {
        let _ = writeln!(out, "\nwarnings:");
        for w in &report.warnings {
            let _ = writeln!(out, "  - {w}");
        }
    }
    out
}

/// With `--speech`: each participant's talk time, share of all talk, and turns.
fn speech_table(out: &mut String, report: &ArchiveReport) {
    let talking: Vec<(&str, i64, usize)> = report
        .streams
        .iter()
        .filter_map(|s| Some((s.label.as_str(), s.talk_ms?, s.speech.as_ref()?.len())))
        .collect();
    if talking.is_empty() {
        return;
    }
    let total: i64 = talking.iter().map(|t| t.1).sum();
    let _ = writeln!(out, "\nspeech  (talk time, share of all talk, turns)");
    for (label, ms, turns) in talking {
        let share = if total > 0 {
            100.0 * ms as f64 / total as f64
        } else {
            0.0
        };
        let _ = writeln!(
            out,
            "  {label:<24} {:>10}  {share:>5.1} %  {turns} turns",
            ArchiveMs(ms).to_string()
        );
    }
}

fn track_line(t: &TrackReport) -> String {
    let time = |v: Option<i64>| v.map_or("-".to_string(), |ms| ArchiveMs(ms).to_string());
    let what = match t.kind {
        TrackKind::Video => {
            let mut s = format!(
                "video {:<5} {}x{}",
                t.codec.as_str(),
                t.width.unwrap_or(0),
                t.height.unwrap_or(0)
            );
            for r in &t.resolution_changes {
                let _ = write!(s, " -> {}x{} at {}", r.width, r.height, ArchiveMs(r.at_ms));
            }
            s
        }
        TrackKind::Audio => format!(
            "audio {:<5} {} Hz {} ch",
            t.codec.as_str(),
            t.sample_rate.unwrap_or(0.0),
            t.channels.unwrap_or(0)
        ),
    };
    format!(
        "{what}  {} .. {}  {} frames ({} key), {} gaps",
        time(t.first_ms),
        time(t.last_ms),
        t.frames,
        t.keyframes,
        t.gaps.len()
    )
}
