//! A timeline drawing of an [`ArchiveReport`] as SVG (what `mosaic inspect --svg` writes):
//! a row per stream, each segment a bar, audio and video gaps marked, a labelled time axis.

use std::fmt::Write;

use super::{ArchiveReport, TrackKind};

const LABEL_W: f64 = 180.0;
const PLOT_W: f64 = 900.0;
const ROW_H: f64 = 44.0;
const TOP: f64 = 30.0;

/// Renders the report's timeline. Segments sit on the archive timeline; a gap (measured in
/// container time) is drawn at segment start + its container time.
pub fn render(report: &ArchiveReport) -> String {
    let [start, stop] = report.span_ms.unwrap_or([0, 1000]);
    let span = (stop - start).max(1) as f64;
    let x = |ms: i64| LABEL_W + (ms - start) as f64 / span * PLOT_W;
    let height = TOP + ROW_H * report.streams.len() as f64 + 40.0;
    let width = LABEL_W + PLOT_W + 20.0;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="8" y="18" font-weight="bold">{}</text>"#,
        escape(&format!(
            "{} {}{}",
            report.archive.source.as_str(),
            report.archive.id,
            report
                .archive
                .name
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        ))
    );
    for (row, stream) in report.streams.iter().enumerate() {
        let y = TOP + ROW_H * row as f64;
        let _ = writeln!(
            s,
            r##"<text x="8" y="{:.1}">{}</text><text x="8" y="{:.1}" fill="#666" font-size="10">{} ({})</text>"##,
            y + 16.0,
            escape(&truncate(&stream.label, 24)),
            y + 30.0,
            escape(&truncate(&stream.stream_id, 20)),
            stream.video_type.as_str()
        );
        for (i, seg) in stream.segments.iter().enumerate() {
            // A segment recorded as separate audio and video files is one bar.
            let files: Vec<&str> = stream
                .segments
                .iter()
                .filter(|other| other.index == seg.index)
                .map(|other| other.filename.as_str())
                .collect();
            let first_of_segment = i == 0 || stream.segments[i - 1].index != seg.index;
            let (x0, x1) = (x(seg.start_ms), x(seg.stop_ms));
            if first_of_segment {
                let _ = writeln!(
                    s,
                    r##"<rect class="segment" x="{x0:.1}" y="{:.1}" width="{:.1}" height="24" fill="#8fb8de" stroke="#2a5d8a"><title>{}</title></rect>"##,
                    y + 6.0,
                    (x1 - x0).max(1.0),
                    escape(&format!(
                        "{} {}..{} ms",
                        files.join(" + "),
                        seg.start_ms,
                        seg.stop_ms
                    ))
                );
            }
            for track in &seg.tracks {
                let (dy, colour, what) = match track.kind {
                    TrackKind::Video => (6.0, "#d9480f", "video"),
                    TrackKind::Audio => (18.0, "#5f3dc4", "audio"),
                };
                for gap in &track.gaps {
                    let gx0 = x(seg.offset_ms + gap.from_ms);
                    let gx1 = x(seg.offset_ms + gap.to_ms);
                    let _ = writeln!(
                        s,
                        r#"<rect class="gap-{what}" x="{gx0:.1}" y="{:.1}" width="{:.1}" height="12" fill="{colour}" fill-opacity="0.75"><title>{what} gap {}..{} ms</title></rect>"#,
                        y + dy,
                        (gx1 - gx0).max(1.0),
                        gap.from_ms,
                        gap.to_ms
                    );
                }
            }
        }
        // With --speech: a green band at the foot of the row where the participant speaks.
        for turn in stream.speech.iter().flatten() {
            let (sx0, sx1) = (x(turn.from_ms), x(turn.to_ms));
            let _ = writeln!(
                s,
                r##"<rect class="speech" x="{sx0:.1}" y="{:.1}" width="{:.1}" height="5" fill="#2b8a3e"><title>speech {}..{} ms</title></rect>"##,
                y + 31.0,
                (sx1 - sx0).max(1.0),
                turn.from_ms,
                turn.to_ms
            );
        }
    }
    // Time axis with about ten labelled ticks at a round step.
    let axis_y = TOP + ROW_H * report.streams.len() as f64 + 8.0;
    let _ = writeln!(
        s,
        r##"<line x1="{LABEL_W}" y1="{axis_y}" x2="{}" y2="{axis_y}" stroke="#333"/>"##,
        LABEL_W + PLOT_W
    );
    let step = tick_step(stop - start);
    let mut t = start.div_euclid(step) * step;
    while t <= stop {
        if t >= start {
            let tx = x(t);
            let _ = writeln!(
                s,
                r##"<line x1="{tx:.1}" y1="{axis_y}" x2="{tx:.1}" y2="{:.1}" stroke="#333"/><text x="{tx:.1}" y="{:.1}" text-anchor="middle" class="tick">{}</text>"##,
                axis_y + 5.0,
                axis_y + 18.0,
                crate::timeline::ArchiveMs(t)
            );
        }
        t += step;
    }
    let _ = writeln!(
        s,
        r##"<text x="{}" y="{:.1}" fill="#d9480f" font-size="10">video gap</text><text x="{}" y="{:.1}" fill="#5f3dc4" font-size="10">audio gap</text>"##,
        LABEL_W + PLOT_W - 120.0,
        18.0,
        LABEL_W + PLOT_W - 60.0,
        18.0
    );
    s.push_str("</svg>\n");
    s
}

/// A round tick step (1, 2 or 5 times a power of ten ms) giving about ten ticks.
fn tick_step(span_ms: i64) -> i64 {
    let raw = (span_ms.max(1) as f64 / 10.0).max(1.0);
    let pow = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * pow)
        .find(|&c| c >= raw)
        .unwrap_or(10.0 * pow);
    step as i64
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

/// Text made safe inside XML and HTML (control characters dropped).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_steps_are_round() {
        assert_eq!(tick_step(60_000), 10_000);
        assert_eq!(tick_step(50_900), 10_000);
        assert_eq!(tick_step(9_000), 1_000);
        assert_eq!(tick_step(1), 1);
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<a "b" & 'c'>"#),
            "&lt;a &quot;b&quot; &amp; &apos;c&apos;&gt;"
        );
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
