//! VP8 key-frame headers (RFC 6386 section 9.1).

use super::Dimensions;

/// VP8 key-frame start code (RFC 6386 section 9.1), at bytes 3..6.
const VP8_START_CODE: [u8; 3] = [0x9d, 0x01, 0x2a];

/// VP8: if `frame` is a VP8 key frame (RFC 6386 section 9.1: bit 0 of byte 0 is
/// 0 for key frames, bytes 3..6 are the start code 9d 01 2a, then 16-bit
/// little-endian width and height whose low 14 bits are the size), return its
/// dimensions; otherwise None.
///
/// The upper two bits of each size field are the (ignored) upscaling mode. A
/// zero width or height is rejected as malformed.
#[must_use]
pub fn vp8_keyframe_dimensions(frame: &[u8]) -> Option<Dimensions> {
    if !vp8_is_keyframe(frame) {
        return None;
    }
    let size = |lo: usize| -> Option<u32> {
        let bytes = frame.get(lo..lo + 2)?;
        let v = u16::from_le_bytes([*bytes.first()?, *bytes.get(1)?]) & 0x3fff;
        (v != 0).then_some(u32::from(v))
    };
    Some(Dimensions {
        width: size(6)?,
        height: size(8)?,
    })
}

/// VP8: true if the frame is a key frame (bit 0 of the first byte is 0 and the
/// start code is present).
#[must_use]
pub fn vp8_is_keyframe(frame: &[u8]) -> bool {
    matches!(frame, [b0, _, _, rest @ ..] if b0 & 1 == 0 && rest.starts_with(&VP8_START_CODE))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::inspect::bitstream::tests::{dims, hex};

    // Real VP8 frames from GStreamer vp8enc (first 16 bytes).
    pub(in crate::inspect::bitstream) const VP8_640X480: &str = "90d4009d012a8002e001004708858588";
    pub(in crate::inspect::bitstream) const VP8_321X241: &str = "905f009d012a4101f100004708858588";
    pub(in crate::inspect::bitstream) const VP8_INTER: &str = "3104000110100018010aaae323fcde34";

    #[test]
    fn vp8_key_frames() {
        let f = hex(VP8_640X480);
        assert!(vp8_is_keyframe(&f));
        assert_eq!(vp8_keyframe_dimensions(&f), dims(640, 480));
        assert_eq!(vp8_keyframe_dimensions(&hex(VP8_321X241)), dims(321, 241));
        // Scaling bits (top two bits of each size field) are masked off.
        let scaled = [0x90, 0xd4, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0xc2, 0xe0, 0x41];
        assert_eq!(vp8_keyframe_dimensions(&scaled), dims(640, 480));
        let max = [0x00, 0, 0, 0x9d, 0x01, 0x2a, 0xff, 0xff, 0xff, 0x7f];
        assert_eq!(vp8_keyframe_dimensions(&max), dims(16383, 16383));
    }

    #[test]
    fn vp8_non_key_and_truncated() {
        let inter = hex(VP8_INTER);
        assert!(!vp8_is_keyframe(&inter));
        assert_eq!(vp8_keyframe_dimensions(&inter), None);
        let f = hex(VP8_321X241);
        assert_eq!(vp8_keyframe_dimensions(&f[..9]), None);
        assert!(vp8_is_keyframe(&f[..6]));
        assert!(!vp8_is_keyframe(&f[..5]));
        let mut bad_code = f.clone();
        bad_code[4] = 0x02;
        assert_eq!(vp8_keyframe_dimensions(&bad_code), None);
        let zero = [0x00, 0, 0, 0x9d, 0x01, 0x2a, 0x00, 0xc0, 0x10, 0x00];
        assert_eq!(vp8_keyframe_dimensions(&zero), None);
        assert_eq!(vp8_keyframe_dimensions(&[]), None);
    }
}
