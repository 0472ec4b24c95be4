//! H.264: `avcC` decoder configuration records (ISO/IEC 14496-15), length-prefixed NAL
//! unit iteration and sequence parameter sets (ITU-T H.264 section 7.3.2.1.1).

use super::Dimensions;

/// H.264 decoder configuration record (avcC, ISO/IEC 14496-15), as found in
/// Matroska `CodecPrivate` for `V_MPEG4/ISO/AVC`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfig {
    /// Size in bytes (1..=4) of the big-endian length prefix of each NAL unit.
    pub nal_length_size: usize,
    /// Sequence parameter set NAL units, header byte included.
    pub sps: Vec<Vec<u8>>,
    /// Picture parameter set NAL units, header byte included.
    pub pps: Vec<Vec<u8>>,
}

/// Parse an `avcC` record. Requires configurationVersion 1 and complete
/// parameter-set arrays; any trailing (High-profile extension) bytes are
/// ignored.
#[must_use]
pub fn parse_avcc(codec_private: &[u8]) -> Option<AvcConfig> {
    let (&version, rest) = codec_private.split_first()?;
    if version != 1 {
        return None;
    }
    // profile, profile compatibility, level, then 6 reserved bits + lengthSizeMinusOne.
    let (&length_byte, rest) = rest.get(3..)?.split_first()?;
    let (&sps_byte, rest) = rest.split_first()?;
    let (sps, rest) = read_parameter_sets(rest, sps_byte & 0x1f)?; // 3 reserved bits + count
    let (&pps_count, rest) = rest.split_first()?;
    let (pps, _extension) = read_parameter_sets(rest, pps_count)?;
    Some(AvcConfig {
        nal_length_size: usize::from(length_byte & 3) + 1,
        sps,
        pps,
    })
}

/// Read `count` parameter sets, each prefixed by a 16-bit big-endian length;
/// returns them and the remaining bytes.
fn read_parameter_sets(mut data: &[u8], count: u8) -> Option<(Vec<Vec<u8>>, &[u8])> {
    let mut sets = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let (&hi, tail) = data.split_first()?;
        let (&lo, tail) = tail.split_first()?;
        let (set, tail) = tail.split_at_checked(usize::from(u16::from_be_bytes([hi, lo])))?;
        sets.push(set.to_vec());
        data = tail;
    }
    Some((sets, data))
}

/// Iterate over NAL units in a length-prefixed (AVC format) access unit,
/// yielding each NAL's bytes (header byte included). Stops (without panicking)
/// at a truncated/invalid length.
///
/// `nal_length_size` must be 1..=4, otherwise nothing is yielded. Zero-length
/// NAL units carry no header and are skipped.
pub fn avc_nal_units(data: &[u8], nal_length_size: usize) -> impl Iterator<Item = &[u8]> {
    let mut rest = if (1..=4).contains(&nal_length_size) {
        data
    } else {
        &[]
    };
    std::iter::from_fn(move || {
        // Each round consumes at least one prefix byte, so this terminates.
        while !rest.is_empty() {
            let (prefix, tail) = rest.split_at_checked(nal_length_size)?;
            let len = prefix
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            let Some((nal, tail)) = tail.split_at_checked(len) else {
                rest = &[];
                return None;
            };
            rest = tail;
            if !nal.is_empty() {
                return Some(nal);
            }
        }
        None
    })
}

/// H.264: NAL unit type of a NAL (low 5 bits of the header byte); None for
/// empty input.
#[must_use]
pub fn h264_nal_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|b| b & 0x1f)
}

/// NAL unit type of a sequence parameter set.
const NAL_TYPE_SPS: u8 = 7;

/// Remove emulation-prevention bytes: every `00 00 03` becomes `00 00`.
fn nal_to_rbsp(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len());
    let mut zeros = 0usize;
    for &b in payload {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// MSB-first bit reader with Exp-Golomb support; every read is checked.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    fn bit(&mut self) -> Option<u32> {
        let byte = self.data.get(self.pos / 8)?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(bit))
    }

    fn flag(&mut self) -> Option<bool> {
        self.bit().map(|b| b == 1)
    }

    /// Read `n` (at most 32) bits as an unsigned big-endian value.
    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n.min(32)).try_fold(0u32, |acc, _| Some((acc << 1) | self.bit()?))
    }

    /// Unsigned Exp-Golomb `ue(v)`; values needing more than 32 bits are rejected.
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0u32;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let value = (1u64 << zeros) - 1 + u64::from(self.bits(zeros)?);
        u32::try_from(value).ok()
    }

    /// `ue(v)` that must not exceed `max`.
    fn ue_max(&mut self, max: u32) -> Option<u32> {
        self.ue().filter(|&v| v <= max)
    }

    /// Signed Exp-Golomb `se(v)`.
    fn se(&mut self) -> Option<i64> {
        let k = i64::from(self.ue()?);
        Some(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

/// Skip one `scaling_list()` of `size` entries (H.264 section 7.3.2.1.1.1).
/// Deltas are only coded until `nextScale` becomes 0.
fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Option<()> {
    let mut last = 8i64;
    for _ in 0..size {
        let delta = r.se()?;
        if !(-128..=127).contains(&delta) {
            return None;
        }
        let next = (last + delta).rem_euclid(256);
        if next == 0 {
            break;
        }
        last = next;
    }
    Some(())
}

/// Profiles whose SPS carries chroma format, bit depth and scaling matrices.
fn is_high_profile(profile_idc: u32) -> bool {
    matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    )
}

/// Parse an H.264 sequence parameter set NAL (including its 1-byte NAL header,
/// type 7) and return the cropped picture size. Emulation-prevention bytes are
/// removed first; all profiles (incl. High 4:4:4 with separate colour planes
/// and scaling matrices), all picture-order-count types, field coding and
/// frame cropping are handled. Returns None on any malformed/truncated input.
#[must_use]
pub fn h264_sps_dimensions(sps_nal: &[u8]) -> Option<Dimensions> {
    let (&header, payload) = sps_nal.split_first()?;
    if header & 0x80 != 0 || header & 0x1f != NAL_TYPE_SPS {
        return None;
    }
    let rbsp = nal_to_rbsp(payload);
    let mut r = BitReader::new(&rbsp);

    let profile_idc = r.bits(8)?;
    r.bits(16)?; // constraint_set flags + reserved, level_idc
    r.ue_max(31)?; // seq_parameter_set_id

    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    if is_high_profile(profile_idc) {
        chroma_format_idc = r.ue_max(3)?;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.flag()?;
        }
        r.ue_max(6)?; // bit_depth_luma_minus8
        r.ue_max(6)?; // bit_depth_chroma_minus8
        r.flag()?; // qpprime_y_zero_transform_bypass_flag
        if r.flag()? {
            // seq_scaling_matrix_present_flag
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.flag()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }

    r.ue_max(12)?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue_max(12)?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.flag()?; // delta_pic_order_always_zero_flag
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            for _ in 0..r.ue_max(255)? {
                r.se()?; // offset_for_ref_frame[i]
            }
        }
        2 => {}
        _ => return None,
    }
    r.ue()?; // max_num_ref_frames
    r.flag()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = u64::from(r.ue()?) + 1;
    let height_map_units = u64::from(r.ue()?) + 1;
    let frame_mbs_only = r.flag()?;
    if !frame_mbs_only {
        r.flag()?; // mb_adaptive_frame_field_flag
    }
    r.flag()?; // direct_8x8_inference_flag
    let field_factor = if frame_mbs_only { 1 } else { 2 };

    let mut width = width_mbs * 16;
    let mut height = height_map_units * 16 * field_factor;
    if r.flag()? {
        // frame_cropping_flag: offsets are in units of CropUnitX / CropUnitY.
        let chroma_array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let (sub_width, sub_height) = match chroma_array_type {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1), // monochrome, 4:4:4 and separate colour planes
        };
        let (crop_x, crop_y) = (sub_width, sub_height * field_factor);
        let left = u64::from(r.ue()?);
        let right = u64::from(r.ue()?);
        let top = u64::from(r.ue()?);
        let bottom = u64::from(r.ue()?);
        width = width.checked_sub(crop_x * (left + right))?;
        height = height.checked_sub(crop_y * (top + bottom))?;
    }
    if width == 0 || height == 0 {
        return None;
    }
    Some(Dimensions {
        width: u32::try_from(width).ok()?,
        height: u32::try_from(height).ok()?,
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::inspect::bitstream::tests::{dims, hex};

    // Real SPS NAL units produced by GStreamer x264enc (see the module tests
    // below for how each was made), and the size reported by h264parse/ffprobe.
    /// 640x480 High (I420 input).
    pub(in crate::inspect::bitstream) const SPS_640X480_HIGH: &str =
        "6764001eacd940a03db016a0c0c0d4a0000003002000000791e2c5b2c0";
    /// 1280x720 High.
    pub(in crate::inspect::bitstream) const SPS_1280X720_HIGH: &str =
        "6764001facd9405005bb016a02020280000003008000001e478c18cb";
    /// 1920x1080 High (1088 coded, bottom crop).
    pub(in crate::inspect::bitstream) const SPS_1920X1080_HIGH: &str =
        "67640028acd940780227e5c05a808080a0000003002000000791e30632c0";
    /// 322x242 High, cropped from 336x256.
    pub(in crate::inspect::bitstream) const SPS_322X242_HIGH: &str =
        "67640014acd94150878888c05a8303035280000003008000001e478a14cb";
    /// 322x242 Constrained Baseline.
    pub(in crate::inspect::bitstream) const SPS_322X242_BASELINE: &str =
        "6742c015d90150878888c05a8303035280000003008000001e478b1724";
    /// 322x242 High 4:2:2 (Y42B input).
    pub(in crate::inspect::bitstream) const SPS_322X242_422: &str =
        "677a000dbcd9415087888fc05a83030320000003002000000791e28532c0";
    /// 322x242 High 4:4:4 Predictive (Y444 input).
    pub(in crate::inspect::bitstream) const SPS_322X242_444: &str =
        "67f4000d919b282a10f1f1f80b50606064000003000400000300f23c50a658";
    /// 640x480 High 4:4:4 Predictive (videotestsrc default AYUV input).
    pub(in crate::inspect::bitstream) const SPS_640X480_444: &str =
        "67f4001e90d9b281407b602d41818190000003001000000303c8f162d960";
    /// 322x244 High, interlaced (`frame_mbs_only_flag` = 0, field coding).
    pub(in crate::inspect::bitstream) const SPS_322X244_INTERLACED: &str =
        "67640015acd941510f112602d418181a940000030008000003025a7c50a658";

    #[test]
    fn sps_real_x264() {
        let cases = [
            (SPS_640X480_HIGH, 640, 480),
            (SPS_1280X720_HIGH, 1280, 720),
            (SPS_1920X1080_HIGH, 1920, 1080),
            (SPS_322X242_HIGH, 322, 242),
            (SPS_322X242_BASELINE, 322, 242),
            (SPS_322X242_422, 322, 242),
            (SPS_322X242_444, 322, 242),
            (SPS_640X480_444, 640, 480),
            (SPS_322X244_INTERLACED, 322, 244),
        ];
        for (sps, w, h) in cases {
            assert_eq!(h264_sps_dimensions(&hex(sps)), dims(w, h), "{sps}");
            assert_eq!(h264_nal_type(&hex(sps)), Some(7));
        }
    }

    // Synthetic SPS NAL units written with an Exp-Golomb bit writer to cover
    // syntax x264 never emits; sizes cross-checked with GStreamer h264parse
    // and ffprobe.
    /// High 4:4:4, `separate_colour_plane_flag` = 1, 10-bit, 12 scaling lists
    /// (4x4 and 8x8, incl. early `nextScale == 0` termination and delta
    /// extremes -128/127), `pic_order_cnt_type` 1 with a cycle and an
    /// `offset_for_non_ref_pic` large enough to need emulation prevention;
    /// 336x256 cropped (1,2,3,4) in 1-pixel units.
    pub(in crate::inspect::bitstream) const SYN_444_SEPARATE_PLANES: &str = "67f4000092df492492492492844262ffffffffffffffff01fc0101fffffffffffffffc4506e8000003010000030114430f00000400000505421d3215";
    /// Same, `separate_colour_plane_flag` = 0 (`ChromaArrayType` 3).
    pub(in crate::inspect::bitstream) const SYN_444: &str = "67f4000090df492492492492844262ffffffffffffffff01fc0101fffffffffffffffc4506e8000003010000030114430f00000400000505421d3215";
    /// High 4:2:2, poc type 2, field coding, 320x288 cropped right/bottom 1 unit (2x2 px).
    pub(in crate::inspect::bitstream) const SYN_422_FIELDS: &str = "677a001eb6eb282825ea90";
    /// Main 1080i: 1920x1088 field-coded, bottom crop 2 units of 4 lines.
    pub(in crate::inspect::bitstream) const SYN_MAIN_1080I: &str = "674d001eeca03c0227ed";
    /// High monochrome (`chroma_format_idc` 0) with 8-list scaling matrix, fields.
    pub(in crate::inspect::bitstream) const SYN_MONOCHROME: &str =
        "6764001edbe421084210842108421081089650a14e9248";
    /// High 4:2:0, 320x256 cropped (1,2,3,4) in 2-pixel units.
    pub(in crate::inspect::bitstream) const SYN_420_CROP: &str = "6764001ea6ed94141fd32150";

    #[test]
    fn sps_synthetic_syntax() {
        assert!(SYN_444.contains("000003"), "emulation prevention exercised");
        let cases = [
            (SYN_444_SEPARATE_PLANES, 333, 249),
            (SYN_444, 333, 249),
            (SYN_422_FIELDS, 318, 286),
            (SYN_MAIN_1080I, 1920, 1080),
            (SYN_MONOCHROME, 158, 316),
            (SYN_420_CROP, 314, 226),
        ];
        for (sps, w, h) in cases {
            assert_eq!(h264_sps_dimensions(&hex(sps)), dims(w, h), "{sps}");
        }
    }

    #[test]
    fn sps_rejects_malformed() {
        let sps = hex(SPS_322X242_HIGH);
        // Wrong NAL type (PPS header) and forbidden bit set.
        let mut pps = sps.clone();
        pps[0] = 0x68;
        assert_eq!(h264_sps_dimensions(&pps), None);
        let mut forbidden = sps.clone();
        forbidden[0] |= 0x80;
        assert_eq!(h264_sps_dimensions(&forbidden), None);
        // Truncated before the cropping offsets.
        assert_eq!(h264_sps_dimensions(&sps[..8]), None);
        assert_eq!(h264_sps_dimensions(&[]), None);
        assert_eq!(h264_sps_dimensions(&[0x67]), None);
        // All-zero payload: Exp-Golomb code longer than 32 bits.
        assert_eq!(
            h264_sps_dimensions(&[0x67, 66, 0, 30, 0, 0, 0, 0, 0, 0, 0, 0]),
            None
        );
    }

    #[test]
    fn emulation_prevention_removed() {
        assert_eq!(
            nal_to_rbsp(&[0, 0, 3, 1, 0, 0, 3, 0, 0, 3]),
            [0, 0, 1, 0, 0, 0, 0]
        );
        assert_eq!(nal_to_rbsp(&[0, 3, 0, 0, 0, 3]), [0, 3, 0, 0, 0]);
    }

    /// Real avcC from a `GStreamer` `matroskamux` `CodecPrivate` (x264, 640x480 High 4:4:4).
    pub(in crate::inspect::bitstream) const AVCC_640X480: &str = "01f4001effe1001e67f4001e90d9b281407b602d41818190000003001000000303c8f162d96001000668ebec448440";
    /// Real avcC from `h264parse` `codec_data` (322x242 High).
    pub(in crate::inspect::bitstream) const AVCC_322X242: &str = "01640014ffe1001f67640014acb202a10f111180b5060606a50000030001000003003c8f142a4801000568ebccb22c";

    #[test]
    fn avcc_real_records() {
        let cfg = parse_avcc(&hex(AVCC_640X480)).expect("valid avcC");
        assert_eq!(cfg.nal_length_size, 4);
        assert_eq!(cfg.sps, [hex(SPS_640X480_444)]);
        assert_eq!(cfg.pps, [hex("68ebec448440")]);
        assert_eq!(h264_sps_dimensions(&cfg.sps[0]), dims(640, 480));

        let cfg = parse_avcc(&hex(AVCC_322X242)).expect("valid avcC");
        assert_eq!((cfg.sps.len(), cfg.pps.len()), (1, 1));
        assert_eq!(h264_sps_dimensions(&cfg.sps[0]), dims(322, 242));
    }

    #[test]
    fn avcc_rejects_malformed() {
        let rec = hex(AVCC_640X480);
        for end in 0..rec.len() {
            assert_eq!(parse_avcc(&rec[..end]), None, "prefix {end}");
        }
        let mut v2 = rec.clone();
        v2[0] = 2;
        assert_eq!(parse_avcc(&v2), None);
        // Two-byte lengths, no parameter sets, trailing extension ignored.
        let cfg = parse_avcc(&[1, 66, 0, 30, 0xfd, 0xe0, 0, 0xfc]).expect("empty sets");
        assert_eq!(
            cfg,
            AvcConfig {
                nal_length_size: 2,
                sps: vec![],
                pps: vec![]
            }
        );
    }

    #[test]
    fn nal_iteration() {
        let au = [
            0, 0, 0, 2, 0x09, 0xf0, 0, 0, 0, 0, 0, 0, 0, 3, 0x65, 0x88, 0x84,
        ];
        let nals: Vec<&[u8]> = avc_nal_units(&au, 4).collect();
        assert_eq!(nals, [&[0x09, 0xf0][..], &[0x65, 0x88, 0x84][..]]);
        let types: Vec<_> = nals.iter().filter_map(|n| h264_nal_type(n)).collect();
        assert_eq!(types, [9, 5]);

        // Truncated final NAL: earlier ones are still yielded, then iteration stops.
        let nals: Vec<&[u8]> = avc_nal_units(&au[..16], 4).collect();
        assert_eq!(nals, [&[0x09, 0xf0][..]]);
        // Truncated length prefix.
        assert_eq!(avc_nal_units(&au[..8], 4).count(), 1);
        // Other prefix sizes; invalid sizes yield nothing.
        assert_eq!(avc_nal_units(&[1, 0x67, 2, 0x68, 0xee], 1).count(), 2);
        assert_eq!(avc_nal_units(&[0, 1, 0x06, 0, 0, 1, 0x41], 2).count(), 1);
        assert_eq!(avc_nal_units(&[0, 0, 1, 0x06], 3).count(), 1);
        assert_eq!(avc_nal_units(&au, 0).count(), 0);
        assert_eq!(avc_nal_units(&au, 5).count(), 0);
        // A huge length stops without panicking.
        assert_eq!(avc_nal_units(&[0xff, 0xff, 0xff, 0xff, 1], 4).count(), 0);
        assert_eq!(h264_nal_type(&[]), None);
    }
}
