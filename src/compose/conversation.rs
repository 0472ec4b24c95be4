//! What compose takes from the conversation: everybody's speech (each audio track decoded
//! once, when something needs it), the speaker layout's shots, the chapters at each change
//! of main speaker, and the dead time `--trim` cuts. The decisions are pure (in
//! [`crate::layout::speaker`] and [`super::trim`]); this joins them to the recording.

use crate::error::Result;
use crate::inspect::ArchiveReport;
use crate::layout::Layout;
use crate::layout::speaker::Rules;
use crate::source::Recording;
use crate::speech::{Span, Speaker};

use super::ComposeOptions;
use super::chapters::Chapter;
use super::plan::{Plan, PlanOptions};
use super::trim::{self, TimeMap, TrimMode};

/// Each stream's speech turns on the archive timeline (empty where none was found).
fn turns(report: &ArchiveReport) -> Vec<Vec<Span>> {
    report
        .streams
        .iter()
        .map(|s| s.speech.clone().unwrap_or_default())
        .collect()
}

/// The plan's options, with the speaker layout's shots when it is asked for, and the
/// report with everybody's speech when the layout, the speakers, the chapters or
/// `--trim quiet` need it (each audio track decoded once).
pub(super) fn with_speakers(
    recording: &mut Recording,
    report: &ArchiveReport,
    opts: &ComposeOptions,
) -> Result<(PlanOptions, Option<ArchiveReport>)> {
    let layout = matches!(&opts.plan.layout, Layout::Speaker(shots) if shots.is_empty());
    let quiet = opts.trim.is_some_and(|t| t.mode == TrimMode::Quiet);
    if !layout && !opts.speakers && !opts.chapters && !quiet {
        return Ok((opts.plan.clone(), None));
    }
    let mut report = report.clone();
    crate::speech::add_to_report(&mut report, recording, &Default::default())?;
    if !layout {
        return Ok((opts.plan.clone(), Some(report)));
    }
    let start = opts
        .plan
        .from_ms
        .or(report.span_ms.map(|s| s[0]))
        .unwrap_or(0);
    let shots = crate::layout::speaker::plan(&turns(&report), start, &opts.speaker_rules);
    let plan = PlanOptions {
        layout: Layout::Speaker(shots),
        ..opts.plan.clone()
    };
    Ok((plan, Some(report)))
}

/// What `--trim` cuts of the plan's window (none without it), and a warning when `quiet`
/// found nobody speaking.
pub(super) fn cuts(
    recording: &Recording,
    spoken: Option<&ArchiveReport>,
    plan: &Plan,
    opts: &ComposeOptions,
) -> (TimeMap, Option<String>) {
    let Some(trim) = opts.trim else {
        return (TimeMap::identity(plan.start_ms, plan.fps), None);
    };
    let present: Vec<(i64, i64)> = recording
        .timeline
        .streams
        .iter()
        .flat_map(|s| s.presence())
        .map(|i| (i.start.0, i.stop.0))
        .collect();
    let speech: Vec<(i64, i64)> = spoken
        .map(turns)
        .unwrap_or_default()
        .iter()
        .flatten()
        .map(|t| (t.from_ms, t.to_ms))
        .filter(|(a, b)| *a < plan.stop_ms && *b > plan.start_ms)
        .collect();
    let warning = (trim.mode == TrimMode::Quiet && speech.is_empty()).then(|| {
        "--trim quiet: nobody speaks in the output, so only the stretches where nobody is \
         present were cut"
            .to_string()
    });
    let frames = trim::find_cuts(
        (plan.start_ms, plan.stop_ms),
        plan.fps,
        &present,
        &speech,
        trim,
    );
    (TimeMap::new(plan.start_ms, plan.fps, frames), warning)
}

/// Everybody's speech on the output's timeline: within the plan's window, across the cuts.
pub(super) fn speakers(report: &ArchiveReport, plan: &Plan, map: &TimeMap) -> Vec<Speaker> {
    report
        .streams
        .iter()
        .zip(turns(report))
        .map(|(s, turns)| {
            let turns: Vec<Span> = turns
                .iter()
                .filter_map(|t| {
                    let span = Span {
                        from_ms: map.output_ms(t.from_ms.max(plan.start_ms)),
                        to_ms: map.output_ms(t.to_ms.min(plan.stop_ms)),
                    };
                    (span.to_ms > span.from_ms).then_some(span)
                })
                .collect();
            Speaker {
                stream_id: s.stream_id.clone(),
                label: s.label.clone(),
                talk_ms: crate::speech::detect::talk_ms(&turns),
                turns,
            }
        })
        .collect()
}

/// A chapter at each change of main speaker (the speaker layout's shots), titled with the
/// speakers' labels, on the output's timeline (across the cuts: of shots that begin inside
/// the same cut, the last).
pub(super) fn chapters(
    report: &ArchiveReport,
    plan: &Plan,
    rules: &Rules,
    map: &TimeMap,
) -> Vec<Chapter> {
    let mut out: Vec<Chapter> = Vec::new();
    let shots = crate::layout::speaker::plan(&turns(report), plan.start_ms, rules);
    for shot in shots.into_iter().filter(|s| s.from_ms < plan.stop_ms) {
        let chapter = Chapter {
            start_ms: map.output_ms(shot.from_ms),
            title: shot
                .main
                .iter()
                .filter_map(|&i| report.streams.get(i).map(|s| s.label.as_str()))
                .collect::<Vec<_>>()
                .join(" & "),
        };
        match out.last_mut() {
            Some(last) if last.start_ms >= chapter.start_ms => *last = chapter,
            _ => out.push(chapter),
        }
    }
    out
}
