//! The output's loudness, measured as it is encoded: EBU R128 integrated loudness and true
//! peak (4x oversampled) of the final mix (pure: samples in, figures out).

use serde::Serialize;

/// What the meter found.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Loudness {
    /// Integrated loudness, LUFS (`None`: all silence, under the absolute gate).
    pub integrated_lufs: Option<f64>,
    /// The highest true peak of any channel, dBTP (`None`: digital silence).
    pub true_peak_dbtp: Option<f64>,
}

/// An EBU R128 meter over interleaved F32 audio.
pub struct Meter {
    ebu: Option<ebur128::EbuR128>,
    channels: u32,
}

impl Meter {
    pub fn new(channels: u32, rate: u32) -> Meter {
        let mode = ebur128::Mode::I | ebur128::Mode::TRUE_PEAK;
        Meter {
            ebu: ebur128::EbuR128::new(channels, rate, mode).ok(),
            channels,
        }
    }

    /// Adds interleaved frames.
    pub fn add(&mut self, interleaved: &[f32]) {
        if let Some(ebu) = &mut self.ebu {
            let whole = interleaved.len() - interleaved.len() % self.channels as usize;
            let _ = ebu.add_frames_f32(&interleaved[..whole]);
        }
    }

    pub fn loudness(&self) -> Loudness {
        let Some(ebu) = &self.ebu else {
            return Loudness {
                integrated_lufs: None,
                true_peak_dbtp: None,
            };
        };
        let integrated = ebu.loudness_global().ok().filter(|l| l.is_finite());
        let peak = (0..self.channels)
            .filter_map(|c| ebu.true_peak(c).ok())
            .fold(0.0f64, f64::max);
        Loudness {
            integrated_lufs: integrated.map(round2),
            true_peak_dbtp: (peak > 0.0).then(|| round2(20.0 * peak.log10())),
        }
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(db: f64, hz: f64, seconds: f64) -> Vec<f32> {
        let amp = 10f64.powf(db / 20.0);
        let n = (48_000.0 * seconds) as usize;
        (0..n)
            .flat_map(|i| {
                let v = (amp * (std::f64::consts::TAU * hz * i as f64 / 48_000.0).sin()) as f32;
                [v, v]
            })
            .collect()
    }

    #[test]
    fn ebu_tech_3341_stereo_sine() {
        // EBU Tech 3341, case 1: a stereo 1 kHz sine at -23 dBFS reads -23 LUFS.
        let mut m = Meter::new(2, 48_000);
        m.add(&sine(-23.0, 1_000.0, 20.0));
        let l = m.loudness();
        assert!((l.integrated_lufs.unwrap() + 23.0).abs() < 0.1, "{l:?}");
        assert!((l.true_peak_dbtp.unwrap() + 23.0).abs() < 0.2, "{l:?}");
    }

    #[test]
    fn silence_has_no_loudness() {
        let mut m = Meter::new(2, 48_000);
        m.add(&vec![0.0; 96_000]);
        let l = m.loudness();
        assert_eq!((l.integrated_lufs, l.true_peak_dbtp), (None, None));
    }
}
