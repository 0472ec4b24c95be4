//! HLS output (`--format hls`, `-o call.m3u8`): MPEG-TS segments beside an `.m3u8` playlist.
//!
//! Why MPEG-TS and not CMAF/fMP4: Debian 12's GStreamer has `mpegtsmux` and `splitmuxsink`
//! but no CMAF muxer (`cmafmux` is gst-plugins-rs' fmp4, not packaged there); every HLS
//! client plays TS (hls.js remuxes it for the browser); and each TS segment stands alone, so
//! a segment is playable the moment it is closed, whichever worker wrote it.
//!
//! Each segment is written under a hidden temporary name and renamed when `splitmuxsink`
//! closes it; the playlist is rewritten (atomically) after every segment as an EVENT
//! playlist, so a player can start on the first minutes while the rest is composed, and
//! ends with `#EXT-X-ENDLIST` when the last is done. A run that fails removes its playlist
//! and segments: nothing is left that looks finished.
//!
//! A chunk composed alone (a service's chunk job, [`HlsOutput::for_chunk`]) writes only its
//! segments: the playlist is its job's, written by whoever can list more of it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};

/// The segments' target length: a key frame every this long, a segment at each.
pub const SEGMENT_SECS: u32 = 6;

/// One finished segment, as the playlist lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// The file's name, beside the playlist.
    pub name: String,
    /// Its place on the output's timeline (ns): the playlist keeps them in this order.
    pub start_ns: u64,
    pub end_ns: u64,
}

/// The playlist of `segments` (in order): an EVENT playlist, ended when `ended`.
pub fn render(segments: &[Segment], ended: bool) -> String {
    let secs = |s: &Segment| (s.end_ns.saturating_sub(s.start_ns)) as f64 / 1e9;
    let target = segments
        .iter()
        .map(|s| secs(s).ceil() as u64)
        .max()
        .unwrap_or(u64::from(SEGMENT_SECS))
        .max(1);
    let mut out = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n"
    );
    for s in segments {
        out.push_str(&format!("#EXTINF:{:.6},\n{}\n", secs(s), s.name));
    }
    if ended {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    out
}

/// The segments of the output timeline's contiguous start: a chunked compose's chunks may
/// finish out of order, and the playlist lists only what a player can play through.
pub fn playable(segments: &[Segment]) -> Vec<Segment> {
    let mut sorted = segments.to_vec();
    sorted.sort_by_key(|s| s.start_ns);
    let mut out: Vec<Segment> = Vec::new();
    let mut at = 0u64;
    for s in sorted {
        // A gap of more than a millisecond is a chunk not done yet.
        if s.start_ns > at + 1_000_000 {
            break;
        }
        at = s.end_ns;
        out.push(s);
    }
    out
}

/// Called with each file as soon as it is complete (see [`super::Control::published`]).
pub type Published<'a> = &'a (dyn Fn(&Path) -> Result<()> + Sync);

/// An HLS output being written; see the module docs.
pub struct HlsOutput<'a> {
    playlist: PathBuf,
    stem: String,
    /// One chunk alone: the label its segments' names carry, and no playlist.
    chunk_alone: Option<String>,
    segments: Mutex<Vec<Segment>>,
    done: bool,
    published: Option<Published<'a>>,
}

impl<'a> HlsOutput<'a> {
    /// Starts an HLS output at `playlist` (its folder must exist); `published` hears of each
    /// segment and playlist as it is complete.
    pub fn create(playlist: &Path, published: Option<Published<'a>>) -> Result<HlsOutput<'a>> {
        Self::start(playlist, None, published)
    }

    /// Starts the segments of one chunk composed alone, for the playlist `playlist` names
    /// (not written): `<stem>-<label>-NNNNN.ts` beside it. `label` must be a plain name.
    pub fn for_chunk(
        playlist: &Path,
        label: &str,
        published: Option<Published<'a>>,
    ) -> Result<HlsOutput<'a>> {
        Self::start(playlist, Some(label.to_owned()), published)
    }

    fn start(
        playlist: &Path,
        chunk_alone: Option<String>,
        published: Option<Published<'a>>,
    ) -> Result<HlsOutput<'a>> {
        let dir = folder(playlist);
        if !dir.is_dir() {
            return Err(Error::Write {
                path: playlist.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the output's folder does not exist",
                ),
            });
        }
        crate::workdir::sweep_partials(&dir);
        let stem = playlist
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "output".into());
        Ok(HlsOutput {
            playlist: playlist.to_path_buf(),
            stem,
            chunk_alone,
            segments: Mutex::new(Vec::new()),
            done: false,
            published,
        })
    }

    /// `splitmuxsink`'s location for a run's segments (`chunk`: a chunked compose's chunk):
    /// hidden temporary names beside the playlist, `%05d` the segment's index in the run.
    pub fn pattern(&self, chunk: Option<usize>) -> String {
        let escape = |s: &str| s.replace('%', "%%");
        let (stem, pid) = (escape(&self.stem), std::process::id());
        let label = match (&self.chunk_alone, chunk) {
            (Some(label), _) => Some(escape(label)),
            (None, Some(k)) => Some(format!("{k:04}")),
            (None, None) => None,
        };
        let name = match label {
            Some(label) => format!(".{stem}-{label}-%05d.ts.partial-{pid}"),
            None => format!(".{stem}-%05d.ts.partial-{pid}"),
        };
        format!(
            "{}/{name}",
            escape(&folder(&self.playlist).to_string_lossy())
        )
    }

    /// A segment `splitmuxsink` closed at `temp`: renamed to its name, and listed.
    pub fn closed(&self, temp: &Path, start_ns: u64, end_ns: u64) -> Result<()> {
        let name = final_name(temp).ok_or_else(|| {
            Error::Gstreamer(format!(
                "an HLS segment of an unknown name: {}",
                temp.display()
            ))
        })?;
        let dest = temp.with_file_name(&name);
        std::fs::rename(temp, &dest).map_err(|source| Error::Write {
            path: dest.clone(),
            source,
        })?;
        let mut segments = self.segments.lock().unwrap_or_else(|e| e.into_inner());
        segments.push(Segment {
            name,
            start_ns,
            end_ns,
        });
        if self.chunk_alone.is_some() {
            drop(segments);
            return match self.published {
                Some(published) => published(&dest),
                None => Ok(()),
            };
        }
        crate::output::write_atomic(
            &self.playlist,
            render(&playable(&segments), false).as_bytes(),
        )?;
        drop(segments);
        if let Some(published) = self.published {
            published(&dest)?;
            published(&self.playlist)?;
        }
        Ok(())
    }

    /// Every segment's file.
    pub fn files(&self) -> Vec<PathBuf> {
        let dir = folder(&self.playlist);
        self.segments
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|s| dir.join(&s.name))
            .collect()
    }

    /// Ends a chunk composed alone: its segments, in order (they must follow each other).
    pub fn finish_chunk(mut self) -> Result<Vec<Segment>> {
        let mut segments = self
            .segments
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        segments.sort_by_key(|s| s.start_ns);
        let gap = segments
            .windows(2)
            .any(|w| w[1].start_ns > w[0].end_ns + 1_000_000);
        if segments.is_empty() || gap {
            return Err(Error::Gstreamer(format!(
                "HLS: the chunk's {} segments do not follow each other",
                segments.len()
            )));
        }
        self.done = true;
        Ok(segments)
    }

    /// Ends the playlist: every segment listed, `#EXT-X-ENDLIST`.
    pub fn finish(mut self) -> Result<PathBuf> {
        let segments = self
            .segments
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let listed = playable(&segments);
        if listed.len() != segments.len() || listed.is_empty() {
            return Err(Error::Gstreamer(format!(
                "HLS: {} of {} segments follow each other from the start",
                listed.len(),
                segments.len()
            )));
        }
        crate::output::write_atomic(&self.playlist, render(&listed, true).as_bytes())?;
        if let Some(published) = self.published {
            published(&self.playlist)?;
        }
        self.done = true;
        Ok(self.playlist.clone())
    }
}

impl Drop for HlsOutput<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        for f in self.files() {
            let _ = std::fs::remove_file(f);
        }
        if self.chunk_alone.is_none() {
            let _ = std::fs::remove_file(&self.playlist);
        }
    }
}

fn folder(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `.call-00003.ts.partial-123` → `call-00003.ts`.
fn final_name(temp: &Path) -> Option<String> {
    let name = temp.file_name()?.to_str()?;
    let name = name.strip_prefix('.')?;
    let end = name.rfind(".partial-")?;
    Some(name[..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(name: &str, from_s: u64, to_s: u64) -> Segment {
        Segment {
            name: name.into(),
            start_ns: from_s * 1_000_000_000,
            end_ns: to_s * 1_000_000_000,
        }
    }

    #[test]
    fn an_event_playlist_until_the_end() {
        let s = [seg("a-00000.ts", 0, 6), seg("a-00001.ts", 6, 10)];
        let live = render(&s, false);
        assert!(live.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-TARGETDURATION:6\n"));
        assert!(live.contains("#EXTINF:6.000000,\na-00000.ts\n#EXTINF:4.000000,\na-00001.ts\n"));
        assert!(!live.contains("ENDLIST"));
        assert!(render(&s, true).ends_with("a-00001.ts\n#EXT-X-ENDLIST\n"));
    }

    #[test]
    fn only_the_contiguous_start_is_listed() {
        // Chunk 1 finished before chunk 0.
        let later = [
            seg("b-0001-00000.ts", 40, 46),
            seg("b-0001-00001.ts", 46, 52),
        ];
        assert!(playable(&later).is_empty());
        let mut all = later.to_vec();
        all.push(seg("b-0000-00000.ts", 0, 6));
        all.push(seg("b-0000-00006.ts", 36, 40));
        assert_eq!(playable(&all).len(), 1, "6..36 s is not done yet");
    }

    #[test]
    fn temporary_names_become_final_ones() {
        assert_eq!(
            final_name(Path::new("/x/.call-00003.ts.partial-12")).as_deref(),
            Some("call-00003.ts")
        );
        assert_eq!(final_name(Path::new("/x/call.ts")), None);
    }
}
