//! Chapters in an MP4 file: a Nero `chpl` box in `moov/udta` (what ffmpeg, ffprobe and
//! most players list), added after the muxer has written the file.
//!
//! The rewrite of the box tree is pure ([`with_chapters`]: the `moov` box in, a `moov` box
//! with the chapters out, its chunk offsets moved by how much it grew, since the file is
//! fast-start and the media data comes after it); [`add_to_file`] is the edge that rewrites
//! the file around it.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::error::{Error, Result};

/// A chapter: where it starts (ms of the output) and its title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chapter {
    pub start_ms: i64,
    pub title: String,
}

/// The most chapters a `chpl` box holds (its count is one byte).
pub const MAX: usize = 255;

/// `moov` (the whole box, header included) with a `chpl` box of `chapters` in its `udta`
/// (made when missing), every `stco`/`co64` chunk offset moved by the growth, since the
/// media data follows `moov`. `None` when the box tree cannot be read.
pub fn with_chapters(moov: &[u8], chapters: &[Chapter]) -> Option<Vec<u8>> {
    let whole = boxes(moov)?;
    if whole.len() != 1 || &whole[0].kind != b"moov" {
        return None;
    }
    let chpl = chpl(chapters);
    let children = boxes(whole[0].body)?;
    let has_udta = children.iter().any(|b| &b.kind == b"udta");
    let growth = chpl.len() + if has_udta { 0 } else { 8 };
    let mut body = Vec::with_capacity(moov.len() + growth);
    for b in &children {
        match &b.kind {
            b"udta" => {
                let mut udta = b.body.to_vec();
                udta.extend_from_slice(&chpl);
                body.extend(boxed(b"udta", &udta));
            }
            b"trak" => body.extend(boxed(b"trak", &shift_offsets(b.body, growth as u64)?)),
            _ => body.extend_from_slice(b.whole),
        }
    }
    if !has_udta {
        body.extend(boxed(b"udta", &chpl));
    }
    Some(boxed(b"moov", &body))
}

/// Adds `chapters` to the fast-start MP4 file at `path` (rewritten through a sibling
/// temporary file, renamed over it).
pub fn add_to_file(path: &Path, chapters: &[Chapter]) -> Result<()> {
    let bad = |why: &str| Error::Write {
        path: path.to_path_buf(),
        source: std::io::Error::other(format!("adding chapters: {why}")),
    };
    let io = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    // The top-level boxes up to and including `moov` (fast start: before the media data).
    let mut head = Vec::new();
    let mut at = 0u64;
    let moov = loop {
        if at + 8 > len {
            return Err(bad("no moov box"));
        }
        let mut h = [0u8; 8];
        file.seek(SeekFrom::Start(at)).map_err(io)?;
        file.read_exact(&mut h).map_err(io)?;
        let size = u64::from(u32::from_be_bytes([h[0], h[1], h[2], h[3]]));
        if size < 8 || at + size > len {
            return Err(bad("a box whose size runs past the file"));
        }
        if &h[4..8] == b"moov" {
            let mut moov = vec![0u8; size as usize];
            file.seek(SeekFrom::Start(at)).map_err(io)?;
            file.read_exact(&mut moov).map_err(io)?;
            break moov;
        }
        if &h[4..8] == b"mdat" {
            return Err(bad("the media data comes before moov (not fast-start)"));
        }
        let mut b = vec![0u8; size as usize];
        file.seek(SeekFrom::Start(at)).map_err(io)?;
        file.read_exact(&mut b).map_err(io)?;
        head.extend(b);
        at += size;
    };
    let rest_at = at + moov.len() as u64;
    let moov = with_chapters(&moov, chapters).ok_or_else(|| bad("unreadable moov box"))?;
    // Hidden, and ending in `.partial-<pid>`: a run killed here leaves what the next one's
    // sweep removes (see `workdir::sweep_partials`).
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(
        ".{}.chapters.partial-{}",
        name.trim_start_matches('.'),
        std::process::id()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        out.write_all(&head)?;
        out.write_all(&moov)?;
        file.seek(SeekFrom::Start(rest_at))?;
        std::io::copy(&mut file, &mut out)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// The `chpl` box: version 1, a count, then each chapter's start (100 ns units) and title.
fn chpl(chapters: &[Chapter]) -> Vec<u8> {
    let chapters = &chapters[..chapters.len().min(MAX)];
    let mut body = vec![1, 0, 0, 0, 0, 0, 0, 0, chapters.len() as u8];
    for c in chapters {
        body.extend((c.start_ms.max(0) as u64 * 10_000).to_be_bytes());
        let mut title = c.title.as_bytes();
        if title.len() > 255 {
            let mut end = 255;
            while !c.title.is_char_boundary(end) {
                end -= 1;
            }
            title = &title[..end];
        }
        body.push(title.len() as u8);
        body.extend_from_slice(title);
    }
    boxed(b"chpl", &body)
}

struct Atom<'a> {
    kind: [u8; 4],
    whole: &'a [u8],
    body: &'a [u8],
}

/// The boxes one after another in `data` (32-bit sizes; `None` if one runs past the end).
fn boxes(data: &[u8]) -> Option<Vec<Atom<'_>>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= data.len() {
        let size = u32::from_be_bytes(data[at..at + 4].try_into().ok()?) as usize;
        if size < 8 || at + size > data.len() {
            return None;
        }
        out.push(Atom {
            kind: data[at + 4..at + 8].try_into().ok()?,
            whole: &data[at..at + size],
            body: &data[at + 8..at + size],
        });
        at += size;
    }
    (at == data.len()).then_some(out)
}

fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(body.len() + 8);
    b.extend(((body.len() + 8) as u32).to_be_bytes());
    b.extend_from_slice(kind);
    b.extend_from_slice(body);
    b
}

/// A container's body with every chunk offset below it moved by `by`.
fn shift_offsets(body: &[u8], by: u64) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len());
    for b in boxes(body)? {
        match &b.kind {
            b"mdia" | b"minf" | b"stbl" => {
                out.extend(boxed(&b.kind, &shift_offsets(b.body, by)?));
            }
            b"stco" | b"co64" => {
                let wide = &b.kind == b"co64";
                let mut t = b.body.to_vec();
                let n = u32::from_be_bytes(t.get(4..8)?.try_into().ok()?) as usize;
                let w = if wide { 8 } else { 4 };
                if t.len() < 8 + n * w {
                    return None;
                }
                for k in 0..n {
                    let at = 8 + k * w;
                    if wide {
                        let v = u64::from_be_bytes(t[at..at + 8].try_into().ok()?) + by;
                        t[at..at + 8].copy_from_slice(&v.to_be_bytes());
                    } else {
                        let v = u32::from_be_bytes(t[at..at + 4].try_into().ok()?);
                        let v = u32::try_from(u64::from(v) + by).ok()?;
                        t[at..at + 4].copy_from_slice(&v.to_be_bytes());
                    }
                }
                out.extend(boxed(&b.kind, &t));
            }
            _ => out.extend_from_slice(b.whole),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stco(offsets: &[u32]) -> Vec<u8> {
        let mut b = vec![0, 0, 0, 0];
        b.extend((offsets.len() as u32).to_be_bytes());
        for o in offsets {
            b.extend(o.to_be_bytes());
        }
        boxed(b"stco", &b)
    }

    fn moov(with_udta: bool) -> Vec<u8> {
        let stbl = boxed(b"stbl", &stco(&[1_000, 2_000]));
        let trak = boxed(b"trak", &boxed(b"mdia", &boxed(b"minf", &stbl)));
        let mut body = boxed(b"mvhd", &[0; 20]);
        body.extend(trak);
        if with_udta {
            body.extend(boxed(b"udta", &boxed(b"meta", &[1, 2, 3])));
        }
        boxed(b"moov", &body)
    }

    /// The chunk offsets of the first track, and the chapters' box.
    fn read(moov: &[u8]) -> (Vec<u32>, Vec<u8>) {
        let top = boxes(&moov[8..]).unwrap();
        let trak = top.iter().find(|b| &b.kind == b"trak").unwrap();
        let mut body = trak.body;
        for kind in [b"mdia", b"minf", b"stbl", b"stco"] {
            body = boxes(body)
                .unwrap()
                .into_iter()
                .find(|b| &b.kind == kind)
                .unwrap()
                .body;
        }
        let offsets = body[8..]
            .chunks(4)
            .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
            .collect();
        let udta = top.iter().find(|b| &b.kind == b"udta").unwrap();
        let chpl = boxes(udta.body)
            .unwrap()
            .into_iter()
            .find(|b| &b.kind == b"chpl")
            .unwrap();
        (offsets, chpl.whole.to_vec())
    }

    #[test]
    fn chapters_go_in_udta_and_the_offsets_follow() {
        let chapters = [
            Chapter {
                start_ms: 0,
                title: "Ana".into(),
            },
            Chapter {
                start_ms: 8_200,
                title: "Ben".into(),
            },
        ];
        for with_udta in [false, true] {
            let old = moov(with_udta);
            let new = with_chapters(&old, &chapters).unwrap();
            let growth = (new.len() - old.len()) as u32;
            let (offsets, chpl) = read(&new);
            assert_eq!(offsets, [1_000 + growth, 2_000 + growth]);
            // version 1, flags, 4 reserved bytes, 2 chapters, 8-byte starts in 100 ns.
            assert_eq!(&chpl[8..17], &[1, 0, 0, 0, 0, 0, 0, 0, 2]);
            assert_eq!(&chpl[17..25], &0u64.to_be_bytes());
            assert_eq!(&chpl[25..29], &[3, b'A', b'n', b'a']);
            assert_eq!(&chpl[29..37], &82_000_000u64.to_be_bytes());
        }
        assert!(with_chapters(&[0, 0, 0, 9, b'm', b'o', b'o', b'v'], &chapters).is_none());
    }
}
