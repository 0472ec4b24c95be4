//! Where silence goes so that a stream's audio is continuous (pure, no I/O).
//!
//! Given the real audio packets of a stream (output time and length) and the span the file
//! must cover, [`schedule`] places each packet and lists the silent Opus frames that close
//! every hole: leading,
//! between packets (mutes, and between segments) and trailing. Frames are 20 ms, then 10, 5
//! and 2.5 ms to close a hole to within 2.5 ms, so what follows a hole starts where it was
//! recorded even for a decoder that simply plays packets one after another.

/// Opus frame lengths used for silence, longest first, in ns.
pub const SILENCE_FRAMES_NS: [i64; 4] = [20_000_000, 10_000_000, 5_000_000, 2_500_000];

/// One silent frame to insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Silence {
    pub pts_ns: i64,
    pub duration_ns: i64,
}

/// Where each audio packet and each silent frame goes in a repaired file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AudioSchedule {
    /// The output time of each real packet, in the order given.
    pub packets: Vec<i64>,
    pub silence: Vec<Silence>,
}

/// Schedules `packets` ((pts, duration) in output ns, in storage order) on one continuous
/// clock over `[start_ns, end_ns)`.
///
/// The clock runs from packet to packet: a packet plays after the one before it, even when
/// its timestamp says it starts earlier. Browsers stamp 60 ms packets with jitter (0.200,
/// 0.200, 0.300 s…): that is continuous sound, and the packets are re-stamped where they
/// really play. A packet stamped after the clock opens a hole, which silence fills to
/// within 1.25 ms; the packet then starts where the silence ends, so a player that plays
/// packets back to back and one that follows timestamps hear it at the same time.
pub fn schedule(packets: &[(i64, i64)], start_ns: i64, end_ns: i64) -> AudioSchedule {
    let mut out = AudioSchedule::default();
    let mut clock = start_ns;
    let fill = |out: &mut AudioSchedule, from: i64, to: i64| -> i64 {
        let mut t = from;
        for &len in &SILENCE_FRAMES_NS {
            while to - t >= len {
                out.silence.push(Silence {
                    pts_ns: t,
                    duration_ns: len,
                });
                t += len;
            }
        }
        t
    };
    // Holes close to the nearest 2.5 ms: a packet lands within 1.25 ms of its time.
    let half = SILENCE_FRAMES_NS[SILENCE_FRAMES_NS.len() - 1] / 2;
    for &(pts, dur) in packets {
        if pts > clock {
            clock = fill(&mut out, clock, pts + half);
        }
        out.packets.push(clock);
        clock += dur;
    }
    if end_ns > clock {
        fill(&mut out, clock, end_ns);
    }
    out
}

/// A silent Opus frame (CELT, full band, silence flag) of `duration_ns` for `channels`.
pub fn opus_silence(duration_ns: i64, channels: u64) -> Vec<u8> {
    // TOC: config 28..31 = CELT FB 2.5/5/10/20 ms; bit 2 = stereo; code 0 (one frame).
    let config: u8 = match duration_ns {
        20_000_000 => 31,
        10_000_000 => 30,
        5_000_000 => 29,
        _ => 28,
    };
    let stereo = if channels >= 2 { 0x04 } else { 0 };
    vec![(config << 3) | stereo, 0xFF, 0xFE]
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    fn silence_fill(p: &[(i64, i64)], start: i64, end: i64) -> Vec<Silence> {
        schedule(p, start, end).silence
    }

    fn total(s: &[Silence]) -> i64 {
        s.iter().map(|x| x.duration_ns).sum()
    }

    #[test]
    fn fills_leading_inner_and_trailing_holes() {
        let packets: Vec<(i64, i64)> = (0..5).map(|i| (100 * MS + i * 20 * MS, 20 * MS)).collect();
        // packets cover 100..200 ms; then a mute until 1000.
        let mut p = packets.clone();
        p.push((1_000 * MS, 20 * MS));
        let s = silence_fill(&p, 0, 1_100 * MS);
        assert_eq!(
            s[0],
            Silence {
                pts_ns: 0,
                duration_ns: 20 * MS
            }
        );
        let lead: i64 = total(
            &s.iter()
                .copied()
                .filter(|x| x.pts_ns < 100 * MS)
                .collect::<Vec<_>>(),
        );
        assert_eq!(lead, 100 * MS);
        let inner: i64 = total(
            &s.iter()
                .copied()
                .filter(|x| (200 * MS..1_000 * MS).contains(&x.pts_ns))
                .collect::<Vec<_>>(),
        );
        assert_eq!(inner, 800 * MS);
        assert_eq!(s.last().map(|x| x.pts_ns + x.duration_ns), Some(1_100 * MS));
    }

    #[test]
    fn odd_holes_close_to_the_nearest_two_and_a_half_ms() {
        let s = silence_fill(
            &[(0, 20 * MS), (57 * MS + 300_000, 20 * MS)],
            0,
            77 * MS + 300_000,
        );
        let inner: Vec<i64> = s.iter().map(|x| x.duration_ns).collect();
        assert_eq!(inner, [20 * MS, 10 * MS, 5 * MS, 2_500_000]); // 37.3 ms, to the nearest 2.5
        let end = s.last().map(|x| x.pts_ns + x.duration_ns).unwrap_or(0);
        assert!((57 * MS + 300_000 - end).abs() <= 1_250_000);
    }

    #[test]
    fn overlapping_jittery_packets_need_nothing() {
        let p = [
            (200 * MS, 60 * MS),
            (200 * MS, 60 * MS),
            (300 * MS, 60 * MS),
        ];
        assert!(silence_fill(&p, 200 * MS, 360 * MS).is_empty());
    }

    #[test]
    fn silence_packets() {
        assert_eq!(opus_silence(20 * MS, 1), [0xF8, 0xFF, 0xFE]);
        assert_eq!(opus_silence(20 * MS, 2), [0xFC, 0xFF, 0xFE]);
        assert_eq!(opus_silence(2_500_000, 1)[0], 28 << 3);
        for d in SILENCE_FRAMES_NS {
            let samples = crate::inspect::bitstream::opus_packet_samples(&opus_silence(d, 1));
            assert_eq!(
                samples.map(|s| i64::from(s) * 1_000_000_000 / 48_000),
                Some(d)
            );
        }
    }
}
