//! Pure codec-bitstream parsing used by container inspection (one file per codec).
//!
//! Container demuxers (Matroska/WebM and friends) only tell us which codec a
//! track uses; the picture size and the real duration of a packet often have
//! to be read from the codec payload itself. This module holds the small,
//! self-contained parsers for that:
//!
//! * VP8 key-frame headers (RFC 6386 section 9.1),
//! * H.264 `avcC` decoder configuration records (ISO/IEC 14496-15),
//!   length-prefixed NAL unit iteration and sequence parameter sets
//!   (ITU-T H.264 section 7.3.2.1.1),
//! * Opus packet TOC bytes (RFC 6716 section 3.1).
//!
//! Everything here works on byte slices only: there is no I/O, no allocation
//! beyond small vectors, and no panics. Inputs are treated as hostile, so every
//! parser returns `None` (or stops iterating) on malformed or truncated data.

/// Picture size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dimensions {
    pub width: u32,
    pub height: u32,
}

mod h264;
mod opus;
mod vp8;

pub use h264::{AvcConfig, avc_nal_units, h264_nal_type, h264_sps_dimensions, parse_avcc};
pub use opus::opus_packet_samples;
pub use vp8::{vp8_is_keyframe, vp8_keyframe_dimensions};

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test hex"))
            .collect()
    }

    #[allow(clippy::unnecessary_wraps)] // compared against parser results
    pub(super) fn dims(width: u32, height: u32) -> Option<Dimensions> {
        Some(Dimensions { width, height })
    }

    /// Tiny deterministic PRNG (xorshift) for the no-panic fuzz checks.
    fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[0]
            })
            .collect()
    }

    /// Feed `data`, each of its prefixes and mutations to every parser; only
    /// absence of panics is checked.
    fn exercise_all(data: &[u8]) {
        for end in 0..=data.len() {
            let d = &data[..end];
            let _ = vp8_keyframe_dimensions(d);
            let _ = vp8_is_keyframe(d);
            let _ = parse_avcc(d);
            for size in 0..=5 {
                let _ = avc_nal_units(d, size).count();
            }
            let _ = h264_sps_dimensions(d);
            let _ = h264_nal_type(d);
            let _ = opus_packet_samples(d);
        }
    }

    #[test]
    fn no_panics_on_prefixes_and_random_bytes() {
        let valid = [
            vp8::tests::VP8_640X480,
            vp8::tests::VP8_321X241,
            vp8::tests::VP8_INTER,
            h264::tests::SPS_640X480_HIGH,
            h264::tests::SPS_322X242_444,
            h264::tests::SPS_322X244_INTERLACED,
            h264::tests::SYN_444_SEPARATE_PLANES,
            h264::tests::SYN_MONOCHROME,
            h264::tests::AVCC_640X480,
            h264::tests::AVCC_322X242,
        ];
        for v in valid {
            let bytes = hex(v);
            exercise_all(&bytes);
            // Single-bit flips of every position stay panic-free too.
            for i in 0..bytes.len() * 8 {
                let mut m = bytes.clone();
                m[i / 8] ^= 0x80 >> (i % 8);
                exercise_all(&m[..]);
            }
        }
        for seed in 0..200u64 {
            let mut data = random_bytes(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15), 64);
            exercise_all(&data);
            // Random bytes behind a plausible SPS header and an avcC prefix.
            data[0] = 0x67;
            exercise_all(&data);
            data[0] = 0x01;
            exercise_all(&data);
        }
        exercise_all(&[0xff; 40]);
        exercise_all(&[0x00; 40]);
    }
}
