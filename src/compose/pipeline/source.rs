//! Where a demuxer's bytes come from: the file, a ZIP's stored entry read where it lies, or a
//! file resumed at a cluster with `--from` (its header, then the file from that cluster).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::*;

/// The source for a demuxer of `file` whose window starts at `start_ns` (video's or
/// sound's), and whether it starts in the middle of the file.
pub(super) fn open(file: &MediaFile, video: bool, start_ns: i64) -> Result<(gst::Element, bool)> {
    let resumed = resumed_pieces(file, video, start_ns);
    let is_resumed = resumed.is_some();
    let src = match (resumed, file.range) {
        (Some(pieces), _) => pieces_source(&file.path, pieces, &file.id())?,
        (None, Some((offset, length))) => {
            pieces_source(&file.path, vec![Piece::File { offset, length }], &file.id())?
        }
        (None, None) => {
            let src = make("filesrc")?;
            src.set_property("location", file.path.to_string_lossy().to_string());
            src
        }
    };
    Ok((src, is_resumed))
}

/// The largest header (the bytes before the first cluster) read into memory to resume a
/// file; a file with a larger one is read whole.
const MAX_HEADER: u64 = 16 << 20;

/// What a demuxer whose window starts at `start_ns` reads of `file`: its header made fit for
/// resuming, then the file from the cluster to resume at (see [`crate::compose::resume`]).
/// `None`: the whole file (nothing before the start to skip, no cluster index, or a header
/// this cannot rewrite).
pub(super) fn resumed_pieces(file: &MediaFile, video: bool, start_ns: i64) -> Option<Vec<Piece>> {
    use std::os::unix::fs::FileExt;
    if start_ns <= 0 {
        return None;
    }
    let clusters = file.clusters.as_deref()?;
    let header_end = clusters.header_end()?;
    let at = if video {
        clusters.resume_video(start_ns)
    } else {
        clusters.resume_audio(start_ns, crate::compose::resume::AUDIO_PREROLL_NS)
    }?;
    let (base, length) = match file.range {
        Some(range) => range,
        None => (0, std::fs::metadata(&file.path).ok()?.len()),
    };
    if header_end > MAX_HEADER || at <= header_end || at >= length {
        return None;
    }
    let mut header = vec![0; usize::try_from(header_end).ok()?];
    let source = std::fs::File::open(&file.path).ok()?;
    source.read_exact_at(&mut header, base).ok()?;
    let header = crate::compose::resume::header_for_resuming(&header)?;
    Some(vec![
        Piece::Bytes(header),
        Piece::File {
            offset: base + at,
            length: length - at,
        },
    ])
}

/// Part of what a [`pieces_source`] serves.
pub(super) enum Piece {
    Bytes(Vec<u8>),
    /// `length` bytes of the file from `offset`.
    File {
        offset: u64,
        length: u64,
    },
}

impl Piece {
    pub(super) fn len(&self) -> u64 {
        match self {
            Piece::Bytes(b) => b.len() as u64,
            Piece::File { length, .. } => *length,
        }
    }
}

/// Fills `out` with the pieces' bytes from position `at` of their concatenation (which must
/// hold them).
fn read_pieces(
    pieces: &[Piece],
    file: &std::fs::File,
    mut at: u64,
    mut out: &mut [u8],
) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    for piece in pieces {
        if out.is_empty() {
            break;
        }
        let len = piece.len();
        if at >= len {
            at -= len;
            continue;
        }
        let n = (len - at).min(out.len() as u64) as usize;
        let (now, rest) = out.split_at_mut(n);
        match piece {
            Piece::Bytes(b) => now.copy_from_slice(&b[at as usize..at as usize + n]),
            Piece::File { offset, .. } => file.read_exact_at(now, offset + at)?,
        }
        out = rest;
        at = 0;
    }
    if out.is_empty() {
        Ok(())
    } else {
        Err(std::io::ErrorKind::UnexpectedEof.into())
    }
}

const RANGE_SOURCE: &str = "mosaic-range:";

/// An `appsrc` serving `pieces` (of `path`, or bytes of their own) one after another, with
/// random access (the demuxer pulls and seeks as in a file): a ZIP's stored entry read
/// where it lies, or a file resumed at a cluster.
pub(super) fn pieces_source(path: &Path, pieces: Vec<Piece>, id: &Path) -> Result<gst::Element> {
    let file = std::fs::File::open(path).map_err(|source| Error::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let length: u64 = pieces.iter().map(Piece::len).sum();
    let position = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seek_to = position.clone();
    let src = gst_app::AppSrc::builder()
        .name(format!(
            "{RANGE_SOURCE}{}#{}",
            id.display(),
            uuid::Uuid::new_v4().simple()
        ))
        .stream_type(gst_app::AppStreamType::RandomAccess)
        .format(gst::Format::Bytes)
        .size(i64::try_from(length).unwrap_or(i64::MAX))
        .build();
    src.set_callbacks(
        gst_app::AppSrcCallbacks::builder()
            .need_data(move |appsrc, wanted| {
                let at = position.load(Ordering::Relaxed);
                let n = u64::from(wanted).min(length.saturating_sub(at)) as usize;
                if n == 0 {
                    let _ = appsrc.end_of_stream();
                    return;
                }
                let mut data = vec![0u8; n];
                match read_pieces(&pieces, &file, at, &mut data) {
                    Ok(()) => {
                        position.store(at + n as u64, Ordering::Relaxed);
                        let mut buffer = gst::Buffer::from_mut_slice(data);
                        if let Some(b) = buffer.get_mut() {
                            b.set_offset(at);
                        }
                        let _ = appsrc.push_buffer(buffer);
                    }
                    Err(e) => gst::element_error!(
                        appsrc,
                        gst::ResourceError::Read,
                        ("reading {} bytes at {}: {e}", n, at)
                    ),
                }
            })
            .seek_data(move |_, to| {
                seek_to.store(to, Ordering::Relaxed);
                true
            })
            .build(),
    );
    Ok(src.upcast())
}

/// The media file id a range source reads, from its name.
pub(super) fn range_source_id(element: &gst::Element) -> Option<PathBuf> {
    let name = element.name();
    // A source that feeds sound has the sound's prefix in front (see `mark_sound`).
    let name = name.strip_prefix(SOUND).unwrap_or(&name);
    let rest = name.strip_prefix(RANGE_SOURCE)?;
    Some(PathBuf::from(rest.rsplit_once('#')?.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_source_names_its_file_also_when_it_feeds_sound() {
        gst::init().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("archive.zip");
        std::fs::write(&path, [0u8; 64]).unwrap();
        let id = PathBuf::from("archive.zip@16");
        let piece = Piece::File {
            offset: 16,
            length: 32,
        };
        let src = pieces_source(&path, vec![piece], &id).unwrap();
        assert_eq!(range_source_id(&src), Some(id.clone()));
        mark_sound(&src);
        assert!(src.name().starts_with(SOUND));
        assert_eq!(range_source_id(&src), Some(id));
        let other = make("fakesrc").unwrap();
        assert_eq!(range_source_id(&other), None);
    }

    #[test]
    fn pieces_are_read_across_their_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        std::fs::write(&path, (0u8..100).collect::<Vec<u8>>()).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let pieces = [
            Piece::Bytes(vec![200, 201, 202]),
            Piece::File {
                offset: 50,
                length: 5,
            },
            Piece::Bytes(vec![]),
            Piece::File {
                offset: 10,
                length: 2,
            },
        ];
        let read = |at: u64, n: usize| {
            let mut out = vec![0; n];
            read_pieces(&pieces, &file, at, &mut out).map(|()| out)
        };
        assert_eq!(
            read(0, 10).unwrap(),
            [200, 201, 202, 50, 51, 52, 53, 54, 10, 11]
        );
        assert_eq!(read(2, 3).unwrap(), [202, 50, 51]);
        assert_eq!(read(7, 2).unwrap(), [54, 10]);
        assert_eq!(read(9, 1).unwrap(), [11]);
        assert!(read(9, 2).is_err(), "past the end");
        assert!(read(10, 1).is_err());
    }
}
