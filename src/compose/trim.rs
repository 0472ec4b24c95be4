//! Dead time cut out of the output (pure, no I/O): which stretches of the archive timeline
//! go (`--trim empty|quiet`), and the map from the archive's time to the output's across
//! those cuts, to the frame and to the sample.
//!
//! A cut is a whole number of output frames, so the picture drops exactly the frames it
//! covers and the sound exactly the samples of the same span: both move by the same time,
//! and stay in sync after it. The sound fades out over the 20 ms before a cut and in over
//! the 20 ms after it (no click where two stretches meet).

use serde::Serialize;

/// What `--trim` cuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TrimMode {
    /// Every stretch where no participant is present (everyone left, then some came back).
    Empty,
    /// Those, and every stretch where nobody speaks, keeping a second of each side.
    Quiet,
}

/// `--trim MODE --trim-min MS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrimOptions {
    pub mode: TrimMode,
    /// Only stretches longer than this are cut.
    pub min_ms: i64,
}

impl TrimOptions {
    pub const DEFAULT_MIN_MS: i64 = 10_000;
}

/// How much of a quiet stretch stays on each side where it meets speech.
pub const KEEP_MS: i64 = 1_000;

/// The sound's fade out before, and in after, each cut.
pub const FADE_MS: i64 = 20;

/// A stretch cut out of the output, on the archive timeline (`[from_ms, to_ms)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Cut {
    pub from_ms: i64,
    pub to_ms: i64,
}

/// The stretches of `[from, to)` that none of `spans` covers, in order.
fn gaps(spans: &[(i64, i64)], from: i64, to: i64) -> Vec<(i64, i64)> {
    let mut sorted: Vec<(i64, i64)> = spans
        .iter()
        .map(|&(a, b)| (a.max(from), b.min(to)))
        .filter(|(a, b)| b > a)
        .collect();
    sorted.sort_unstable();
    let mut out = Vec::new();
    let mut at = from;
    for (a, b) in sorted {
        if a > at {
            out.push((at, a));
        }
        at = at.max(b);
    }
    if to > at {
        out.push((at, to));
    }
    out
}

/// What to cut of the output window `[start_ms, stop_ms)`, in output frames from its start
/// (`[first, end)`, sorted, disjoint): the stretches longer than `opts.min_ms` where nobody
/// is `present`, and with [`TrimMode::Quiet`] where nobody speaks (`speech`), less
/// [`KEEP_MS`] on each side that meets speech. A cut's ends are the nearest frames.
///
/// Without any speech, `quiet` cuts only what `empty` would (cutting everything would leave
/// nothing to watch); a window that would be cut whole is not cut at all.
pub fn find_cuts(
    window: (i64, i64),
    fps: u32,
    present: &[(i64, i64)],
    speech: &[(i64, i64)],
    opts: TrimOptions,
) -> Vec<(u64, u64)> {
    let (start, stop) = window;
    let long = |&(a, b): &(i64, i64)| b - a > opts.min_ms;
    let mut cuts: Vec<(i64, i64)> = gaps(present, start, stop)
        .into_iter()
        .filter(long)
        .collect();
    if opts.mode == TrimMode::Quiet && speech.iter().any(|(a, b)| b > a) {
        cuts.extend(
            gaps(speech, start, stop)
                .into_iter()
                .filter(long)
                .map(|(a, b)| {
                    // A side at the window's edge meets no speech: nothing to keep there.
                    let a = if a > start { a + KEEP_MS } else { a };
                    let b = if b < stop { b - KEEP_MS } else { b };
                    (a, b)
                }),
        );
    }
    let fps = i64::from(fps.max(1));
    let total = frame_at(stop - start, fps);
    let mut frames: Vec<(u64, u64)> = cuts
        .into_iter()
        .map(|(a, b)| {
            (
                frame_at(a - start, fps).min(total),
                frame_at(b - start, fps).min(total),
            )
        })
        .filter(|(a, b)| b > a)
        .collect();
    frames.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (a, b) in frames {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    let cut: u64 = merged.iter().map(|(a, b)| b - a).sum();
    if cut >= total {
        return Vec::new();
    }
    merged
}

/// The output frame nearest `ms` from the window's start (a cut's length is then within a
/// frame of the stretch's).
fn frame_at(ms: i64, fps: i64) -> u64 {
    ((ms.max(0) * fps + 500) / 1000) as u64
}

/// Where a time of the window lands in the output, across the cuts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeMap {
    start_ms: i64,
    fps: u32,
    /// Cut output frames, `[first, end)` from the window's start, sorted and disjoint.
    cuts: Vec<(u64, u64)>,
}

impl TimeMap {
    /// No cuts: the output is the window.
    pub fn identity(start_ms: i64, fps: u32) -> TimeMap {
        TimeMap::new(start_ms, fps, Vec::new())
    }

    /// `cuts` as [`find_cuts`] gives them.
    pub fn new(start_ms: i64, fps: u32, cuts: Vec<(u64, u64)>) -> TimeMap {
        TimeMap {
            start_ms,
            fps: fps.max(1),
            cuts,
        }
    }

    pub fn is_identity(&self) -> bool {
        self.cuts.is_empty()
    }

    /// The frames cut, in all.
    pub fn cut_frames(&self) -> u64 {
        self.cuts.iter().map(|(a, b)| b - a).sum()
    }

    /// Nanoseconds from the window's start to frame `k`, as GStreamer's video aggregators
    /// stamp it.
    pub fn frame_ns(&self, k: u64) -> u64 {
        let fps = u64::from(self.fps);
        (k * 1_000_000_000 + fps / 2) / fps
    }

    /// The window's milliseconds cut, in all.
    pub fn cut_ms(&self) -> i64 {
        self.cuts
            .iter()
            .map(|&(a, b)| ns_to_ms(self.frame_ns(b)) - ns_to_ms(self.frame_ns(a)))
            .sum()
    }

    /// The cuts on the archive timeline, for the report.
    pub fn cuts(&self) -> Vec<Cut> {
        self.cuts
            .iter()
            .map(|&(a, b)| Cut {
                from_ms: self.start_ms + ns_to_ms(self.frame_ns(a)),
                to_ms: self.start_ms + ns_to_ms(self.frame_ns(b)),
            })
            .collect()
    }

    /// Output frame `k` of the window becomes this frame of the output; `None` for a cut
    /// one.
    pub fn output_frame(&self, k: u64) -> Option<u64> {
        let mut before = 0;
        for &(a, b) in &self.cuts {
            if k < a {
                break;
            }
            if k < b {
                return None;
            }
            before += b - a;
        }
        Some(k - before)
    }

    /// A time of the archive timeline on the output's (ms from its start); a time inside a
    /// cut lands where the cut is.
    pub fn output_ms(&self, archive_ms: i64) -> i64 {
        let rel_ns = (archive_ms - self.start_ms).saturating_mul(1_000_000);
        let mut cut_ns: i64 = 0;
        for &(a, b) in &self.cuts {
            let (a_ns, b_ns) = (self.frame_ns(a) as i64, self.frame_ns(b) as i64);
            if rel_ns <= a_ns {
                break;
            }
            cut_ns += rel_ns.min(b_ns) - a_ns;
        }
        ns_to_ms(((rel_ns - cut_ns).max(0)) as u64)
    }

    /// The cuts in samples at `rate` from the window's start.
    fn cut_samples(&self, rate: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.cuts.iter().map(move |&(a, b)| {
            (
                ns_to_samples(self.frame_ns(a), rate),
                ns_to_samples(self.frame_ns(b), rate),
            )
        })
    }

    /// Of the samples `[first, first + n)` (at `rate`, from the window's start), the ranges
    /// that stay, in order. They are contiguous in the output.
    pub fn kept_samples(&self, first: u64, n: u64, rate: u64) -> Vec<(u64, u64)> {
        let end = first + n;
        let mut out = Vec::new();
        let mut at = first;
        for (a, b) in self.cut_samples(rate) {
            if a >= end {
                break;
            }
            if b <= at {
                continue;
            }
            if a > at {
                out.push((at, a));
            }
            at = at.max(b);
        }
        if at < end {
            out.push((at, end));
        }
        out
    }

    /// Where sample `s` of the window (not a cut one) is in the output.
    pub fn output_sample(&self, s: u64, rate: u64) -> u64 {
        let cut: u64 = self
            .cut_samples(rate)
            .take_while(|&(a, _)| a <= s)
            .map(|(a, b)| b.min(s) - a)
            .sum();
        s - cut
    }

    /// The gain of sample `s` (at `rate`): below 1 in the [`FADE_MS`] before and after a
    /// cut, 0 at the cut.
    pub fn gain(&self, s: u64, rate: u64) -> f32 {
        let fade = (FADE_MS as u64 * rate / 1000).max(1);
        let mut gain = 1.0f32;
        for (a, b) in self.cut_samples(rate) {
            if s < a && a - s <= fade && a > 0 {
                gain = gain.min((a - s - 1) as f32 / fade as f32);
            } else if s >= b && s - b < fade {
                gain = gain.min((s - b) as f32 / fade as f32);
            }
        }
        gain
    }

    /// Whether any sample of `[first, first + n)` is faded (its gain below 1).
    pub fn fades(&self, first: u64, n: u64, rate: u64) -> bool {
        let fade = (FADE_MS as u64 * rate / 1000).max(1);
        let end = first + n;
        self.cut_samples(rate).any(|(a, b)| {
            let before = (a.saturating_sub(fade), a);
            let after = (b, b + fade);
            [before, after]
                .iter()
                .any(|&(x, y)| x < end && y > first && y > x)
        })
    }

    /// Whether any sample of `[first, first + n)` is cut, moved or faded.
    pub fn touches(&self, first: u64, n: u64, rate: u64) -> bool {
        let fade = FADE_MS as u64 * rate / 1000;
        self.cut_samples(rate).next().is_some_and(|(a, _)| {
            // Before the first cut and its fade, nothing changes.
            first + n + fade >= a
        })
    }
}

fn ns_to_ms(ns: u64) -> i64 {
    ((ns + 500_000) / 1_000_000) as i64
}

fn ns_to_samples(ns: u64, rate: u64) -> u64 {
    ((ns as u128 * rate as u128 + 500_000_000) / 1_000_000_000) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUIET: TrimOptions = TrimOptions {
        mode: TrimMode::Quiet,
        min_ms: 10_000,
    };
    const EMPTY: TrimOptions = TrimOptions {
        mode: TrimMode::Empty,
        min_ms: 10_000,
    };

    #[test]
    fn quiet_keeps_a_second_of_each_side() {
        // 25 fps: 40 ms frames. Speech to 20 s, silence to 50 s.
        let cuts = find_cuts(
            (0, 60_000),
            25,
            &[(0, 60_000)],
            &[(1_000, 20_000), (50_000, 55_000)],
            QUIET,
        );
        assert_eq!(cuts, [(21_000 / 40, 49_000 / 40)]);
        let map = TimeMap::new(0, 25, cuts);
        assert_eq!(
            map.cuts(),
            [Cut {
                from_ms: 21_000,
                to_ms: 49_000
            }]
        );
        assert_eq!(map.cut_ms(), 28_000);
        assert_eq!(map.output_ms(50_000), 22_000);
        assert_eq!(map.output_ms(30_000), 21_000, "inside the cut: where it is");
        assert_eq!(map.output_ms(10_000), 10_000);
    }

    #[test]
    fn short_silences_and_presence_stay() {
        let cuts = find_cuts(
            (0, 60_000),
            30,
            &[(0, 60_000)],
            &[(0, 20_000), (29_000, 60_000)],
            QUIET,
        );
        assert!(cuts.is_empty(), "9 s of silence is under --trim-min");
        assert!(find_cuts((0, 60_000), 30, &[(0, 60_000)], &[], EMPTY).is_empty());
    }

    #[test]
    fn empty_cuts_the_whole_absence() {
        // Everyone left at 20 s, someone came back at 45 s; nobody spoke at all.
        let present = [(0, 20_000), (5_000, 18_000), (45_000, 60_000)];
        let cuts = find_cuts((0, 60_000), 25, &present, &[], EMPTY);
        assert_eq!(cuts, [(500, 1_125)]);
        // Without any speech, quiet cuts only the absence (not the whole call).
        assert_eq!(find_cuts((0, 60_000), 25, &present, &[], QUIET), cuts);
    }

    #[test]
    fn quiet_at_the_edges_and_overlapping_cuts_merge() {
        // Silence from the start to 15 s (cut to 14 s: a second before the first word),
        // an absence inside a quiet stretch (one cut).
        let present = [(0, 30_000), (42_000, 90_000)];
        let speech = [(15_000, 25_000), (70_000, 80_000)];
        let cuts = find_cuts((0, 90_000), 25, &present, &speech, QUIET);
        assert_eq!(cuts, [(0, 14_000 / 40), (26_000 / 40, 69_000 / 40)]);
        // Silence to the end of the window is cut too: 81 s to 90 s is 9 s, under the
        // minimum, so it stays.
        let map = TimeMap::new(0, 25, cuts);
        assert_eq!(map.output_ms(15_000), 1_000);
    }

    #[test]
    fn cuts_fall_on_whole_frames() {
        // 30 fps: frames of 33.3 ms. A silence 20.010..40.020 s, kept 1 s each side.
        let cuts = find_cuts(
            (1_000, 61_000),
            30,
            &[(0, 61_000)],
            &[(1_000, 20_010), (40_020, 61_000)],
            QUIET,
        );
        // From 20.010 s (frame 600.3 → 600) to 38.020 s (frame 1140.6 → 1141) of the window.
        assert_eq!(cuts, [(600, 1_141)]);
        let map = TimeMap::new(1_000, 30, cuts);
        assert_eq!(map.output_frame(599), Some(599));
        assert_eq!(map.output_frame(600), None);
        assert_eq!(map.output_frame(1_140), None);
        assert_eq!(map.output_frame(1_141), Some(600));
        assert_eq!(map.cut_frames(), 541);
        assert_eq!(
            map.cuts(),
            [Cut {
                from_ms: 21_000,
                to_ms: 39_033
            }]
        );
        // The sound loses the same span: 541 frames of 1600 samples.
        let (a, b) = (map.frame_ns(600), map.frame_ns(1_141));
        let sa = ns_to_samples(a, 48_000);
        assert_eq!(ns_to_samples(b, 48_000) - sa, 541 * 1_600);
        assert_eq!(map.output_sample(sa + 541 * 1_600, 48_000), sa);
    }

    #[test]
    fn samples_across_a_cut_are_joined_and_faded() {
        let map = TimeMap::new(0, 25, vec![(25, 50)]); // 1 s to 2 s
        // A 10 ms buffer straddling the cut's start, one straddling its end, one inside.
        assert_eq!(
            map.kept_samples(47_760, 480, 48_000),
            [(47_760, 48_000)],
            "up to the cut"
        );
        assert_eq!(map.kept_samples(95_760, 480, 48_000), [(96_000, 96_240)]);
        assert!(map.kept_samples(50_000, 480, 48_000).is_empty());
        // A buffer that spans a whole (short) cut keeps both sides, contiguous.
        let short = TimeMap::new(0, 25, vec![(25, 26)]);
        assert_eq!(
            short.kept_samples(47_000, 4_000, 48_000),
            [(47_000, 48_000), (49_920, 51_000)]
        );
        assert_eq!(map.output_sample(96_000, 48_000), 48_000);
        // Fades: silent at the edges, whole 20 ms (960 samples) away.
        assert_eq!(map.gain(47_999, 48_000), 0.0);
        assert!((map.gain(47_520, 48_000) - 0.5).abs() < 0.01);
        assert_eq!(map.gain(47_000, 48_000), 1.0);
        assert_eq!(map.gain(96_000, 48_000), 0.0);
        assert!((map.gain(96_480, 48_000) - 0.5).abs() < 0.01);
        assert_eq!(map.gain(97_000, 48_000), 1.0);
        assert!(!map.touches(0, 480, 48_000));
        assert!(map.fades(47_000, 480, 48_000) && map.fades(96_900, 480, 48_000));
        assert!(!map.fades(46_000, 480, 48_000) && !map.fades(97_000, 480, 48_000));
        assert!(map.touches(47_000, 480, 48_000));
    }
}
