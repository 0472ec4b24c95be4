//! A look-ahead true-peak limiter for the audio mix (pure DSP, no I/O).
//!
//! Streams are summed without attenuation, so a lone speaker is as loud as recorded; when
//! several are loud at once the sum can pass full scale. A static curve cannot hold a
//! ceiling through a lossy encoder (clipped, squared-off waves come back from Opus or AAC
//! with overshoot), so the limiter looks ahead: the signal is delayed by
//! [`LOOKAHEAD_FRAMES`], and the gain ramps down over that time to exactly what the coming
//! peak needs, then recovers slowly. The waveform keeps its shape (no clipping), nothing
//! happens below the ceiling, and nothing pumps before a peak by more than the look-ahead.
//!
//! Peaks are measured between samples too (4x, by cubic interpolation), so the limit holds
//! for the reconstructed signal (true peak), not only for its samples.

use std::collections::VecDeque;

/// 5 ms at 48 kHz.
pub const LOOKAHEAD_FRAMES: usize = 240;

/// The ceiling for the reconstructed signal: -1.5 dBTP, which leaves room for a lossy
/// encoder's overshoot under the usual -1 dBTP delivery limit.
pub const CEILING: f32 = 0.841;

/// Release: the gain climbs back with this time constant (frames), 80 ms.
const RELEASE_FRAMES: f32 = 3_840.0;

/// The limiter's state for interleaved audio of `channels` channels.
#[derive(Debug, Clone)]
pub struct Limiter {
    channels: usize,
    ceiling: f32,
    /// Frames waiting to come out (the look-ahead), interleaved.
    delay: VecDeque<f32>,
    /// The gain each waiting frame needs on its own.
    needed: VecDeque<f32>,
    /// Sliding minimum over the look-ahead window: (frame number, needed gain).
    window_min: VecDeque<(u64, f32)>,
    /// The last window minima, averaged to ramp the gain (box filter).
    ramp: VecDeque<f32>,
    ramp_sum: f64,
    gain: f32,
    frame: u64,
    /// The last three input frames' samples per channel, for inter-sample peaks.
    history: Vec<[f32; 3]>,
}

impl Limiter {
    pub fn new(channels: usize) -> Limiter {
        Limiter::with_ceiling(channels, CEILING)
    }

    pub fn with_ceiling(channels: usize, ceiling: f32) -> Limiter {
        let channels = channels.max(1);
        let mut l = Limiter {
            channels,
            ceiling,
            delay: VecDeque::with_capacity((LOOKAHEAD_FRAMES + 1) * channels),
            needed: VecDeque::with_capacity(LOOKAHEAD_FRAMES + 1),
            window_min: VecDeque::new(),
            ramp: VecDeque::with_capacity(LOOKAHEAD_FRAMES + 1),
            ramp_sum: 0.0,
            gain: 1.0,
            frame: 0,
            history: vec![[0.0; 3]; channels],
        };
        // The look-ahead starts full of silence: the first LOOKAHEAD_FRAMES frames out are
        // silence, which the caller drops.
        for _ in 0..LOOKAHEAD_FRAMES {
            l.push_needed(1.0);
            l.delay.extend(std::iter::repeat_n(0.0, channels));
            l.ramp.push_back(1.0);
            l.ramp_sum += 1.0;
        }
        l
    }

    fn push_needed(&mut self, g: f32) {
        let n = self.frame;
        self.frame += 1;
        while self.window_min.back().is_some_and(|&(_, v)| v >= g) {
            self.window_min.pop_back();
        }
        self.window_min.push_back((n, g));
        while self
            .window_min
            .front()
            .is_some_and(|&(k, _)| k + (LOOKAHEAD_FRAMES as u64) < n)
        {
            self.window_min.pop_front();
        }
        self.needed.push_back(g);
    }

    /// The peak of one channel's newest sample and of the reconstructed signal between the
    /// previous sample and it (Catmull-Rom at 1/4, 1/2, 3/4).
    fn true_peak(h: &mut [f32; 3], x: f32) -> f32 {
        let [p0, p1, p2] = *h;
        let p3 = x;
        let mut peak = x.abs();
        for t in [0.25f32, 0.5, 0.75] {
            let t2 = t * t;
            let t3 = t2 * t;
            let v = 0.5
                * ((2.0 * p1)
                    + (-p0 + p2) * t
                    + (2.0 * p0 - 5.0 * p1 + 4.0 * p2 - p3) * t2
                    + (-p0 + 3.0 * p1 - 3.0 * p2 + p3) * t3);
            peak = peak.max(v.abs());
        }
        *h = [p1, p2, p3];
        peak
    }

    /// Limits `samples` (interleaved) in place. What comes out is the input of
    /// [`LOOKAHEAD_FRAMES`] frames earlier: the first that many frames of the first call are
    /// silence.
    pub fn process(&mut self, samples: &mut [f32]) {
        let channels = self.channels;
        for frame in samples.chunks_exact_mut(channels) {
            let mut peak = 0.0f32;
            for (c, s) in frame.iter().enumerate() {
                peak = peak.max(Self::true_peak(&mut self.history[c], *s));
            }
            let need = if peak > self.ceiling {
                self.ceiling / peak
            } else {
                1.0
            };
            self.push_needed(need);
            self.delay.extend(frame.iter().copied());

            // The gain for the frame leaving now: the smallest need in the next
            // LOOKAHEAD_FRAMES frames, averaged over the last LOOKAHEAD_FRAMES minima (a
            // ramp that reaches each peak's need by the time the peak leaves).
            let min = self.window_min.front().map_or(1.0, |&(_, v)| v);
            self.ramp.push_back(min);
            self.ramp_sum += f64::from(min);
            if let Some(old) = self.ramp.pop_front() {
                self.ramp_sum -= f64::from(old);
            }
            let target = (self.ramp_sum / LOOKAHEAD_FRAMES as f64) as f32;
            let leaving_need = self.needed.pop_front().unwrap_or(1.0);
            let target = target.min(leaving_need);
            self.gain = if target < self.gain {
                target
            } else {
                self.gain + (target - self.gain) / RELEASE_FRAMES
            };
            for out in frame.iter_mut() {
                *out = self.delay.pop_front().unwrap_or(0.0) * self.gain;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(amplitude: f32, hz: f32, frames: usize) -> Vec<f32> {
        (0..frames)
            .flat_map(|i| {
                let v = amplitude * (std::f32::consts::TAU * hz * i as f32 / 48_000.0).sin();
                [v, v]
            })
            .collect()
    }

    fn run(input: &[f32]) -> Vec<f32> {
        let mut l = Limiter::new(2);
        let mut out = input.to_vec();
        for chunk in out.chunks_mut(960) {
            l.process(chunk);
        }
        out
    }

    fn peak(s: &[f32]) -> f32 {
        s.iter().fold(0.0, |m, v| m.max(v.abs()))
    }

    #[test]
    fn output_is_the_input_delayed_when_below_the_ceiling() {
        let input = sine(0.708, 2_000.0, 4_800); // -3 dBFS
        let out = run(&input);
        let d = LOOKAHEAD_FRAMES * 2;
        assert!(out[..d].iter().all(|&v| v == 0.0));
        for (a, b) in out[d..].iter().zip(&input) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn a_loud_sum_is_held_under_the_ceiling_without_clipping() {
        // Four -3 dBFS beeps at once: 2.83 peak, after quiet.
        let mut input = sine(0.06, 440.0, 9_600);
        let loud = sine(2.83, 2_000.0, 4_800);
        input[4_800..4_800 + loud.len()].copy_from_slice(&loud);
        let out = run(&input);
        assert!(peak(&out) <= CEILING * 1.001, "peak {}", peak(&out));
        // Still a sine at the ceiling: the loud part's RMS is peak / sqrt 2, not a square.
        let d = LOOKAHEAD_FRAMES * 2;
        let mid = &out[4_800 + d + 2_000..4_800 + d + 4_000];
        let rms = (mid.iter().map(|v| v * v).sum::<f32>() / mid.len() as f32).sqrt();
        assert!(
            (rms / peak(mid) - std::f32::consts::FRAC_1_SQRT_2).abs() < 0.02,
            "{rms}"
        );
        // No pumping long before the peak: the quiet tone 20 ms before it is untouched.
        let before = &out[4_800 + d - 2 * 960 - 200..4_800 + d - 2 * 960];
        let want = &input[4_800 - 2 * 960 - 200..4_800 - 2 * 960];
        for (a, b) in before.iter().zip(want) {
            assert!((a - b).abs() < 1e-5);
        }
    }
}
