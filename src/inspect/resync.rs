//! Finding the way back into a damaged Matroska file: a reader that remembers what it has
//! recently handed out, and the search for the next Cluster after a damaged region.
//!
//! The tag reader reads ahead, so when it meets damage the bytes just after the damage are
//! already in its buffer. [`Tap`] keeps the last [`HISTORY`] bytes it passed on, so the search
//! can start right after the last good element; what follows the Cluster found is handed to a
//! new tag reader first, then the rest of the stream. As ffmpeg's demuxer does, a Cluster is
//! only trusted when its ID is followed by a valid size and a Timestamp element.

use std::collections::VecDeque;
use std::io::{Cursor, Read};

/// How far back the search can start: more than the tag reader ever buffers ahead of a
/// damaged element (64 KiB, or one buffered element, at most [`super::matroska`]'s tag limit
/// for a block group; larger ones are rare and only lose what lies between).
pub const HISTORY: usize = 8 << 20;

/// The Cluster element ID.
const CLUSTER: [u8; 4] = [0x1F, 0x43, 0xB6, 0x75];
/// The Timestamp element ID, a Cluster's first child.
const TIMESTAMP: u8 = 0xE7;
/// A candidate needs this many bytes to be checked: ID, the longest size, one byte more.
const CANDIDATE_LEN: usize = 4 + 8 + 1;

/// A reader that counts what it passes on and remembers the last [`HISTORY`] bytes of it.
pub struct Tap<'a> {
    inner: Box<dyn Read + 'a>,
    /// Offset in the file of the next byte to read.
    pos: u64,
    history: VecDeque<u8>,
}

impl<'a> Tap<'a> {
    pub fn new(inner: impl Read + 'a) -> Tap<'a> {
        Tap {
            inner: Box::new(inner),
            pos: 0,
            history: VecDeque::new(),
        }
    }

    /// Offset in the file of the next byte to read.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Positions the reader at the first trustworthy Cluster at or after file offset
    /// `from` and returns its offset; `None` when the file ends first.
    pub fn seek_cluster(&mut self, from: u64) -> std::io::Result<Option<u64>> {
        let history_start = self.pos - self.history.len() as u64;
        let skip = from
            .saturating_sub(history_start)
            .min(self.history.len() as u64) as usize;
        let mut window: Vec<u8> = self.history.iter().skip(skip).copied().collect();
        let mut window_start = history_start + skip as u64;
        self.history.clear();
        // A start beyond what was read: skip to it.
        let ahead = from.saturating_sub(self.pos);
        let skipped = std::io::copy(&mut (&mut self.inner).take(ahead), &mut std::io::sink())?;
        self.pos += skipped;
        if skipped > 0 {
            window_start = self.pos;
        }
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            if let Some(i) = find_cluster(&window) {
                let rest = std::mem::replace(&mut self.inner, Box::new(std::io::empty()));
                self.inner = Box::new(Cursor::new(window.split_off(i)).chain(rest));
                self.pos = window_start + i as u64;
                return Ok(Some(self.pos));
            }
            let n = loop {
                match self.inner.read(&mut chunk) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            if n == 0 {
                self.pos = window_start + window.len() as u64;
                return Ok(None);
            }
            // Keep enough of the old window for a candidate that straddles the two reads.
            let keep_from = window.len().saturating_sub(CANDIDATE_LEN);
            window.drain(..keep_from);
            window_start += keep_from as u64;
            window.extend_from_slice(&chunk[..n]);
        }
    }
}

impl Read for Tap<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        let new = &buf[..n];
        if new.len() >= HISTORY {
            self.history.clear();
            self.history.extend(&new[new.len() - HISTORY..]);
        } else {
            let overflow = (self.history.len() + new.len()).saturating_sub(HISTORY);
            self.history.drain(..overflow);
            self.history.extend(new);
        }
        Ok(n)
    }
}

/// The offset of the first trustworthy Cluster in `bytes`: its ID, a valid size, and a
/// Timestamp element right after (pure). Candidates too near the end to check are left for
/// the next window.
pub fn find_cluster(bytes: &[u8]) -> Option<usize> {
    let last = bytes.len().checked_sub(CANDIDATE_LEN)?;
    (0..=last).find(|&i| {
        if bytes[i..i + 4] != CLUSTER {
            return false;
        }
        let size_first = bytes[i + 4];
        let size_len = size_first.leading_zeros() as usize + 1;
        size_len <= 8 && bytes[i + 4 + size_len] == TIMESTAMP
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(size: &[u8]) -> Vec<u8> {
        let mut v = CLUSTER.to_vec();
        v.extend_from_slice(size);
        v.extend_from_slice(&[TIMESTAMP, 0x81, 0x00]);
        v.extend_from_slice(&[0; 16]);
        v
    }

    #[test]
    fn finds_only_clusters_with_a_timestamp() {
        let mut bytes = vec![7u8; 100];
        bytes.extend_from_slice(&CLUSTER); // an ID with no valid cluster behind it
        bytes.extend_from_slice(&[0x81, 0x42, 0, 0, 0, 0, 0, 0, 0, 0]);
        let at = bytes.len();
        bytes.extend(cluster(&[0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
        assert_eq!(find_cluster(&bytes), Some(at));
        assert_eq!(find_cluster(&cluster(&[0x85])), Some(0));
        assert_eq!(find_cluster(&[0u8; 3]), None);
    }

    #[test]
    fn seeks_from_history_and_across_reads() {
        // A file: 70 KiB of noise, a cluster, more noise; read in part before seeking.
        let mut file = vec![0x55u8; 70 << 10];
        let at = file.len() as u64;
        file.extend(cluster(&[0x90]));
        file.extend(vec![0x33u8; 1000]);
        let mut tap = Tap::new(Cursor::new(file.clone()));
        let mut buf = vec![0u8; 10 << 10];
        tap.read_exact(&mut buf).unwrap();
        assert_eq!(tap.seek_cluster(100).unwrap(), Some(at));
        let mut rest = Vec::new();
        tap.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, file[at as usize..]);
        // And when the cluster was already read (it is in the history).
        let mut tap = Tap::new(Cursor::new(file.clone()));
        let mut all = Vec::new();
        tap.read_to_end(&mut all).unwrap();
        assert_eq!(tap.seek_cluster(60 << 10).unwrap(), Some(at));
        assert_eq!(tap.seek_cluster(at + 1).unwrap(), None);
    }
}
