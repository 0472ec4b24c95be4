//! Starting to read a Matroska file in the middle (pure: bytes in, bytes out).
//!
//! With `--from` late in a long recording, decoding everything before the start only to drop
//! it cost most of the run (`--from 30:00 --to 30:05` of an hour took 20 s). Captures have no
//! `Cues`, so GStreamer's demuxer cannot seek to a key frame by itself; the scan knows where
//! every cluster begins (see [`crate::inspect::clusters`]). A resumed file is its header,
//! rewritten by [`header_for_resuming`], followed by the file from the chosen cluster on.

/// EBML IDs, as stored (marker bits included).
const EBML: u32 = 0x1A45_DFA3;
const SEGMENT: u32 = 0x1853_8067;
const INFO: u32 = 0x1549_A966;
const TRACKS: u32 = 0x1654_AE6B;
const VOID: u8 = 0xEC;

/// How long sound is decoded before the start when resuming (an Opus decoder converges
/// within 80 ms of any packet).
pub const AUDIO_PREROLL_NS: i64 = 250_000_000;

/// The header of a file (its bytes before the first Cluster) made fit to be followed by a
/// later cluster: the Segment's size becomes "unknown" (the file is shorter now), and every
/// element but `Info` and `Tracks` (`SeekHead`, `Cues`, `Tags`…, whose positions would be
/// wrong) becomes a `Void` of the same length. Lengths are unchanged.
///
/// `None` when the bytes are not a header this can rewrite: then the file is read whole.
pub fn header_for_resuming(header: &[u8]) -> Option<Vec<u8>> {
    let mut out = header.to_vec();
    let (id, at) = element_id(header, 0)?;
    let (size, len) = size_at(header, at)?;
    if id != EBML {
        return None;
    }
    let mut at = at
        .checked_add(len)?
        .checked_add(usize::try_from(size?).ok()?)?;
    let (id, after_id) = element_id(header, at)?;
    let (_, len) = size_at(header, after_id)?;
    if id != SEGMENT {
        return None;
    }
    write_unknown_size(&mut out[after_id..after_id + len]);
    at = after_id + len;
    let mut tracks = false;
    while at < header.len() {
        let (id, after_id) = element_id(header, at)?;
        let (size, len) = size_at(header, after_id)?;
        let end = (after_id + len).checked_add(usize::try_from(size?).ok()?)?;
        if end > header.len() {
            return None;
        }
        match id {
            INFO => {}
            TRACKS => tracks = true,
            _ => write_void(&mut out[at..end]),
        }
        at = end;
    }
    tracks.then_some(out)
}

/// An element ID at `at` (1 to 4 bytes, marker kept): (ID, where its size begins).
fn element_id(bytes: &[u8], at: usize) -> Option<(u32, usize)> {
    let first = *bytes.get(at)?;
    let len = first.leading_zeros() as usize + 1;
    if len > 4 {
        return None;
    }
    let id = bytes
        .get(at..at + len)?
        .iter()
        .fold(0u32, |v, &b| (v << 8) | u32::from(b));
    Some((id, at + len))
}

/// An element size at `at`: (`None` for "unknown", its length in bytes).
fn size_at(bytes: &[u8], at: usize) -> Option<(Option<u64>, usize)> {
    let first = *bytes.get(at)?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 {
        return None;
    }
    let mut value = u64::from(first) & (0xFF >> len);
    for &b in bytes.get(at + 1..at + len)? {
        value = (value << 8) | u64::from(b);
    }
    let unknown = value == (1u64 << (7 * len)) - 1;
    Some(((!unknown).then_some(value), len))
}

/// Overwrites a size field with "unknown" of the same length.
fn write_unknown_size(field: &mut [u8]) {
    let len = field.len();
    field.fill(0xFF);
    field[0] = 0xFF >> (len - 1);
}

/// Overwrites a whole element (at least 2 bytes) with a `Void` element of the same length.
fn write_void(element: &mut [u8]) {
    let total = element.len();
    element.fill(0);
    element[0] = VOID;
    if total - 2 < 127 {
        element[1] = 0x80 | (total - 2) as u8;
    } else {
        // An 8-byte size: 0x01 and 7 bytes of value.
        let size = (total - 9) as u64;
        element[1] = 0x01;
        element[2..9].copy_from_slice(&size.to_be_bytes()[1..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An element: ID bytes, a 1-byte or 8-byte size, payload.
    fn el(id: &[u8], payload: &[u8], long_size: bool) -> Vec<u8> {
        let mut v = id.to_vec();
        if long_size {
            v.push(0x01);
            v.extend_from_slice(&(payload.len() as u64).to_be_bytes()[1..]);
        } else {
            v.push(0x80 | payload.len() as u8);
        }
        v.extend_from_slice(payload);
        v
    }

    fn header(segment_size: &[u8], children: &[Vec<u8>]) -> Vec<u8> {
        let mut v = el(&[0x1A, 0x45, 0xDF, 0xA3], b"\x42\x82\x84webm", false);
        v.extend_from_slice(&[0x18, 0x53, 0x80, 0x67]);
        v.extend_from_slice(segment_size);
        for c in children {
            v.extend_from_slice(c);
        }
        v
    }

    #[test]
    fn seek_head_and_cues_become_void_and_the_segment_size_unknown() {
        let seek_head = el(&[0x11, 0x4D, 0x9B, 0x74], &[7; 20], false);
        let info = el(&[0x15, 0x49, 0xA9, 0x66], &[1, 2, 3], false);
        let tracks = el(&[0x16, 0x54, 0xAE, 0x6B], &[4; 10], false);
        let cues = el(&[0x1C, 0x53, 0xBB, 0x6B], &[9; 300], true);
        let size = [0x01, 0, 0, 0, 0, 0, 0x12, 0x34];
        let input = header(
            &size,
            &[seek_head.clone(), info.clone(), tracks.clone(), cues],
        );
        let out = header_for_resuming(&input).unwrap();
        assert_eq!(out.len(), input.len());
        let seg = 12 + 4; // after the EBML header and the Segment ID
        assert_eq!(
            out[seg..seg + 8],
            [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
        );
        let mut at = seg + 8;
        // The SeekHead (25 bytes): a Void with a 1-byte size of 23.
        assert_eq!(out[at..at + 2], [0xEC, 0x80 | 23]);
        assert!(out[at + 2..at + 25].iter().all(|&b| b == 0));
        at += seek_head.len();
        assert_eq!(out[at..at + info.len()], info[..]);
        at += info.len();
        assert_eq!(out[at..at + tracks.len()], tracks[..]);
        at += tracks.len();
        // Cues of 312 bytes: a Void with an 8-byte size of 303.
        assert_eq!(out[at..at + 9], [0xEC, 0x01, 0, 0, 0, 0, 0, 0x01, 0x2F]);
        assert_eq!(out.len() - at, 312);
        // Read again, the rewritten header is one of Info, Tracks and Voids.
        assert_eq!(header_for_resuming(&out).unwrap(), out);
    }

    #[test]
    fn an_unknown_segment_size_stays_unknown() {
        let tracks = el(&[0x16, 0x54, 0xAE, 0x6B], &[4; 10], false);
        for size in [
            vec![0xFF],
            vec![0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
        ] {
            let input = header(&size, std::slice::from_ref(&tracks));
            assert_eq!(header_for_resuming(&input).unwrap(), input);
        }
        // A 4-byte known size becomes a 4-byte unknown one.
        let input = header(&[0x10, 0, 0x40, 0], &[tracks]);
        let out = header_for_resuming(&input).unwrap();
        assert_eq!(out[16..20], [0x1F, 0xFF, 0xFF, 0xFF]);
    }

    #[test]
    fn anything_else_is_left_alone() {
        let tracks = el(&[0x16, 0x54, 0xAE, 0x6B], &[4; 10], false);
        let good = header(&[0xFF], std::slice::from_ref(&tracks));
        assert!(header_for_resuming(&good).is_some());
        // No Tracks; a child running past the header; cut short; not EBML; empty.
        assert_eq!(header_for_resuming(&header(&[0xFF], &[])), None);
        let mut long = good.clone();
        long.truncate(good.len() - 1);
        assert_eq!(header_for_resuming(&long), None);
        let mut unknown_child = header(&[0xFF], &[]);
        unknown_child.extend_from_slice(&[0x16, 0x54, 0xAE, 0x6B, 0xFF, 0, 0]);
        assert_eq!(header_for_resuming(&unknown_child), None);
        assert_eq!(header_for_resuming(&good[4..]), None);
        assert_eq!(header_for_resuming(&[]), None);
        assert_eq!(header_for_resuming(&[0x00; 16]), None);
        for n in 0..good.len() {
            let _ = header_for_resuming(&good[..n]);
        }
    }
}
