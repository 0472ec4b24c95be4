//! Per-track accumulation of frame timestamps into the facts a report gives: first and last
//! timestamp, frame and key-frame counts, gaps, resolution changes (pure, no I/O).
//!
//! A gap is a jump in presentation time between consecutive frames larger than a threshold.
//! For audio, whose packets have a known length, the jump is measured from the *end* of the
//! previous packet: browsers send 60 ms Opus packets with jittery timestamps (Chrome's
//! captures step 0.200, 0.200, 0.300, 0.400 s…), which is continuous sound, not a gap.
//!
//! H.264 in Matroska is stored in decode order, so presentation times are not monotonic; a
//! small reorder window (a min-heap of [`REORDER_DEPTH`] timestamps) restores presentation
//! order with bounded memory before gaps are measured.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::bitstream::Dimensions;

/// Enough for any B-frame pyramid an encoder uses (H.264 allows at most 16 reference frames).
pub const REORDER_DEPTH: usize = 16;

/// A jump in presentation time between two consecutive frames, in container nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GapNs {
    /// The last frame before the gap.
    pub from: i64,
    /// The first frame after the gap.
    pub to: i64,
}

/// A picture size seen from `at` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeChange {
    pub at: i64,
    pub size: Dimensions,
}

/// Accumulates one track's frames.
#[derive(Debug, Clone)]
pub struct TrackScan {
    gap_threshold_ns: i64,
    reorder_depth: usize,
    /// (presentation time, duration) of frames waiting in the reorder window.
    pending: BinaryHeap<Reverse<(i64, i64)>>,
    last: Option<i64>,
    /// End of the last frame (its time plus its duration), for measuring holes.
    last_end: Option<i64>,
    pub first: Option<i64>,
    pub frames: u64,
    pub keyframes: u64,
    /// Key frames whose bitstream says so (a VP8 key frame header, an H.264 IDR picture):
    /// none means no decoder can start on this track.
    pub decodable_keyframes: u64,
    /// Frames whose time went backwards beyond what the reorder window absorbs.
    pub backwards: u64,
    pub gaps: Vec<GapNs>,
    /// The size in the track header, then every change seen in key frames.
    pub initial_size: Option<Dimensions>,
    pub size_changes: Vec<SizeChange>,
    current_size: Option<Dimensions>,
}

impl TrackScan {
    /// `reorder` is true for codecs stored in decode order (H.264).
    pub fn new(gap_threshold_ns: i64, reorder: bool, header_size: Option<Dimensions>) -> Self {
        TrackScan {
            gap_threshold_ns,
            reorder_depth: if reorder { REORDER_DEPTH } else { 0 },
            pending: BinaryHeap::new(),
            last: None,
            last_end: None,
            first: None,
            frames: 0,
            keyframes: 0,
            decodable_keyframes: 0,
            backwards: 0,
            gaps: Vec::new(),
            initial_size: header_size,
            size_changes: Vec::new(),
            current_size: header_size,
        }
    }

    /// Adds one frame, in storage order, with its duration when the codec tells it (audio)
    /// and the picture size its bitstream declares (key frames of video tracks only).
    pub fn push(
        &mut self,
        pts: i64,
        duration: Option<i64>,
        keyframe: bool,
        size: Option<Dimensions>,
    ) {
        self.frames += 1;
        if keyframe {
            self.keyframes += 1;
        }
        if let Some(size) = size {
            match self.current_size {
                None => self.initial_size = Some(size),
                Some(cur) if cur != size => self.size_changes.push(SizeChange { at: pts, size }),
                Some(_) => {}
            }
            self.current_size = Some(size);
        }
        self.pending.push(Reverse((pts, duration.unwrap_or(0))));
        while self.pending.len() > self.reorder_depth {
            if let Some(Reverse((t, d))) = self.pending.pop() {
                self.emit(t, d);
            }
        }
    }

    /// Flushes the reorder window; call once after the last frame.
    pub fn finish(&mut self) {
        while let Some(Reverse((t, d))) = self.pending.pop() {
            self.emit(t, d);
        }
    }

    /// The last (largest) presentation time seen.
    pub fn last(&self) -> Option<i64> {
        self.last
    }

    fn emit(&mut self, pts: i64, duration: i64) {
        self.first = Some(self.first.map_or(pts, |f| f.min(pts)));
        match (self.last, self.last_end) {
            (Some(prev), _) if pts < prev => self.backwards += 1,
            (Some(prev), Some(end)) => {
                if pts.saturating_sub(end) > self.gap_threshold_ns {
                    self.gaps.push(GapNs {
                        from: prev,
                        to: pts,
                    });
                }
                self.last = Some(pts);
            }
            _ => self.last = Some(pts),
        }
        let end = pts.saturating_add(duration);
        self.last_end = Some(self.last_end.map_or(end, |e| e.max(end)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    fn scan(times_ms: &[i64], reorder: bool) -> TrackScan {
        let mut s = TrackScan::new(250 * MS, reorder, None);
        for &t in times_ms {
            s.push(t * MS, None, false, None);
        }
        s.finish();
        s
    }

    #[test]
    fn finds_gaps_over_the_threshold_only() {
        let s = scan(&[0, 33, 66, 100, 400, 433, 683, 934], false);
        assert_eq!(
            s.gaps,
            [
                GapNs {
                    from: 100 * MS,
                    to: 400 * MS
                },
                GapNs {
                    from: 683 * MS,
                    to: 934 * MS
                }
            ]
        );
        assert_eq!((s.first, s.last()), (Some(0), Some(934 * MS)));
        assert_eq!(s.frames, 8);
    }

    #[test]
    fn decode_order_is_reordered_before_measuring() {
        // I P B B P B B ... in decode order: presentation order is 0,40,80,120,...
        let decode = [0, 120, 40, 80, 240, 160, 200, 360, 280, 320];
        let s = scan(&decode, true);
        assert!(s.gaps.is_empty(), "{:?}", s.gaps);
        assert_eq!(s.backwards, 0);
        // Without the reorder window the same input looks non-monotonic.
        assert!(scan(&decode, false).backwards > 0);
    }

    #[test]
    fn audio_holes_are_measured_from_the_packet_end() {
        // Chrome-style 60 ms packets on jittery 100 ms steps: continuous, no gap; then a
        // real 500 ms hole.
        let mut s = TrackScan::new(60 * MS, false, None);
        for t in [200, 200, 300, 400, 400, 500, 567, 1_127] {
            s.push(t * MS, Some(60 * MS), true, None);
        }
        s.finish();
        assert_eq!(
            s.gaps,
            [GapNs {
                from: 567 * MS,
                to: 1_127 * MS
            }]
        );
    }

    #[test]
    fn negative_first_timestamp() {
        let s = scan(&[-1, 19, 39], false);
        assert_eq!(s.first, Some(-MS));
    }

    #[test]
    fn resolution_changes_are_recorded_once() {
        let d = |w, h| {
            Some(Dimensions {
                width: w,
                height: h,
            })
        };
        let mut s = TrackScan::new(250 * MS, false, d(640, 480));
        s.push(0, None, true, d(640, 480));
        s.push(33 * MS, None, false, None);
        s.push(66 * MS, None, true, d(1280, 720));
        s.push(99 * MS, None, true, d(1280, 720));
        s.finish();
        assert_eq!(s.keyframes, 3);
        assert_eq!(
            s.size_changes,
            [SizeChange {
                at: 66 * MS,
                size: Dimensions {
                    width: 1280,
                    height: 720
                }
            }]
        );
        // Without a header size, the first key frame gives the initial size.
        let mut s = TrackScan::new(250 * MS, false, None);
        s.push(0, None, true, d(320, 240));
        assert_eq!(s.initial_size, d(320, 240));
        assert!(s.size_changes.is_empty());
    }
}
