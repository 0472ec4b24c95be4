//! Who speaks when, from one participant's sound alone (pure: samples in, spans out).
//!
//! An energy detector against an adaptive noise floor, chosen over WebRTC's VAD because
//! mosaic has each participant's sound on its own (no mix to separate) and sees the whole
//! recording, so what it must tell apart is speech from that microphone's own steady
//! background (a tone, mains hum, fan noise) and from short noises (keyboard clicks):
//!
//! 1. the sound is band-limited to speech (a fourth-order high-pass at [`HIGH_PASS_HZ`]: mains
//!    hum at 50/60 Hz loses 48 dB, its low harmonics most of theirs);
//! 2. each [`FRAME_MS`] frame's energy (dB) is compared with the microphone's noise floor:
//!    the lowest frame energy within [`FLOOR_WINDOW_MS`] around it (minimum statistics: a
//!    pause between words within that window shows the floor, however loud the voice; the
//!    whole recording is known, so the window looks ahead as well as back). Digital silence
//!    (a mute, no packets) is no floor: a background that resumes after it is not speech. A
//!    steady background tone sets the floor and never counts;
//! 3. a frame is voiced when it is [`ABOVE_FLOOR_DB`] over the floor and above
//!    [`ABSOLUTE_FLOOR_DBFS`] (digital silence is not a floor to measure from). Both are
//!    relative to the microphone's own floor, so a quiet laptop microphone and a loud headset
//!    are judged alike;
//! 4. only runs of at least [`MIN_RUN_MS`] of voiced frames count: a key click or a pop is
//!    one or two frames;
//! 5. runs closer than [`Params::max_pause_ms`] are one turn (the pauses between words and
//!    sentences do not end it): the hangover. A turn ends at its last voiced frame, not
//!    after the hangover, so its end is where the voice stopped.

/// Frame length.
pub const FRAME_MS: i64 = 10;
/// High-pass corner: below the lowest voice fundamentals that matter for detection.
pub const HIGH_PASS_HZ: f32 = 200.0;
/// The noise floor is the quietest frame in a window this long centred on a frame.
pub const FLOOR_WINDOW_MS: i64 = 5_000;
/// Dips in the energy shorter than this do not count for the floor.
const DIP_MS: i64 = 50;
/// Frames below this (dB) are digital silence: no floor.
const SILENT_DB: f32 = -90.0;
/// A voiced frame is this far above the floor.
pub const ABOVE_FLOOR_DB: f32 = 9.0;
/// ... and above this level (dB relative to full scale).
pub const ABSOLUTE_FLOOR_DBFS: f32 = -50.0;
/// The shortest run of voiced frames that is speech (a click is shorter).
pub const MIN_RUN_MS: i64 = 40;

/// What may be tuned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Voiced runs closer than this are one turn (ms).
    pub max_pause_ms: i64,
    /// A turn shorter than this is dropped (ms): breaths, a cough's tail.
    pub min_turn_ms: i64,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            max_pause_ms: 1_200,
            min_turn_ms: 150,
        }
    }
}

/// A stretch of speech, in ms from the first sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Span {
    pub from_ms: i64,
    pub to_ms: i64,
}

impl Span {
    pub fn len_ms(&self) -> i64 {
        self.to_ms - self.from_ms
    }
}

/// Frame energies of mono samples at `rate` Hz, band-limited (see the module's text).
pub struct Meter {
    rate: u32,
    frame: usize,
    filter: [HighPass; 2],
    acc: f64,
    n: usize,
    energies_db: Vec<f32>,
}

impl Meter {
    pub fn new(rate: u32) -> Meter {
        let frame = (rate as i64 * FRAME_MS / 1000) as usize;
        Meter {
            rate,
            frame: frame.max(1),
            filter: [
                HighPass::new(HIGH_PASS_HZ, rate as f32),
                HighPass::new(HIGH_PASS_HZ, rate as f32),
            ],
            acc: 0.0,
            n: 0,
            energies_db: Vec::new(),
        }
    }

    /// Takes samples in (any number; frames span calls).
    pub fn push(&mut self, samples: &[f32]) {
        for &x in samples {
            let once = self.filter[0].run(x);
            let y = self.filter[1].run(once);
            self.acc += f64::from(y * y);
            self.n += 1;
            if self.n == self.frame {
                let mean = self.acc / self.frame as f64;
                self.energies_db
                    .push((10.0 * (mean + 1e-12).log10()) as f32);
                self.acc = 0.0;
                self.n = 0;
            }
        }
    }

    /// Silence for `ms` (a gap with no packets): frames of digital silence.
    pub fn push_silence_ms(&mut self, ms: i64) {
        let frames = (ms / FRAME_MS).max(0) as usize;
        self.energies_db.extend(std::iter::repeat_n(-120.0, frames));
    }

    /// The frames so far, each [`FRAME_MS`] long.
    pub fn frames(&self) -> usize {
        self.energies_db.len()
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// The speech found in everything pushed.
    pub fn speech(&self, params: &Params) -> Vec<Span> {
        speech(&self.energies_db, params)
    }
}

/// Speech in a sequence of frame energies (dB), see the module's text.
pub fn speech(energies_db: &[f32], params: &Params) -> Vec<Span> {
    // A dip shorter than [`DIP_MS`] (a decoder's last frame, one lost packet) is no floor:
    // each frame is first raised to the loudest of its neighbours (a pause between words is
    // longer and survives).
    let heard: Vec<f32> = energies_db
        .iter()
        .map(|&e| if e < SILENT_DB { f32::INFINITY } else { e })
        .collect();
    let raised: Vec<f32> = window_min(
        &heard.iter().map(|e| -e).collect::<Vec<_>>(),
        (DIP_MS / FRAME_MS) as usize,
    )
    .into_iter()
    .map(|e| -e)
    .collect();
    let floors = window_min(&raised, (FLOOR_WINDOW_MS / FRAME_MS) as usize);

    let voiced: Vec<bool> = energies_db
        .iter()
        .zip(&floors)
        .map(|(&e, &f)| e > ABSOLUTE_FLOOR_DBFS && e > f + ABOVE_FLOOR_DB)
        .collect();
    // Runs of voiced frames long enough to be speech, as frame ranges.
    let min_run = (MIN_RUN_MS / FRAME_MS) as usize;
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < voiced.len() {
        if !voiced[i] {
            i += 1;
            continue;
        }
        let start = i;
        while i < voiced.len() && voiced[i] {
            i += 1;
        }
        if i - start >= min_run {
            runs.push((start, i));
        }
    }
    // Runs closer than the longest pause are one turn.
    let max_gap = (params.max_pause_ms / FRAME_MS) as usize;
    let mut turns: Vec<(usize, usize)> = Vec::new();
    for (s, e) in runs {
        match turns.last_mut() {
            Some(last) if s - last.1 <= max_gap => last.1 = e,
            _ => turns.push((s, e)),
        }
    }
    turns
        .into_iter()
        .map(|(s, e)| Span {
            from_ms: s as i64 * FRAME_MS,
            to_ms: e as i64 * FRAME_MS,
        })
        .filter(|t| t.len_ms() >= params.min_turn_ms)
        .collect()
}

/// For each position, the minimum of `values` over a window of `width` centred on it
/// (a monotone queue: linear time).
fn window_min(values: &[f32], width: usize) -> Vec<f32> {
    let half = width / 2;
    let mut out = Vec::with_capacity(values.len());
    let mut queue: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
    let mut next = 0;
    for i in 0..values.len() {
        let hi = (i + half).min(values.len() - 1);
        while next <= hi {
            while queue.back().is_some_and(|&b| values[b] >= values[next]) {
                queue.pop_back();
            }
            queue.push_back(next);
            next += 1;
        }
        let lo = i.saturating_sub(half);
        while queue.front().is_some_and(|&f| f < lo) {
            queue.pop_front();
        }
        out.push(queue.front().map_or(values[i], |&f| values[f]));
    }
    out
}

/// A second-order Butterworth high-pass (RBJ's biquad).
struct HighPass {
    b: [f32; 3],
    a: [f32; 2],
    x: [f32; 2],
    y: [f32; 2],
}

impl HighPass {
    fn new(corner_hz: f32, rate: f32) -> HighPass {
        let w = std::f32::consts::TAU * corner_hz / rate;
        let (sin, cos) = w.sin_cos();
        let alpha = sin / (2.0 * std::f32::consts::FRAC_1_SQRT_2);
        let a0 = 1.0 + alpha;
        HighPass {
            b: [
                (1.0 + cos) / 2.0 / a0,
                -(1.0 + cos) / a0,
                (1.0 + cos) / 2.0 / a0,
            ],
            a: [-2.0 * cos / a0, (1.0 - alpha) / a0],
            x: [0.0; 2],
            y: [0.0; 2],
        }
    }

    fn run(&mut self, x: f32) -> f32 {
        let y = self.b[0] * x + self.b[1] * self.x[0] + self.b[2] * self.x[1]
            - self.a[0] * self.y[0]
            - self.a[1] * self.y[1];
        self.x = [x, self.x[0]];
        self.y = [y, self.y[0]];
        y
    }
}

/// Total speech time of `spans` (ms).
pub fn talk_ms(spans: &[Span]) -> i64 {
    spans.iter().map(Span::len_ms).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 16_000;

    /// `ms` of a sine at `hz` and `dbfs`.
    fn tone(ms: i64, hz: f32, dbfs: f32) -> Vec<f32> {
        let amp = 10f32.powf(dbfs / 20.0);
        let n = (RATE as i64 * ms / 1000) as usize;
        (0..n)
            .map(|i| amp * (std::f32::consts::TAU * hz * i as f32 / RATE as f32).sin())
            .collect()
    }

    /// Speech-like: a 150 Hz buzz with harmonics to 3 kHz, its loudness wobbling at 4 Hz
    /// like syllables, at `dbfs` RMS.
    fn voice(ms: i64, dbfs: f32) -> Vec<f32> {
        let n = (RATE as i64 * ms / 1000) as usize;
        let raw: Vec<f32> = (0..n)
            .map(|i| {
                let t = i as f32 / RATE as f32;
                let syllable = 0.75 + 0.25 * (std::f32::consts::TAU * 4.0 * t).sin();
                let buzz: f32 = (1..20)
                    .map(|k| (std::f32::consts::TAU * 150.0 * k as f32 * t).sin() / k as f32)
                    .sum();
                syllable * buzz
            })
            .collect();
        let rms = (raw.iter().map(|x| x * x).sum::<f32>() / n.max(1) as f32).sqrt();
        let gain = 10f32.powf(dbfs / 20.0) / rms.max(1e-9);
        raw.into_iter().map(|x| x * gain).collect()
    }

    fn mix(a: &mut [f32], b: &[f32], at_ms: i64) {
        let at = (RATE as i64 * at_ms / 1000) as usize;
        for (x, y) in a[at..].iter_mut().zip(b) {
            *x += y;
        }
    }

    fn detect(samples: &[f32]) -> Vec<Span> {
        let mut m = Meter::new(RATE);
        m.push(samples);
        m.speech(&Params::default())
    }

    fn near(got: i64, want: i64, what: &str) {
        assert!(
            (got - want).abs() <= 30,
            "{what}: {got} ms, wanted {want} ms"
        );
    }

    #[test]
    fn words_with_pauses_are_one_turn_from_first_to_last_word() {
        let mut s = tone(10_000, 440.0, -30.0); // a steady background tone
        for (i, at) in [2_000, 2_600, 3_200, 3_800].iter().enumerate() {
            mix(&mut s, &voice(400 + 50 * i as i64, -12.0), *at);
        }
        let spans = detect(&s);
        assert_eq!(spans.len(), 1, "{spans:?}");
        near(spans[0].from_ms, 2_000, "start");
        near(spans[0].to_ms, 3_800 + 550, "end");
    }

    #[test]
    fn a_steady_tone_or_mains_hum_alone_is_not_speech() {
        assert!(detect(&tone(10_000, 440.0, -10.0)).is_empty());
        assert!(detect(&tone(10_000, 50.0, -6.0)).is_empty());
        // Hum that starts after silence: a step, not speech, however loud.
        let mut s = vec![0.0; RATE as usize * 2];
        s.extend(tone(8_000, 50.0, -6.0));
        assert!(detect(&s).is_empty(), "{:?}", detect(&s));
    }

    #[test]
    fn speech_over_loud_hum_is_found() {
        let mut s = tone(8_000, 50.0, -6.0);
        mix(&mut s, &voice(2_000, -20.0), 3_000);
        let spans = detect(&s);
        assert_eq!(spans.len(), 1, "{spans:?}");
        near(spans[0].from_ms, 3_000, "start");
        near(spans[0].to_ms, 5_000, "end");
    }

    #[test]
    fn key_clicks_are_not_speech() {
        let mut s = tone(6_000, 440.0, -30.0);
        // Typing: a 3 ms click every 150 ms for 4 s.
        let click = tone(3, 3_000.0, -6.0);
        for k in 0..26 {
            mix(&mut s, &click, 1_000 + 150 * k);
        }
        assert!(detect(&s).is_empty(), "{:?}", detect(&s));
    }

    #[test]
    fn a_quiet_microphone_and_a_loud_one_give_the_same_turns() {
        let make = |gain_db: f32| {
            let mut s = tone(8_000, 440.0, -40.0 + gain_db);
            mix(&mut s, &voice(3_000, -26.0 + gain_db), 2_000);
            detect(&s)
        };
        let (quiet, loud) = (make(-14.0), make(10.0));
        assert_eq!(quiet.len(), 1, "{quiet:?}");
        assert_eq!(loud.len(), 1, "{loud:?}");
        near(quiet[0].from_ms, loud[0].from_ms, "start");
        near(quiet[0].to_ms, loud[0].to_ms, "end");
    }

    #[test]
    fn turns_apart_by_more_than_the_pause_are_two() {
        let mut s = tone(10_000, 440.0, -30.0);
        mix(&mut s, &voice(1_000, -12.0), 1_000);
        mix(&mut s, &voice(1_000, -12.0), 3_500);
        let spans = detect(&s);
        assert_eq!(spans.len(), 2, "{spans:?}");
        assert_eq!(talk_ms(&spans) / 100, 20);
    }

    #[test]
    fn the_window_minimum_is_the_minimum_of_each_window() {
        let v = [5.0, 3.0, 4.0, 1.0, 6.0, 7.0, 2.0];
        assert_eq!(window_min(&v, 2), [3.0, 3.0, 1.0, 1.0, 1.0, 2.0, 2.0]);
        assert_eq!(window_min(&v, 0), v);
        assert!(window_min(&[], 4).is_empty());
    }
}
