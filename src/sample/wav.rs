//! Recorded sound for sample streams (speech made by a text-to-speech engine, say): a
//! 16-bit PCM WAV file read and resampled to the generator's rate, mono.

use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};

/// The samples of `path` at `rate` Hz, mono (channels averaged), in [-1, 1].
pub fn read(path: &Path, rate: u32) -> Result<Arc<[f32]>> {
    let bytes =
        std::fs::read(path).map_err(|e| Error::InvalidSpec(format!("{}: {e}", path.display())))?;
    let (from_rate, samples) =
        parse(&bytes).map_err(|why| Error::InvalidSpec(format!("{}: {why}", path.display())))?;
    Ok(resample(&samples, from_rate, rate).into())
}

/// (rate, mono samples) of a 16-bit PCM WAV file's bytes.
pub fn parse(bytes: &[u8]) -> std::result::Result<(u32, Vec<f32>), String> {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err("not a WAV file".into());
    }
    let u16_at = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let mut format: Option<(u16, u32, u16)> = None;
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32_at(bytes, at + 4) as usize;
        let body = &bytes[at + 8..(at + 8).saturating_add(size).min(bytes.len())];
        match id {
            b"fmt " if body.len() >= 16 => {
                if u16_at(body, 0) != 1 || u16_at(body, 14) != 16 {
                    return Err("only 16-bit PCM is read".into());
                }
                format = Some((u16_at(body, 2).max(1), u32_at(body, 4), 16));
            }
            b"data" => {
                let (channels, rate, _) = format.ok_or("a data chunk before its fmt chunk")?;
                let channels = usize::from(channels);
                let samples = body
                    .chunks_exact(2 * channels)
                    .map(|frame| {
                        let sum: f32 = frame
                            .chunks_exact(2)
                            .map(|s| f32::from(i16::from_le_bytes([s[0], s[1]])) / 32_768.0)
                            .sum();
                        sum / channels as f32
                    })
                    .collect();
                return Ok((rate, samples));
            }
            _ => {}
        }
        at = at + 8 + size + (size & 1);
    }
    Err("no data chunk".into())
}

/// Linear resampling from `from` Hz to `to` Hz.
pub fn resample(samples: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || samples.is_empty() || from == 0 {
        return samples.to_vec();
    }
    let n = (samples.len() as u64 * u64::from(to) / u64::from(from)) as usize;
    let step = f64::from(from) / f64::from(to);
    (0..n)
        .map(|i| {
            let pos = i as f64 * step;
            let k = pos as usize;
            let frac = (pos - k as f64) as f32;
            let a = samples[k.min(samples.len() - 1)];
            let b = samples[(k + 1).min(samples.len() - 1)];
            a + (b - a) * frac
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(rate: u32, channels: u16, samples: &[i16]) -> Vec<u8> {
        let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut b = b"RIFF".to_vec();
        b.extend((36 + data.len() as u32).to_le_bytes());
        b.extend(b"WAVEfmt ");
        b.extend(16u32.to_le_bytes());
        b.extend(1u16.to_le_bytes());
        b.extend(channels.to_le_bytes());
        b.extend(rate.to_le_bytes());
        b.extend((rate * 2 * u32::from(channels)).to_le_bytes());
        b.extend((2 * channels).to_le_bytes());
        b.extend(16u16.to_le_bytes());
        b.extend(b"data");
        b.extend((data.len() as u32).to_le_bytes());
        b.extend(data);
        b
    }

    #[test]
    fn reads_mono_and_averages_stereo() {
        let (rate, s) = parse(&wav(22_050, 1, &[0, 16_384, -32_768])).unwrap();
        assert_eq!((rate, s), (22_050, vec![0.0, 0.5, -1.0]));
        let (_, s) = parse(&wav(8_000, 2, &[16_384, 0, -16_384, -16_384])).unwrap();
        assert_eq!(s, vec![0.25, -0.5]);
        assert!(parse(b"RIFF....WAVE").is_err());
        assert!(parse(b"not a wav").is_err());
    }

    #[test]
    fn resampling_keeps_the_duration() {
        let s: Vec<f32> = (0..22_050).map(|i| (i % 100) as f32 / 100.0).collect();
        assert_eq!(resample(&s, 22_050, 48_000).len(), 48_000);
        assert_eq!(resample(&[0.0, 1.0], 1, 2), vec![0.0, 0.5, 1.0, 1.0]);
    }
}
