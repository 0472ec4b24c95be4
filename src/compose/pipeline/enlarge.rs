//! Bilinear enlargement of one 8-bit picture plane, for the canvas's tiles.
//!
//! libyuv shrinks fast (its 3/4 and 1/2 paths take 0.02 ms for a 640x480 frame) but enlarges
//! slowly: 640x480 into a 720x540 tile (a 1920x1080 grid of four) takes 0.54 ms a frame, as
//! long as swscale, because its column filter steps one pixel at a time. Here every output
//! column's two source pixels and weights are worked out once per size, so that each group of
//! eight output pixels is one SSSE3 byte shuffle and one multiply-add. The plain-Rust path
//! gives the same bytes where SSSE3 is missing.
//!
//! Pixel centres are aligned (an output pixel at `o` samples the input at
//! `(o + 0.5) * in / out - 0.5`, clamped to the picture), as libyuv and swscale do.

/// Fraction bits of a row weight (the vertical pass works on `u16`s).
const ROW_BITS: u32 = 8;
/// Fraction bits of a column weight: a pair of weights must fit SSSE3's signed bytes.
const COL_BITS: u32 = 6;

/// Eight output pixels at once: their two source pixels, as offsets from `base`, and weights.
#[derive(Debug, Clone)]
struct Block {
    /// First output column of the block (the last block may overlap the one before it).
    start: usize,
    /// Source column the offsets count from.
    base: usize,
    /// Left and right source offsets of each output pixel, interleaved.
    shuffle: [u8; 16],
    /// Left and right weights of each output pixel, interleaved (they sum to `1 << COL_BITS`).
    weights: [i8; 16],
}

/// Where each output pixel of one plane size samples the input; owns the row it filters into,
/// so scaling a frame allocates nothing.
#[derive(Debug, Clone)]
pub(super) struct Enlarger {
    src: (usize, usize),
    dst: (usize, usize),
    /// Per output row: the upper source row and the lower one's weight.
    rows: Vec<(usize, u16)>,
    /// Per output column: the left source column and the right one's weight.
    cols: Vec<(usize, u8)>,
    blocks: Vec<Block>,
    /// One vertically filtered source row, with room for a 16-byte load past its end.
    line: Vec<u8>,
    simd: bool,
}

/// The input position an output pixel samples, in fixed point with `bits` fraction bits:
/// (source index, fraction), clamped to the picture.
fn sample(out: usize, src: usize, dst: usize, bits: u32) -> (usize, u32) {
    let one = 1i64 << bits;
    let (o, s, d) = (out as i64, src as i64, dst.max(1) as i64);
    let pos = ((2 * o + 1) * s * one - d * one).div_euclid(2 * d).max(0);
    let last = (s - 1).max(0);
    let index = pos >> bits;
    if index >= last {
        (last as usize, 0)
    } else {
        (index as usize, (pos & (one - 1)) as u32)
    }
}

impl Enlarger {
    /// Tables for enlarging `src` (width, height) to `dst`. Both must be at least 1x1.
    pub(super) fn new(src: (usize, usize), dst: (usize, usize)) -> Enlarger {
        let rows = (0..dst.1)
            .map(|o| {
                let (i, f) = sample(o, src.1, dst.1, ROW_BITS);
                (i, f as u16)
            })
            .collect();
        let cols: Vec<(usize, u8)> = (0..dst.0)
            .map(|o| {
                let (i, f) = sample(o, src.0, dst.0, COL_BITS);
                (i, f as u8)
            })
            .collect();
        let blocks = blocks(&cols, src.0, dst.0);
        Enlarger {
            src,
            dst,
            rows,
            cols,
            simd: blocks.is_some() && ssse3(),
            blocks: blocks.unwrap_or_default(),
            line: vec![0; src.0 + 16],
        }
    }

    /// Scales `src` (rows `src_stride` bytes apart) into `dst` (rows `dst_stride` apart,
    /// starting where the picture goes). Returns `false`, writing nothing more, if a plane
    /// is too small for the sizes this enlarger was made for.
    pub(super) fn scale(
        &mut self,
        src: &[u8],
        src_stride: usize,
        dst: &mut [u8],
        dst_stride: usize,
    ) -> bool {
        let ((sw, _), (dw, _)) = (self.src, self.dst);
        // The source rows `line` holds (the edges repeat a row).
        let mut filtered = None;
        for (o, &(i, f)) in self.rows.iter().enumerate() {
            let Some(out) = dst.get_mut(o * dst_stride..o * dst_stride + dw) else {
                return false;
            };
            if filtered != Some((i, f)) {
                let upper = src.get(i * src_stride..i * src_stride + sw);
                let lower = if f == 0 {
                    upper
                } else {
                    src.get((i + 1) * src_stride..(i + 1) * src_stride + sw)
                };
                let (Some(upper), Some(lower)) = (upper, lower) else {
                    return false;
                };
                blend_rows(&mut self.line[..sw], upper, lower, f);
            }
            filtered = Some((i, f));
            if self.simd {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `simd` is only set where the CPU has SSSE3, and `blocks` checked
                // that every load stays inside `line` and every store inside a row of `dw`.
                unsafe {
                    columns_ssse3(&self.blocks, &self.line, out)
                };
            } else {
                columns(&self.cols, &self.line[..sw], out);
            }
        }
        true
    }
}

/// The shuffle tables of `cols`, or `None` where a group of eight output pixels reaches
/// further than one 16-byte load (a strong reduction; the plain path handles any size).
fn blocks(cols: &[(usize, u8)], src_w: usize, dst_w: usize) -> Option<Vec<Block>> {
    if dst_w < 8 {
        return None;
    }
    let mut starts: Vec<usize> = (0..dst_w - 7).step_by(8).collect();
    if !dst_w.is_multiple_of(8) {
        starts.push(dst_w - 8);
    }
    starts
        .into_iter()
        .map(|start| {
            let base = cols[start].0;
            let mut block = Block {
                start,
                base,
                shuffle: [0; 16],
                weights: [0; 16],
            };
            for k in 0..8 {
                let (left, f) = cols[start + k];
                let right = (left + 1).min(src_w - 1);
                let (l, r) = (left.checked_sub(base)?, right.checked_sub(base)?);
                if r >= 16 {
                    return None;
                }
                block.shuffle[2 * k] = l as u8;
                block.shuffle[2 * k + 1] = r as u8;
                block.weights[2 * k] = ((1 << COL_BITS) - i32::from(f)) as i8;
                block.weights[2 * k + 1] = f as i8;
            }
            Some(block)
        })
        .collect()
}

fn ssse3() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("ssse3")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `out = upper + (lower - upper) * f / 256`, rounded (the compiler vectorises this loop).
fn blend_rows(out: &mut [u8], upper: &[u8], lower: &[u8], f: u16) {
    if f == 0 {
        out.copy_from_slice(upper);
        return;
    }
    let keep = (1 << ROW_BITS) - f;
    for ((o, &a), &b) in out.iter_mut().zip(upper).zip(lower) {
        *o = ((u16::from(a) * keep + u16::from(b) * f + (1 << (ROW_BITS - 1))) >> ROW_BITS) as u8;
    }
}

/// The horizontal pass, one pixel at a time (`line` is one source row, `cols` index into it).
fn columns(cols: &[(usize, u8)], line: &[u8], out: &mut [u8]) {
    let last = line.len().saturating_sub(1);
    for (o, &(i, f)) in out.iter_mut().zip(cols) {
        let (a, b) = (line[i.min(last)], line[(i + 1).min(last)]);
        let f = u16::from(f);
        *o = ((u16::from(a) * ((1 << COL_BITS) - f) + u16::from(b) * f + (1 << (COL_BITS - 1)))
            >> COL_BITS) as u8;
    }
}

/// The horizontal pass, eight pixels per shuffle and multiply-add.
///
/// # Safety
/// The CPU must have SSSE3; every block's `base + 16` must lie within `line` and its
/// `start + 8` within `out`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "ssse3")]
unsafe fn columns_ssse3(blocks: &[Block], line: &[u8], out: &mut [u8]) {
    use std::arch::x86_64::*;
    let round = _mm_set1_epi16(1 << (COL_BITS - 1));
    for block in blocks {
        debug_assert!(block.base + 16 <= line.len() && block.start + 8 <= out.len());
        // SAFETY: the bounds above (the caller's contract); unaligned loads and stores.
        unsafe {
            let pixels = _mm_loadu_si128(line.as_ptr().add(block.base).cast());
            let mask = _mm_loadu_si128(block.shuffle.as_ptr().cast());
            let weights = _mm_loadu_si128(block.weights.as_ptr().cast());
            let pairs = _mm_shuffle_epi8(pixels, mask);
            let sums = _mm_maddubs_epi16(pairs, weights);
            let values = _mm_srli_epi16(_mm_add_epi16(sums, round), COL_BITS as i32);
            let bytes = _mm_packus_epi16(values, values);
            _mm_storel_epi64(out.as_mut_ptr().add(block.start).cast(), bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture(w: usize, h: usize, seed: u32) -> Vec<u8> {
        let mut state = seed;
        (0..w * h)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 24) as u8
            })
            .collect()
    }

    fn enlarge(src: &[u8], s: (usize, usize), d: (usize, usize), simd: bool) -> Vec<u8> {
        let mut e = Enlarger::new(s, d);
        e.simd &= simd;
        let mut out = vec![0; d.0 * d.1];
        assert!(e.scale(src, s.0, &mut out, d.0));
        out
    }

    #[test]
    fn positions_are_centre_aligned_and_clamped() {
        // Doubling: output 0 and 1 sample -0.25 (clamped to 0) and 0.25.
        assert_eq!(sample(0, 4, 8, 8), (0, 0));
        assert_eq!(sample(1, 4, 8, 8), (0, 64));
        assert_eq!(sample(2, 4, 8, 8), (0, 192));
        assert_eq!(sample(7, 4, 8, 8), (3, 0));
        // The same size samples every pixel exactly.
        assert!((0..9).all(|o| sample(o, 9, 9, 6) == (o, 0)));
    }

    #[test]
    fn the_simd_path_gives_the_plain_paths_bytes() {
        if !ssse3() {
            eprintln!("no SSSE3 here: only the plain path runs");
            return;
        }
        for (s, d) in [
            ((640, 480), (720, 540)),
            ((320, 240), (360, 270)),
            ((640, 360), (1280, 720)),
            ((176, 144), (203, 166)),
            ((9, 9), (17, 13)),
        ] {
            let src = picture(s.0, s.1, 7);
            assert_eq!(
                enlarge(&src, s, d, true),
                enlarge(&src, s, d, false),
                "{s:?} -> {d:?}"
            );
        }
    }

    #[test]
    fn flat_colours_stay_exact_and_edges_stay_sharp_at_the_border() {
        let (s, d) = ((64, 48), (72, 54));
        let flat = vec![200u8; s.0 * s.1];
        assert!(enlarge(&flat, s, d, true).iter().all(|&v| v == 200));
        // Left half 16, right half 235: the ends keep the end values, the middle ramps.
        let src: Vec<u8> = (0..s.0 * s.1)
            .map(|i| if i % s.0 < s.0 / 2 { 16 } else { 235 })
            .collect();
        let out = enlarge(&src, s, d, true);
        for row in out.chunks(d.0) {
            assert_eq!((row[0], row[d.0 - 1]), (16, 235));
            assert!(row.windows(2).all(|w| w[0] <= w[1]), "monotonic: {row:?}");
            let between = row.iter().filter(|&&v| v != 16 && v != 235).count();
            assert!(
                (1..=2).contains(&between),
                "one edge, at most two pixels wide: {row:?}"
            );
        }
    }

    #[test]
    fn a_bilinear_ramp_is_reproduced() {
        // A horizontal ramp enlarged 2x stays a ramp, within rounding.
        let (s, d) = ((32, 4), (64, 8));
        let src: Vec<u8> = (0..s.0 * s.1).map(|i| (i % s.0 * 8) as u8).collect();
        let out = enlarge(&src, s, d, true);
        for (o, &v) in out[..d.0].iter().enumerate() {
            let x = ((o as f64 + 0.5) * 0.5 - 0.5).clamp(0.0, 31.0);
            assert!(
                (f64::from(v) - x * 8.0).abs() <= 1.0,
                "column {o}: {v} vs {}",
                x * 8.0
            );
        }
    }

    #[test]
    fn planes_too_small_are_refused() {
        let mut e = Enlarger::new((16, 16), (24, 24));
        let mut out = vec![0; 24 * 24];
        assert!(!e.scale(&[0; 16 * 15], 16, &mut out, 24));
        assert!(!e.scale(&[0; 16 * 16], 16, &mut out[..24 * 23], 24));
    }

    #[test]
    fn narrow_outputs_and_strong_reductions_take_the_plain_path() {
        assert!(!Enlarger::new((4, 4), (6, 6)).simd);
        assert!(!Enlarger::new((640, 480), (64, 48)).simd);
        let src = picture(40, 4, 3);
        let out = enlarge(&src, (40, 4), (6, 2), true);
        assert_eq!(out.len(), 12);
    }
}
