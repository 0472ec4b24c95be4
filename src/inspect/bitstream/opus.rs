//! Opus packet TOC bytes (RFC 6716 section 3.1).

/// Maximum duration of one Opus packet: 120 ms at 48 kHz.
const OPUS_MAX_PACKET_SAMPLES: u32 = 5760;

/// Opus (RFC 6716 section 3.1): duration of one Opus packet in units of 48 kHz
/// samples, from its TOC byte and frame-count code (code 0: 1 frame, 1 and 2:
/// 2 frames, 3: count from the second byte's low 6 bits). Frame size per
/// config: configs 0-11 SILK 10/20/40/60 ms, 12-15 hybrid 10/20 ms, 16-31 CELT
/// 2.5/5/10/20 ms. Return None for empty/truncated packets or a total over
/// 120 ms.
///
/// Code 2 packets need a frame-length byte and code 3 packets a non-zero frame
/// count; frame payloads are otherwise not validated.
#[must_use]
pub fn opus_packet_samples(packet: &[u8]) -> Option<u32> {
    let (&toc, rest) = packet.split_first()?;
    let config = toc >> 3;
    let frame_samples: u32 = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        12..=15 => [480, 960][usize::from(config % 2)],
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    };
    let frames = match toc & 3 {
        0 => 1,
        1 => 2,
        2 => {
            rest.first()?;
            2
        }
        _ => u32::from(rest.first()? & 0x3f),
    };
    let total = frame_samples * frames;
    (frames > 0 && total <= OPUS_MAX_PACKET_SAMPLES).then_some(total)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::inspect::bitstream::tests::hex;

    #[test]
    fn opus_durations() {
        // Real opusenc packets: CELT FB 20 ms (0xf8) and SILK NB 60 ms (0x18).
        assert_eq!(opus_packet_samples(&hex("f8b50e7d91cc0582")), Some(960));
        assert_eq!(opus_packet_samples(&hex("188a9738d84e09ff")), Some(2880));
        // 0xfc: CELT FB 20 ms, code 0.
        assert_eq!(opus_packet_samples(&[0xfc, 0xff, 0xfe]), Some(960));
        // Code 1: two equal 20 ms frames.
        assert_eq!(opus_packet_samples(&[0xf9, 1, 2]), Some(1920));
        // Code 2: two frames, needs a length byte.
        assert_eq!(opus_packet_samples(&[0xfa, 1, 2]), Some(1920));
        assert_eq!(opus_packet_samples(&[0xfa]), None);
        // Code 3: 2.5 ms CELT x 48 frames = 120 ms (the maximum).
        assert_eq!(opus_packet_samples(&[0x83, 48]), Some(5760));
        // Code 3: 10 ms SILK x 3, padding/VBR bits ignored.
        assert_eq!(opus_packet_samples(&[0x03, 0xc3, 0x01]), Some(1440));
        // Hybrid SWB 10 ms / FB 20 ms.
        assert_eq!(opus_packet_samples(&[0x60]), Some(480));
        assert_eq!(opus_packet_samples(&[0x79, 0, 0]), Some(1920));
        // Invalid: > 120 ms, zero frames, truncated, empty.
        assert_eq!(opus_packet_samples(&[0x1b, 3]), None); // 3 x 60 ms
        assert_eq!(opus_packet_samples(&[0xfb, 7]), None); // 7 x 20 ms
        assert_eq!(opus_packet_samples(&[0xfb, 0]), None);
        assert_eq!(opus_packet_samples(&[0xfb]), None);
        assert_eq!(opus_packet_samples(&[]), None);
    }
}
