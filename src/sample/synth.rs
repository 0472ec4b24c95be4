//! Raw picture and sound of sample streams (pure, deterministic).
//!
//! A picture is the stream's colour with a dark vertical bar that moves one step a frame
//! (so consecutive frames differ, as a camera's do); a sync mark's frame is white. The sound
//! is a quiet tone (-24 dBFS) with loud 2 kHz beeps (-3 dBFS, [`BEEP_MS`] long) at the marks.

use super::spec::{BEEP_MS, FramePlan, SAMPLE_RATE, SegmentPlan};

/// Amplitude of the background tone (-24 dBFS).
pub const TONE_AMPLITUDE: f64 = 0.063;
/// Amplitude of a beep (-3 dBFS).
pub const BEEP_AMPLITUDE: f64 = 0.708;
pub const BEEP_HZ: f64 = 2_000.0;

/// BT.601 limited-range Y, U, V of an RGB colour.
pub fn rgb_to_yuv([r, g, b]: [u8; 3]) -> [u8; 3] {
    let (r, g, b) = (f64::from(r), f64::from(g), f64::from(b));
    let y = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0;
    let u = 128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0;
    let v = 128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0;
    [y.round() as u8, u.round() as u8, v.round() as u8]
}

/// Bits of a frame's burned-in number: 2 rows of 8 blocks, each an eighth of the picture
/// wide and high, from the middle down; most significant bit first, white for 1, black for
/// 0.
pub const FRAME_CODE_BITS: u32 = 16;

/// Where bit `bit` of the frame code is: its block's centre, as fractions of the picture.
pub fn frame_code_spot(bit: u32) -> (f64, f64) {
    let (col, row) = (bit % 8, bit / 8);
    (
        (f64::from(col) + 0.5) / 8.0,
        0.5 + (f64::from(row) + 0.5) / 8.0,
    )
}

/// One I420 picture for `frame`.
pub fn picture(frame: &FramePlan, color: [u8; 3]) -> Vec<u8> {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let [y, u, v] = if frame.flash {
        [235, 128, 128]
    } else {
        rgb_to_yuv(color)
    };
    let mut buf = vec![0u8; w * h + 2 * cw * ch];
    let (luma, chroma) = buf.split_at_mut(w * h);
    luma.fill(y);
    let (cb, cr) = chroma.split_at_mut(cw * ch);
    cb.fill(u);
    cr.fill(v);
    if !frame.flash {
        // A dark bar, w/16 wide, moving 4 px a frame, in the top eighth of the picture (so
        // that tests can read the stream's colour anywhere below it).
        let bar_w = (w / 16).max(2);
        let x0 = (frame.index as usize * 4) % w;
        for row in luma.chunks_exact_mut(w).take((h / 8).max(1)) {
            for px in row.iter_mut().skip(x0).take(bar_w) {
                *px = 40;
            }
        }
    }
    if let (Some(code), false) = (frame.code, frame.flash) {
        burn_code(&mut buf, w, h, code);
    }
    buf
}

/// Draws `code` as [`FRAME_CODE_BITS`] blocks (see [`frame_code_spot`]).
fn burn_code(buf: &mut [u8], w: usize, h: usize, code: u32) {
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let (bw, bh) = (w / 8, h / 8);
    for bit in 0..FRAME_CODE_BITS {
        let on = code >> (FRAME_CODE_BITS - 1 - bit) & 1 == 1;
        let (col, row) = ((bit % 8) as usize, (bit / 8) as usize);
        let (x0, y0) = (col * bw, h / 2 + row * bh);
        for y in y0..(y0 + bh).min(h) {
            buf[y * w + x0..y * w + x0 + bw].fill(if on { 235 } else { 16 });
        }
        for y in y0 / 2..((y0 + bh) / 2).min(ch) {
            for plane in 0..2 {
                let row = w * h + plane * cw * ch + y * cw;
                buf[row + x0 / 2..row + (x0 + bw) / 2].fill(128);
            }
        }
    }
}

/// `count` samples of S16 mono audio starting at segment sample `first`.
pub fn audio(plan: &SegmentPlan, first: u64, count: usize) -> Vec<i16> {
    let rate = f64::from(SAMPLE_RATE);
    let beep_len = (BEEP_MS as u64) * u64::from(SAMPLE_RATE) / 1000;
    (0..count as u64)
        .map(|i| {
            let n = first + i;
            let t = n as f64 / rate;
            let beeping = plan.beep_starts.iter().any(|&b| n >= b && n < b + beep_len);
            let mut s = if beeping {
                BEEP_AMPLITUDE * (std::f64::consts::TAU * BEEP_HZ * t).sin()
            } else {
                TONE_AMPLITUDE * (std::f64::consts::TAU * plan.tone_hz * t).sin()
            };
            for (start, clip) in &plan.speech {
                if let Some(x) = usize::try_from(n as i64 - start)
                    .ok()
                    .and_then(|k| clip.get(k))
                {
                    s += f64::from(*x);
                }
            }
            (s.clamp(-1.0, 1.0) * f64::from(i16::MAX)).round() as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_code_reads_back() {
        let (w, h) = (160usize, 120usize);
        let f = FramePlan {
            pts_ns: 0,
            duration_ns: 1,
            width: w as u32,
            height: h as u32,
            flash: false,
            index: 0,
            code: Some(0xA5C3),
        };
        let p = picture(&f, [200, 40, 40]);
        let read: u32 = (0..FRAME_CODE_BITS).fold(0, |acc, bit| {
            let (fx, fy) = frame_code_spot(bit);
            let (x, y) = ((fx * w as f64) as usize, (fy * h as f64) as usize);
            acc << 1 | u32::from(p[y * w + x] > 128)
        });
        assert_eq!(read, 0xA5C3);
    }

    #[test]
    fn colours() {
        assert_eq!(rgb_to_yuv([0, 0, 0]), [16, 128, 128]);
        assert_eq!(rgb_to_yuv([255, 255, 255]), [235, 128, 128]);
        let [y, u, v] = rgb_to_yuv([255, 0, 0]);
        assert!(y < 90 && u < 128 && v > 200);
    }

    #[test]
    fn flash_frames_are_white_and_others_have_a_bar() {
        let mut f = FramePlan {
            pts_ns: 0,
            duration_ns: 1,
            width: 64,
            height: 32,
            flash: true,
            code: None,
            index: 0,
        };
        let p = picture(&f, [0, 0, 255]);
        assert_eq!(p.len(), 64 * 32 * 3 / 2);
        assert!(p[..64 * 32].iter().all(|&y| y == 235));
        f.flash = false;
        let p = picture(&f, [0, 0, 255]);
        assert_eq!(p[0], 40);
        assert_eq!(p[10], rgb_to_yuv([0, 0, 255])[0]);
    }

    #[test]
    fn beeps_are_loud_and_the_tone_quiet() {
        let plan = SegmentPlan {
            start_ms: 0,
            duration_ms: 1000,
            color: [0; 3],
            tone_hz: 440.0,
            frames: vec![],
            beep_starts: vec![4800],
            audio_mutes_ns: vec![],
            audio: true,
            speech: vec![],
        };
        let peak = |s: &[i16]| s.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0);
        let a = audio(&plan, 0, 4800);
        assert!(peak(&a) < 2100);
        let b = audio(&plan, 4800, 4800);
        assert!(peak(&b) > 22_000);
    }
}
