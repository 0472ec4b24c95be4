//! What the scan holds back while it cannot tell damage from a real jump in time: a
//! cluster whose Timestamp jumps (judged by the next cluster's), a block whose time jumps
//! ahead of its track (judged by the track's next blocks), and the damaged regions they and
//! the resync report.

use super::{FrameRef, Scan, block};
use crate::error::Result;
use crate::inspect::resync::Resume;
use crate::inspect::{Damage, TrackKind, ns_to_ms};

/// What [`Scan::judge_suspect`] did with a suspect of the block's track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Judged {
    NoSuspect,
    Taken,
    Damaged,
    /// The block is held after the suspect.
    Held,
}

/// A block held back: see [`Scan::suspects`].
pub(super) struct Suspect {
    pub(super) track: u64,
    pub(super) time_ns: i64,
    /// Where its element starts and (once the next tag is read) ends.
    pub(super) byte: u64,
    pub(super) end: Option<u64>,
    pub(super) cluster_ts: i64,
    pub(super) cluster_byte: u64,
    pub(super) data: Vec<u8>,
    pub(super) keyframe: bool,
    /// The track's blocks after it that come before it (a video track's B-frames, stored
    /// after the frame they refer to), held to keep their storage order.
    pub(super) followers: Vec<Follower>,
}

/// A block of a suspect's track held after it: (data, key frame, cluster timestamp, cluster
/// offset).
pub(super) struct Follower {
    pub(super) data: Vec<u8>,
    pub(super) keyframe: bool,
    pub(super) cluster_ts: i64,
    pub(super) cluster_byte: u64,
}

/// How many blocks before a suspect its video track may store after it (B-frames: H.264
/// reorders at most 16 frames) before the suspect is judged damaged. Audio is not reordered.
pub(super) const VIDEO_REORDER: usize = 16;

/// A block whose time is this far ahead of its track's last frame is held as a suspect.
pub(super) const SUSPECT_JUMP_NS: i64 = 1_000_000_000;
/// A suspect is damaged when its track's next block comes this far before it.
pub(super) const SUSPECT_BACK_NS: i64 = 200_000_000;

/// A cluster held back: its Timestamp is far from its neighbours', so its blocks wait for the
/// next cluster's Timestamp to say whether it is the damaged one.
pub(super) struct Held {
    pub(super) byte: u64,
    pub(super) ts_ns: i64,
    /// Before it: the last cluster's timestamp and the last frame's time (ns).
    pub(super) before_cluster_ns: Option<i64>,
    pub(super) before_last_ns: Option<i64>,
    /// (block bytes, key frame) in storage order.
    pub(super) blocks: Vec<(Vec<u8>, bool)>,
    pub(super) bytes: usize,
}

/// A cluster whose Timestamp is this far past the last frame before it (or is before the
/// previous cluster's by more than [`BACKWARDS_NS`]) is held until the next cluster's says
/// which of the two is damaged. A real gap (everybody muted) is held too, and then taken as
/// it is: the cluster after it goes on from it; holding one costs only a cluster's memory.
pub(super) const JUMP_NS: i64 = 10_000_000_000;
pub(super) const BACKWARDS_NS: i64 = 1_000_000_000;
/// The most a held cluster may hold before it is taken as it is.
pub(super) const MAX_HELD: usize = 32 << 20;

impl Scan<'_> {
    /// Settles the suspects still held when the reading stops: one that no block of its
    /// track followed is taken in (nothing says it is damaged); one that its track's blocks
    /// followed, all of them before it, is damage (a jump that B-frames explain goes on
    /// from the suspect within a few frames).
    pub(super) fn release_suspects(
        &mut self,
        on_frame: &mut dyn FnMut(FrameRef<'_>) -> Result<()>,
    ) -> Result<()> {
        for s in std::mem::take(&mut self.suspects) {
            if s.followers.is_empty() {
                self.take_suspect(s, on_frame)?;
            } else {
                let reason = format!(
                    "a block of track {} at {} ms, ahead of every block after it",
                    s.track,
                    ns_to_ms(s.time_ns)
                );
                self.damaged(s.byte, s.end.unwrap_or(self.tag_byte), reason);
                self.take_followers(s.followers, on_frame)?;
            }
        }
        Ok(())
    }

    pub(super) fn take_suspect(
        &mut self,
        s: Suspect,
        on_frame: &mut dyn FnMut(FrameRef<'_>) -> Result<()>,
    ) -> Result<()> {
        self.take_held_block(&s.data, s.keyframe, s.cluster_ts, s.cluster_byte, on_frame)?;
        self.take_followers(s.followers, on_frame)
    }

    pub(super) fn take_followers(
        &mut self,
        followers: Vec<Follower>,
        on_frame: &mut dyn FnMut(FrameRef<'_>) -> Result<()>,
    ) -> Result<()> {
        for f in followers {
            self.take_held_block(&f.data, f.keyframe, f.cluster_ts, f.cluster_byte, on_frame)?;
        }
        Ok(())
    }

    /// Takes in a block held back from the cluster at `cluster_byte` (timestamp `cluster_ts`).
    pub(super) fn take_held_block(
        &mut self,
        data: &[u8],
        keyframe: bool,
        cluster_ts: i64,
        cluster_byte: u64,
        on_frame: &mut dyn FnMut(FrameRef<'_>) -> Result<()>,
    ) -> Result<()> {
        if let Ok(block) = block::parse(data) {
            let current = std::mem::replace(&mut self.cluster_ts, cluster_ts);
            let _ = self.block_in(&block, keyframe, Some(cluster_byte), on_frame)?;
            self.cluster_ts = current;
        }
        Ok(())
    }

    /// The next block of a suspect's track is at `time`: the suspect is taken in when the
    /// track goes on from its time, or reported as damage when the track comes back to
    /// where it was (for video, only after more blocks than B-frames can explain). `Held`:
    /// the block was kept as the suspect's follower.
    pub(super) fn judge_suspect(
        &mut self,
        track: u64,
        time: i64,
        data: &[u8],
        keyframe: bool,
        on_frame: &mut dyn FnMut(FrameRef<'_>) -> Result<()>,
    ) -> Result<Judged> {
        let Some(i) = self.suspects.iter().position(|s| s.track == track) else {
            return Ok(Judged::NoSuspect);
        };
        if time >= self.suspects[i].time_ns.saturating_sub(SUSPECT_BACK_NS) {
            let s = self.suspects.remove(i);
            self.take_suspect(s, on_frame)?;
            return Ok(Judged::Taken);
        }
        let reorders = self
            .tracks
            .iter()
            .any(|t| t.number == track && t.kind == TrackKind::Video);
        if reorders && self.suspects[i].followers.len() < VIDEO_REORDER {
            let (cluster_ts, cluster_byte) = (self.cluster_ts, self.cluster_byte);
            self.suspects[i].followers.push(Follower {
                data: data.to_vec(),
                keyframe,
                cluster_ts,
                cluster_byte,
            });
            return Ok(Judged::Held);
        }
        let s = self.suspects.remove(i);
        let before = self.track_last(track).unwrap_or(time);
        let reason = format!(
            "a block of track {track} at {} ms, between frames at {} and {} ms",
            ns_to_ms(s.time_ns),
            ns_to_ms(before),
            ns_to_ms(time)
        );
        self.damaged(s.byte, s.end.unwrap_or(self.tag_byte), reason);
        self.take_followers(s.followers, on_frame)?;
        Ok(Judged::Damaged)
    }

    /// A damaged region from byte `from` to `to`.
    pub(super) fn damaged(&mut self, from: u64, to: u64, reason: String) {
        self.before_damage = self.recent_ns.times().to_vec();
        self.damage.push(Damage {
            from_byte: from,
            to_byte: to,
            reason,
            from_ms: self.recent_ns.max().map(ns_to_ms),
            to_ms: None,
        });
    }

    /// Reading resumes: at a Cluster (its blocks start afresh) or at a block of the current
    /// cluster.
    pub(super) fn resumed(&mut self, resume: Resume) {
        if let Resume::Cluster(_) = resume {
            self.cluster_ts = 0;
        }
    }

    /// The first frame after a damaged region is at `time`: the region's times, forwards.
    pub(super) fn close_damage(&mut self, time: i64) {
        let Some(d) = self.damage.last_mut().filter(|d| d.to_ms.is_none()) else {
            return;
        };
        let before = self
            .before_damage
            .iter()
            .copied()
            .filter(|&t| t <= time)
            .max()
            .unwrap_or(time);
        d.from_ms = Some(ns_to_ms(before));
        d.to_ms = Some(ns_to_ms(time));
        self.before_damage.clear();
    }

    /// A cluster's Timestamp (ns) arrives: hold the cluster when it jumps, and judge the
    /// cluster held before it.
    pub(super) fn cluster_timestamp(
        &mut self,
        ts_ns: i64,
        on_frame: &mut dyn FnMut(FrameRef<'_>) -> Result<()>,
    ) -> Result<()> {
        if let Some(held) = self.held.take() {
            let consistent = |from: Option<i64>, last: Option<i64>| {
                from.is_some_and(|f| ts_ns >= f.saturating_sub(BACKWARDS_NS))
                    && last.is_none_or(|l| ts_ns <= l.saturating_add(JUMP_NS))
            };
            let after_before = consistent(held.before_cluster_ns, held.before_last_ns);
            let after_held = ts_ns >= held.ts_ns.saturating_sub(BACKWARDS_NS)
                && ts_ns <= held.ts_ns.saturating_add(JUMP_NS);
            if after_before && !after_held {
                let ms = |ns: i64| ns_to_ms(ns);
                let reason = format!(
                    "the Cluster's Timestamp {} ms is implausible against its neighbours' \
                     ({} ms before it, {} ms after it)",
                    ms(held.ts_ns),
                    held.before_cluster_ns.map_or(0, ms),
                    ms(ts_ns)
                );
                self.damaged(held.byte, self.cluster_byte, reason);
            } else {
                self.release(held, on_frame)?;
            }
        }
        let jumps = self
            .last_cluster_ns
            .is_some_and(|p| ts_ns < p.saturating_sub(BACKWARDS_NS))
            || self
                .recent_ns
                .max()
                .is_some_and(|l| ts_ns > l.saturating_add(JUMP_NS));
        if jumps {
            self.held = Some(Held {
                byte: self.cluster_byte,
                ts_ns,
                before_cluster_ns: self.last_cluster_ns,
                before_last_ns: self.recent_ns.max(),
                blocks: Vec::new(),
                bytes: 0,
            });
        } else {
            self.last_cluster_ns = Some(ts_ns);
        }
        Ok(())
    }

    /// Takes the held cluster's blocks in (it is not damaged, or nothing says it is).
    pub(super) fn release_held(
        &mut self,
        on_frame: &mut dyn FnMut(FrameRef<'_>) -> Result<()>,
    ) -> Result<()> {
        match self.held.take() {
            Some(held) => self.release(held, on_frame),
            None => Ok(()),
        }
    }

    pub(super) fn release(
        &mut self,
        held: Held,
        on_frame: &mut dyn FnMut(FrameRef<'_>) -> Result<()>,
    ) -> Result<()> {
        let cluster_ts = std::mem::replace(&mut self.cluster_ts, held.ts_ns / self.timestamp_scale);
        self.last_cluster_ns = Some(held.ts_ns);
        for (data, keyframe) in &held.blocks {
            if let Ok(block) = block::parse(data) {
                let _ = self.block_in(&block, *keyframe, Some(held.byte), on_frame)?;
            }
        }
        self.cluster_ts = cluster_ts;
        Ok(())
    }
}
