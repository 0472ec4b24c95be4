//! Matroska `SimpleBlock` and `Block` payloads: track, relative timestamp, flags and the
//! frames inside (Xiph, EBML and fixed-size lacing), every length checked (pure).
//!
//! A hostile or damaged file may hold any bytes here; parsing never indexes out of bounds
//! and never allocates more than the block's own size.

/// A parsed block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockData<'a> {
    pub track: u64,
    /// Relative to the cluster's timestamp, in TimestampScale units.
    pub timestamp: i16,
    /// The key frame flag (SimpleBlock only; a Block's comes from its BlockGroup).
    pub keyframe: bool,
    pub frames: Vec<&'a [u8]>,
}

/// Why a block could not be read.
pub type BlockError = &'static str;

/// An EBML variable-size integer at the start of `data`: (value, length).
fn vint(data: &[u8]) -> Result<(u64, usize), BlockError> {
    let first = *data.first().ok_or("block ends inside a number")?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 {
        return Err("invalid number in block");
    }
    let bytes = data.get(..len).ok_or("block ends inside a number")?;
    let mut value = u64::from(first) & (0xff >> len);
    for b in &bytes[1..] {
        value = (value << 8) | u64::from(*b);
    }
    Ok((value, len))
}

/// A signed EBML lacing difference: the vint minus half its range.
fn signed_vint(data: &[u8]) -> Result<(i64, usize), BlockError> {
    let (v, len) = vint(data)?;
    let bias = (1i64 << (7 * len - 1)) - 1;
    Ok((v as i64 - bias, len))
}

/// Parses one block's bytes.
pub fn parse(data: &[u8]) -> Result<BlockData<'_>, BlockError> {
    let (track, n) = vint(data)?;
    let header = data
        .get(n..n + 3)
        .ok_or("block is shorter than its header")?;
    let timestamp = i16::from_be_bytes([header[0], header[1]]);
    let flags = header[2];
    let body = &data[n + 3..];
    let frames = match (flags >> 1) & 0x03 {
        0 => vec![body],
        lacing => laced(lacing, body)?,
    };
    Ok(BlockData {
        track,
        timestamp,
        keyframe: flags & 0x80 != 0,
        frames,
    })
}

/// Splits a laced body: 1 Xiph, 2 fixed-size, 3 EBML.
fn laced(lacing: u8, body: &[u8]) -> Result<Vec<&[u8]>, BlockError> {
    let count = usize::from(*body.first().ok_or("laced block without a frame count")?) + 1;
    let mut pos = 1;
    let mut sizes: Vec<usize> = Vec::with_capacity(count);
    match lacing {
        1 => {
            for _ in 0..count - 1 {
                let mut size = 0usize;
                loop {
                    let b = *body.get(pos).ok_or("block ends inside its lace sizes")?;
                    pos += 1;
                    size += usize::from(b);
                    if b != 255 {
                        break;
                    }
                }
                sizes.push(size);
            }
        }
        3 => {
            let (first, len) = vint(body.get(pos..).unwrap_or_default())?;
            pos += len;
            let mut size = i64::try_from(first).map_err(|_| "lace size out of range")?;
            sizes.push(usize::try_from(size).map_err(|_| "lace size out of range")?);
            for _ in 1..count - 1 {
                let (diff, len) = signed_vint(body.get(pos..).unwrap_or_default())?;
                pos += len;
                size = size.checked_add(diff).ok_or("lace size out of range")?;
                sizes.push(usize::try_from(size).map_err(|_| "negative lace size")?);
            }
        }
        _ => {
            let rest = body.len() - pos;
            if !rest.is_multiple_of(count) {
                return Err("fixed-size lacing does not divide the block");
            }
            sizes = vec![rest / count; count - 1];
        }
    }
    let mut frames = Vec::with_capacity(count);
    for size in sizes {
        let frame = body
            .get(pos..pos.checked_add(size).ok_or("lace size out of range")?)
            .ok_or("lace sizes run past the block")?;
        frames.push(frame);
        pos += size;
    }
    frames.push(&body[pos..]);
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_block_without_lacing() {
        let b = parse(&[0x81, 0x00, 0x10, 0x80, 1, 2, 3]).unwrap();
        assert_eq!(b.track, 1);
        assert_eq!(b.timestamp, 16);
        assert!(b.keyframe);
        assert_eq!(b.frames, [&[1u8, 2, 3][..]]);
    }

    #[test]
    fn the_three_lacings() {
        // Xiph: 3 frames of 2, 256 and 1 bytes.
        let mut xiph = vec![0x82, 0xff, 0xfe, 0x02, 2, 2, 255, 1];
        xiph.extend(vec![9u8; 2 + 256 + 1]);
        let b = parse(&xiph).unwrap();
        assert_eq!(b.track, 2);
        assert_eq!(b.timestamp, -2);
        assert_eq!(
            b.frames.iter().map(|f| f.len()).collect::<Vec<_>>(),
            [2, 256, 1]
        );
        // Fixed: 2 frames of 3 bytes.
        let b = parse(&[0x81, 0, 0, 0x04, 1, 1, 2, 3, 4, 5, 6]).unwrap();
        assert_eq!(b.frames, [&[1u8, 2, 3][..], &[4, 5, 6][..]]);
        // EBML: 3 frames of 4, 2 (diff -2) and 1 bytes.
        let mut ebml = vec![0x81, 0, 0, 0x06, 2, 0x84, 0xbd];
        ebml.extend([7u8; 7]);
        let b = parse(&ebml).unwrap();
        assert_eq!(
            b.frames.iter().map(|f| f.len()).collect::<Vec<_>>(),
            [4, 2, 1]
        );
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        for bad in [
            &[][..],
            &[0x81],
            &[0x81, 0],
            &[0x00, 0, 0, 0],
            &[0x81, 0, 0, 0x02],
            &[0x81, 0, 0, 0x02, 5, 255],
            &[0x81, 0, 0, 0x02, 1, 200, 1],
            &[0x81, 0, 0, 0x04, 1, 1, 2, 3],
            &[0x81, 0, 0, 0x06, 2, 0x84, 0x01],
            &[0x81, 0, 0, 0x06, 2, 0x81, 0x81, 1, 1],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
