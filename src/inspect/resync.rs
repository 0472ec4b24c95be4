//! Finding the way back into a damaged Matroska file: a reader that remembers what it has
//! recently handed out, and the search for the next element reading can resume at.
//!
//! The tag reader reads ahead, so when it meets damage the bytes just after the damage are
//! already in its buffer. [`Tap`] keeps the last [`HISTORY`] bytes it passed on, so the search
//! can start right after the last good element; what follows the element found is handed to
//! a new tag reader first, then the rest of the stream.
//!
//! Reading resumes at the first element that can be trusted, whichever comes first:
//! - a **block** (a `SimpleBlock`, or a `BlockGroup` whose `Block` comes first) of a track the
//!   file declares, with a size that fits, a payload that parses as a block (lacing and all),
//!   a relative time the cluster can hold, and followed by the start of another element that
//!   can follow a block (a block of a known track, a Cluster, Cues, Tags, Void) or by the end
//!   of the file: damage costs its own blocks, not the rest of the cluster;
//! - a **Cluster**: as ffmpeg's demuxer does, its ID followed by a valid size and a
//!   Timestamp element.

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
const SIMPLE_BLOCK: u8 = 0xA3;
const BLOCK_GROUP: u8 = 0xA0;
const BLOCK: u8 = 0xA1;
/// Level-1 elements that may follow the last block of a cluster (Cues, Tags).
const AFTER_CLUSTERS: [[u8; 4]; 2] = [[0x1C, 0x53, 0xBB, 0x6B], [0x12, 0x54, 0xC3, 0x67]];
/// Void, which may sit anywhere.
const VOID: u8 = 0xEC;
/// The largest block the search resumes at (a key frame of a call is far smaller).
const MAX_BLOCK: u64 = 8 << 20;

/// What the search knows of the file: the tracks it declares, each with the earliest
/// relative time of its last blocks read in the current cluster (a block found after damage
/// is not far before it).
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub tracks: Vec<(u64, Option<i16>)>,
}

impl Context {
    /// Whether `track` is declared and `time` is a relative time its next block may have.
    fn fits(&self, track: u64, time: i16) -> bool {
        self.tracks.iter().any(|&(t, floor)| {
            t == track && i32::from(time) >= floor.map_or(-1000, |f| i32::from(f) - 1000)
        })
    }

    fn knows(&self, track: u64) -> bool {
        self.tracks.iter().any(|&(t, _)| t == track)
    }
}

/// Where reading resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    Cluster(u64),
    Block(u64),
}

impl Resume {
    pub fn offset(self) -> u64 {
        match self {
            Resume::Cluster(o) | Resume::Block(o) => o,
        }
    }
}

/// What one position holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Cluster,
    Block,
    No,
    /// More bytes are needed to tell.
    More,
}

/// An EBML size at the start of `b`: (value, length); `None` when invalid or unknown.
fn size_at(b: &[u8]) -> Option<Option<(u64, usize)>> {
    let Some(&first) = b.first() else {
        return Some(None);
    };
    let len = first.leading_zeros() as usize + 1;
    if len > 8 {
        return None;
    }
    let Some(bytes) = b.get(..len) else {
        return Some(None);
    };
    let mut value = u64::from(first) & (0xff >> len);
    for &x in &bytes[1..] {
        value = (value << 8) | u64::from(x);
    }
    // All ones is "unknown size": no block has it.
    if value == (1u64 << (7 * len)) - 1 {
        return None;
    }
    Some(Some((value, len)))
}

/// Whether `b` starts with a Cluster that can be trusted.
fn cluster_at(b: &[u8]) -> Verdict {
    if b.len() < 4 {
        return if CLUSTER.starts_with(b) {
            Verdict::More
        } else {
            Verdict::No
        };
    }
    if b[..4] != CLUSTER {
        return Verdict::No;
    }
    let Some(&size_first) = b.get(4) else {
        return Verdict::More;
    };
    let size_len = size_first.leading_zeros() as usize + 1;
    if size_len > 8 {
        return Verdict::No;
    }
    match b.get(4 + size_len) {
        None => Verdict::More,
        Some(&TIMESTAMP) => Verdict::Cluster,
        Some(_) => Verdict::No,
    }
}

/// Whether a block's payload reads as a block of a known track at a plausible time.
fn block_plausible(payload: &[u8], ctx: &Context) -> bool {
    let Ok(block) = super::block::parse(payload) else {
        return false;
    };
    ctx.fits(block.track, block.timestamp)
}

/// Whether what starts `b` may follow a block: another block's start (ID, size, a known
/// track), a Cluster, Cues, Tags or Void; `eof`: whether `b` runs to the end of the file.
fn follows_a_block(b: &[u8], ctx: &Context, eof: bool) -> Verdict {
    let Some(&id) = b.first() else {
        return if eof { Verdict::Block } else { Verdict::More };
    };
    let more = if eof { Verdict::No } else { Verdict::More };
    match id {
        SIMPLE_BLOCK | BLOCK_GROUP | VOID => {
            let Some(size) = size_at(&b[1..]) else {
                return Verdict::No;
            };
            let Some((_, len)) = size else {
                return more;
            };
            if id == VOID {
                return Verdict::Block;
            }
            // A SimpleBlock's track, or a BlockGroup's Block and its track.
            let track_at = if id == SIMPLE_BLOCK {
                1 + len
            } else {
                let Some(&child) = b.get(1 + len) else {
                    return more;
                };
                if child != BLOCK {
                    return Verdict::No;
                }
                match size_at(&b[2 + len..]) {
                    None => return Verdict::No,
                    Some(None) => return more,
                    Some(Some((_, l))) => 2 + len + l,
                }
            };
            let Some(&track) = b.get(track_at) else {
                return more;
            };
            let known = ctx.knows(u64::from(track & 0x7f)) && track & 0x80 != 0;
            if known { Verdict::Block } else { Verdict::No }
        }
        _ => {
            if b.len() < 4 {
                let prefix_of = |id: &[u8; 4]| id.starts_with(b);
                return if !eof && (prefix_of(&CLUSTER) || AFTER_CLUSTERS.iter().any(prefix_of)) {
                    Verdict::More
                } else {
                    Verdict::No
                };
            }
            match cluster_at(b) {
                Verdict::Cluster => Verdict::Block,
                Verdict::More => more,
                _ if AFTER_CLUSTERS.iter().any(|id| b[..4] == *id) => Verdict::Block,
                _ => Verdict::No,
            }
        }
    }
}

/// A block's track and relative time from the first bytes of its payload, if they are
/// there and read as such.
fn block_header(payload: &[u8]) -> Option<(u64, i16)> {
    let &first = payload.first()?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 {
        return None;
    }
    let bytes = payload.get(..len + 2)?;
    let mut track = u64::from(first) & (0xff >> len);
    for &x in &bytes[1..len] {
        track = (track << 8) | u64::from(x);
    }
    Some((track, i16::from_be_bytes([bytes[len], bytes[len + 1]])))
}

/// Whether a block element that can be trusted starts `b` (see the module docs).
fn block_at(b: &[u8], ctx: &Context, eof: bool) -> Verdict {
    let Some(&id) = b.first() else {
        return Verdict::More;
    };
    if id != SIMPLE_BLOCK && id != BLOCK_GROUP {
        return Verdict::No;
    }
    let more = if eof { Verdict::No } else { Verdict::More };
    let (size, len) = match size_at(&b[1..]) {
        None => return Verdict::No,
        Some(None) => return more,
        Some(Some(s)) => s,
    };
    if !(4..=MAX_BLOCK).contains(&size) {
        return Verdict::No;
    }
    let start = 1 + len;
    let end = start + size as usize;
    // Where the block's own payload starts (a BlockGroup: inside its Block, which comes first).
    let (payload_at, payload_len) = if id == SIMPLE_BLOCK {
        (start, size)
    } else {
        match b.get(start) {
            None => return more,
            Some(&BLOCK) => {}
            Some(_) => return Verdict::No,
        }
        match size_at(&b[start + 1..]) {
            None => return Verdict::No,
            Some(None) => return more,
            Some(Some((inner, l))) if inner + 1 + l as u64 <= size => (start + 1 + l, inner),
            Some(Some(_)) => return Verdict::No,
        }
    };
    // Cheap checks first, so that noise does not make the search read far ahead.
    match block_header(&b[payload_at..]) {
        None if b.len() < payload_at + 10 => return more,
        None => return Verdict::No,
        Some((track, time)) if !ctx.fits(track, time) => return Verdict::No,
        Some(_) => {}
    }
    let Some(payload) = b.get(payload_at..payload_at + payload_len as usize) else {
        return more;
    };
    if end > b.len() {
        return more;
    }
    if !block_plausible(payload, ctx) {
        return Verdict::No;
    }
    follows_a_block(&b[end..], ctx, eof)
}

/// What the search found in a window of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// An element to resume at, at this index.
    At(usize, bool),
    /// Nothing before this index; more bytes are needed to judge what starts there.
    NeedMore(usize),
}

/// The first position at or after `from` in `bytes` where reading can resume (pure): a
/// trustworthy Cluster (`true`) or block (`false`). `eof`: `bytes` runs to the end of the
/// file.
pub fn find_resume(bytes: &[u8], from: usize, ctx: &Context, eof: bool) -> Found {
    for i in from..bytes.len() {
        let rest = &bytes[i..];
        let verdict = match rest[0] {
            0x1F => cluster_at(rest),
            SIMPLE_BLOCK | BLOCK_GROUP => block_at(rest, ctx, eof),
            _ => Verdict::No,
        };
        match verdict {
            Verdict::Cluster => return Found::At(i, true),
            Verdict::Block => return Found::At(i, false),
            Verdict::More if !eof => return Found::NeedMore(i),
            _ => {}
        }
    }
    Found::NeedMore(bytes.len())
}

/// The offset of the first trustworthy Cluster in `bytes` (pure).
pub fn find_cluster(bytes: &[u8]) -> Option<usize> {
    (0..bytes.len()).find(|&i| cluster_at(&bytes[i..]) == Verdict::Cluster)
}

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

    /// Where the element that starts at file offset `at` ends (`header_only`: where its
    /// header ends), read from what was passed on; `None` when that is no longer held or
    /// does not read as an element.
    pub fn element_end(&self, at: u64, header_only: bool) -> Option<u64> {
        let history_start = self.pos - self.history.len() as u64;
        let skip = usize::try_from(at.checked_sub(history_start)?).ok()?;
        let head: Vec<u8> = self.history.iter().skip(skip).take(12).copied().collect();
        let id_len = head.first()?.leading_zeros() as usize + 1;
        if id_len > 4 {
            return None;
        }
        let size_len = head.get(id_len)?.leading_zeros() as usize + 1;
        if size_len > 8 || head.len() < id_len + size_len {
            return None;
        }
        let header = at + (id_len + size_len) as u64;
        if header_only {
            return Some(header);
        }
        // A whole element of unknown size cannot be measured.
        let (size, _) = size_at(&head[id_len..])??;
        header.checked_add(size)
    }

    /// Positions the reader at the first element at or after file offset `from` that
    /// reading can resume at (see the module docs); `None` when the file ends first.
    pub fn resync(&mut self, from: u64, ctx: &Context) -> std::io::Result<Option<Resume>> {
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
        let mut eof = false;
        let mut checked = 0;
        loop {
            match find_resume(&window, checked, ctx, eof) {
                Found::At(i, cluster) => {
                    let rest = std::mem::replace(&mut self.inner, Box::new(std::io::empty()));
                    self.inner = Box::new(Cursor::new(window.split_off(i)).chain(rest));
                    self.pos = window_start + i as u64;
                    return Ok(Some(if cluster {
                        Resume::Cluster(self.pos)
                    } else {
                        Resume::Block(self.pos)
                    }));
                }
                Found::NeedMore(_) if eof => {
                    self.pos = window_start + window.len() as u64;
                    return Ok(None);
                }
                Found::NeedMore(i) => {
                    // Nothing can start before `i`: drop it, read on.
                    window.drain(..i);
                    window_start += i as u64;
                    checked = 0;
                }
            }
            let n = loop {
                match self.inner.read(&mut chunk) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            if n == 0 {
                eof = true;
            }
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

    /// A SimpleBlock of track `track` at relative time `time` with `len` payload bytes.
    fn simple_block(track: u8, time: i16, len: usize) -> Vec<u8> {
        let mut v = vec![SIMPLE_BLOCK, 0x80 | (4 + len) as u8, 0x80 | track];
        v.extend_from_slice(&time.to_be_bytes());
        v.push(0x80);
        v.extend(std::iter::repeat_n(0x5a, len));
        v
    }

    fn ctx() -> Context {
        Context {
            tracks: vec![(1, Some(100)), (2, None)],
        }
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
        assert_eq!(find_resume(&bytes, 0, &ctx(), true), Found::At(at, true));
    }

    #[test]
    fn finds_the_next_block_that_reads_and_is_followed_by_an_element() {
        let mut bytes = vec![7u8; 50];
        // Look-alikes: an unknown track, a time far before the cluster's, a size that runs
        // into noise (what follows is no element), then the real blocks.
        bytes.extend(simple_block(9, 120, 10));
        bytes.extend(simple_block(1, -5000, 10));
        let mut lying = simple_block(1, 130, 10);
        lying[1] = 0x80 | 8;
        bytes.extend(lying);
        bytes.extend([0x11; 7]);
        let at = bytes.len();
        bytes.extend(simple_block(1, 140, 20));
        bytes.extend(simple_block(2, 150, 20));
        assert_eq!(find_resume(&bytes, 0, &ctx(), true), Found::At(at, false));
        // Cut inside the first real block: more bytes are needed to judge it.
        assert_eq!(
            find_resume(&bytes[..at + 10], 0, &ctx(), false),
            Found::NeedMore(at)
        );
        // At the end of the file, a last block followed by nothing is trusted.
        let last = bytes.len() - 26;
        assert_eq!(
            find_resume(&bytes, at + 1, &ctx(), true),
            Found::At(last, false)
        );
        // A block followed by a Cluster, and a BlockGroup.
        let mut group = vec![BLOCK_GROUP, 0x80 | 29, BLOCK, 0x80 | 24];
        group.extend(&simple_block(2, 160, 20)[2..]);
        group.extend([0xFB, 0x81, 0x00]); // ReferenceBlock
        let mut more = group.clone();
        more.extend(cluster(&[0x90]));
        assert_eq!(find_resume(&more, 0, &ctx(), true), Found::At(0, false));
        assert_eq!(
            find_resume(&more, 1, &ctx(), true),
            Found::At(group.len(), true)
        );
        assert_eq!(
            find_resume(&[0x55; 300], 0, &ctx(), true),
            Found::NeedMore(300)
        );
    }

    #[test]
    fn resyncs_from_history_and_across_reads() {
        // A file: 70 KiB of noise, a cluster, more noise; read in part before resyncing.
        let mut file = vec![0x55u8; 70 << 10];
        let at = file.len() as u64;
        file.extend(cluster(&[0x90]));
        file.extend(vec![0x33u8; 1000]);
        let mut tap = Tap::new(Cursor::new(file.clone()));
        let mut buf = vec![0u8; 10 << 10];
        tap.read_exact(&mut buf).unwrap();
        assert_eq!(tap.resync(100, &ctx()).unwrap(), Some(Resume::Cluster(at)));
        let mut rest = Vec::new();
        tap.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, file[at as usize..]);
        // And when the cluster was already read (it is in the history).
        let mut tap = Tap::new(Cursor::new(file.clone()));
        let mut all = Vec::new();
        tap.read_to_end(&mut all).unwrap();
        assert_eq!(
            tap.resync(60 << 10, &ctx()).unwrap(),
            Some(Resume::Cluster(at))
        );
        assert_eq!(tap.resync(at + 1, &ctx()).unwrap(), None);
        // A block across two reads (64 KiB each).
        let mut file = vec![0x55u8; (64 << 10) - 5];
        let at = file.len() as u64;
        file.extend(simple_block(2, 200, 100));
        file.extend(simple_block(1, 210, 100));
        let mut tap = Tap::new(Cursor::new(file.clone()));
        assert_eq!(tap.resync(0, &ctx()).unwrap(), Some(Resume::Block(at)));
        let mut rest = Vec::new();
        tap.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, file[at as usize..]);
    }

    #[test]
    fn measures_elements_it_passed_on() {
        let mut file = cluster(&[0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]); // unknown size
        let block = file.len() as u64;
        file.extend(simple_block(1, 0, 10));
        let mut tap = Tap::new(Cursor::new(file.clone()));
        tap.read_to_end(&mut Vec::new()).unwrap();
        assert_eq!(tap.element_end(0, true), Some(12));
        assert_eq!(tap.element_end(0, false), None, "unknown size");
        assert_eq!(tap.element_end(12, false), Some(15), "the Timestamp");
        assert_eq!(tap.element_end(block, false), Some(block + 16));
    }
}
