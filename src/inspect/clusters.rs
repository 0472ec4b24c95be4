//! Where each Cluster of a container begins and what it holds, so that a reader can start in
//! the middle of a file without an index (pure: built by the scan, read by compose).
//!
//! Live captures have no `Cues`, and GStreamer's demuxer, asked to seek without them, starts
//! wherever a cluster's time falls, key frame or not. The scan sees every cluster anyway: it
//! notes where each begins, the span of its frames' times and its first decodable video key
//! frame, and [`ClusterIndex::resume_video`] / [`ClusterIndex::resume_audio`] answer where
//! reading can start for a given time.

/// The most clusters an index holds: past it, neighbours are merged two by two (a hostile
/// file of tiny clusters must not take memory by the gigabyte; an hour of captures has one
/// cluster a second or fewer). A merged cluster begins where the first of the two does and
/// holds what both hold, so it answers as before, only a cluster earlier at times.
const MAX_CLUSTERS: usize = 16_384;

/// The clusters of one container, in storage order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterIndex {
    clusters: Vec<ClusterMark>,
}

/// One cluster: where it begins and what its frames hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterMark {
    /// Offset of the Cluster element's ID in the file.
    pub byte: u64,
    /// The earliest and latest frame times in it (ns); `None` while it holds no frame.
    pub span_ns: Option<(i64, i64)>,
    /// The time of its first video key frame a decoder can start on.
    pub key_ns: Option<i64>,
}

impl ClusterIndex {
    /// Where the first cluster begins: the bytes before it are the file's header.
    pub fn header_end(&self) -> Option<u64> {
        self.clusters.first().map(|c| c.byte)
    }

    pub fn clusters(&self) -> &[ClusterMark] {
        &self.clusters
    }

    /// A cluster begins at `byte`.
    pub fn start(&mut self, byte: u64) {
        if self.clusters.len() >= MAX_CLUSTERS {
            self.halve();
        }
        self.clusters.push(ClusterMark {
            byte,
            span_ns: None,
            key_ns: None,
        });
    }

    /// A frame of the current cluster: stored from `first_ns` to `last_ns` (a laced block's
    /// frames follow each other), with a decodable video key frame at `key_ns`.
    pub fn frames(&mut self, first_ns: i64, last_ns: i64, key_ns: Option<i64>) {
        let Some(c) = self.clusters.last_mut() else {
            return; // a block outside any cluster: nothing to resume at
        };
        c.span_ns = Some(match c.span_ns {
            None => (first_ns, last_ns),
            Some((a, b)) => (a.min(first_ns), b.max(last_ns)),
        });
        if c.key_ns.is_none() {
            c.key_ns = key_ns;
        }
    }

    /// A frame of the cluster that begins at `byte` (held back while later ones began).
    pub fn frames_in(&mut self, byte: u64, first_ns: i64, last_ns: i64, key_ns: Option<i64>) {
        let Some(c) = self.clusters.iter_mut().rev().find(|c| c.byte <= byte) else {
            return;
        };
        c.span_ns = Some(match c.span_ns {
            None => (first_ns, last_ns),
            Some((a, b)) => (a.min(first_ns), b.max(last_ns)),
        });
        if c.key_ns.is_none() {
            c.key_ns = key_ns;
        }
    }

    /// Merges neighbours two by two.
    fn halve(&mut self) {
        let merged = self
            .clusters
            .chunks(2)
            .map(|pair| {
                let mut c = pair[0];
                if let Some(next) = pair.get(1) {
                    c.span_ns = match (c.span_ns, next.span_ns) {
                        (Some((a, b)), Some((x, y))) => Some((a.min(x), b.max(y))),
                        (one, other) => one.or(other),
                    };
                    c.key_ns = c.key_ns.or(next.key_ns);
                }
                c
            })
            .collect();
        self.clusters = merged;
    }

    /// Where to start reading so that video from `start_ns` on decodes: the cluster holding
    /// the last key frame at or before it. `None` where that is the first cluster (nothing
    /// to skip), or where no cluster qualifies.
    pub fn resume_video(&self, start_ns: i64) -> Option<u64> {
        self.resume(start_ns, |c| c.key_ns.is_some_and(|k| k <= start_ns))
    }

    /// Where to start reading so that sound from `start_ns` on decodes as it would from the
    /// file's start: a cluster whose frames begin at least `preroll_ns` before it (an Opus
    /// decoder converges within 80 ms).
    pub fn resume_audio(&self, start_ns: i64, preroll_ns: i64) -> Option<u64> {
        let by = start_ns.saturating_sub(preroll_ns);
        self.resume(start_ns, |c| {
            c.span_ns.is_some_and(|(first, _)| first <= by)
        })
    }

    /// The last cluster after the first that `starts_here` accepts and before which nothing
    /// stored reaches `start_ns` (timestamps that go backwards cannot lose a frame).
    fn resume(&self, start_ns: i64, starts_here: impl Fn(&ClusterMark) -> bool) -> Option<u64> {
        let mut before_max = i64::MIN;
        let mut found = None;
        for (i, c) in self.clusters.iter().enumerate() {
            if before_max >= start_ns {
                break;
            }
            if i > 0 && starts_here(c) {
                found = Some(c.byte);
            }
            if let Some((_, last)) = c.span_ns {
                before_max = before_max.max(last);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    /// Clusters of one second at `100 * i` bytes, a key frame in every fifth.
    fn regular(n: i64) -> ClusterIndex {
        let mut index = ClusterIndex::default();
        for i in 0..n {
            index.start(100 * i as u64);
            let key = (i % 5 == 0).then_some(i * S);
            index.frames(i * S, i * S + S / 2, key);
            index.frames(i * S + S / 2, i * S + 9 * S / 10, None);
        }
        index
    }

    #[test]
    fn video_resumes_at_the_cluster_of_the_last_key_frame() {
        let index = regular(20);
        assert_eq!(index.header_end(), Some(0));
        assert_eq!(index.resume_video(12 * S), Some(1_000));
        assert_eq!(
            index.resume_video(10 * S),
            Some(1_000),
            "a key frame at the start"
        );
        assert_eq!(index.resume_video(10 * S - 1), Some(500));
        assert_eq!(index.resume_video(99 * S), Some(1_500));
        // Before the second key frame, nothing is skipped.
        assert_eq!(index.resume_video(4 * S), None);
        assert_eq!(index.resume_video(0), None);
    }

    #[test]
    fn audio_resumes_a_preroll_before_the_start() {
        let index = regular(20);
        assert_eq!(index.resume_audio(12 * S, S / 5), Some(1_100));
        assert_eq!(index.resume_audio(12 * S + S / 10, S / 5), Some(1_100));
        assert_eq!(index.resume_audio(12 * S + S / 5, S / 5), Some(1_200));
        assert_eq!(index.resume_audio(S / 10, S / 5), None);
    }

    #[test]
    fn nothing_that_reaches_the_start_is_skipped() {
        // Timestamps go backwards: the second cluster holds a frame at 30 s.
        let mut index = regular(20);
        index.clusters[1].span_ns = Some((S, 30 * S));
        assert_eq!(index.resume_video(12 * S), None);
        assert_eq!(index.resume_video(40 * S), Some(1_500));
        assert_eq!(index.resume_audio(12 * S, S / 5), Some(100));
    }

    #[test]
    fn a_file_of_very_many_clusters_keeps_a_bounded_index() {
        // A cluster every 10 ms for 10 minutes; a key frame every 10 s.
        let mut index = ClusterIndex::default();
        let ms = 1_000_000;
        for i in 0..60_000i64 {
            index.start(10 * i as u64);
            let key = (i % 1_000 == 0).then_some(i * 10 * ms);
            index.frames(i * 10 * ms, i * 10 * ms + 9 * ms, key);
        }
        assert!(index.clusters().len() <= MAX_CLUSTERS);
        assert!(index.clusters().len() > MAX_CLUSTERS / 4);
        // Still the key frame at 250 s for 255 s: its cluster, merged with a few before it.
        let video = index.resume_video(255_000 * ms).unwrap();
        assert!(
            (249_000..=250_000).contains(&video),
            "video from byte {video}"
        );
        let audio = index.resume_audio(255_000 * ms, 250 * ms).unwrap();
        assert!(
            (254_000..=254_750).contains(&audio),
            "sound from byte {audio}"
        );
    }

    #[test]
    fn clusters_without_frames_or_key_frames_are_passed_over() {
        let mut index = ClusterIndex::default();
        index.frames(0, 5, Some(0)); // outside any cluster: ignored
        index.start(10);
        index.frames(0, S, Some(0));
        index.start(20); // empty
        index.start(30);
        index.frames(2 * S, 3 * S, None);
        index.frames(3 * S, 4 * S, Some(3 * S));
        assert_eq!(index.clusters()[2].key_ns, Some(3 * S));
        assert_eq!(index.clusters()[2].span_ns, Some((2 * S, 4 * S)));
        assert_eq!(index.resume_video(5 * S), Some(30));
        assert_eq!(index.resume_audio(5 * S, S), Some(30));
        assert_eq!(ClusterIndex::default().resume_video(S), None);
        assert_eq!(ClusterIndex::default().header_end(), None);
    }
}
