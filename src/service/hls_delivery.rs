//! An HLS output delivered while it composes (edge): each segment goes to the output store
//! as soon as it is closed (create-only, like any output), and the playlist after it, the
//! one object a job replaces (an EVENT playlist grows until its `#EXT-X-ENDLIST`), so a
//! viewer can start on the first minutes of a long call while the rest composes. The name is
//! chosen before the first segment: the job's output name, or one with the job id when that
//! is taken. A job that fails removes what it published.

use std::path::Path;
use std::sync::{Arc, Mutex};

use super::job::Delivered;
use super::process::Failure;
use super::queue::JobRow;
use super::worker::Shared;

/// The playlist's name under the output's name.
pub const PLAYLIST: &str = "index.m3u8";

pub struct HlsDelivery {
    shared: Arc<Shared>,
    runtime: tokio::runtime::Handle,
    /// The output's name in the store: the playlist is `<stem>/index.m3u8`.
    stem: String,
    /// The job's own staging prefix.
    staging: String,
    /// The job's summary and attempt (for the tests' fault points).
    summary: String,
    /// The segments delivered (by name), in order, and the playlist's last state.
    segments: Mutex<Vec<(String, Delivered)>>,
    playlist: Mutex<Option<(String, String)>>,
}

impl HlsDelivery {
    /// Chooses the output's name: `stem`, else `stem-<job id>`, else with the attempt too.
    pub async fn start(
        shared: &Arc<Shared>,
        job: &JobRow,
        stem: &str,
    ) -> Result<HlsDelivery, Failure> {
        for candidate in super::process::output_names(stem, job) {
            if !shared
                .output
                .taken(&candidate)
                .await
                .map_err(Failure::Retry)?
            {
                return Ok(HlsDelivery::under(shared, job, &candidate));
            }
        }
        Err(Failure::Final(format!(
            "{stem} and its alternatives with the job id are all taken in the output store"
        )))
    }

    /// Delivers under `stem`, a name already chosen (a fanned-out job's chunk).
    pub fn under(shared: &Arc<Shared>, job: &JobRow, stem: &str) -> HlsDelivery {
        let id = crate::names::plain_name(&job.id);
        HlsDelivery {
            shared: shared.clone(),
            runtime: tokio::runtime::Handle::current(),
            stem: stem.to_owned(),
            staging: format!(".mosaic-staging/{id}/{}-hls", job.attempts),
            summary: format!("{} attempt {}", job.summary, job.attempts),
            segments: Mutex::new(Vec::new()),
            playlist: Mutex::new(None),
        }
    }

    /// Delivers a finished segment, or the playlist as it now is (from a blocking thread).
    pub fn publish(&self, file: &Path) -> crate::Result<()> {
        let name = file
            .file_name()
            .map(|n| crate::names::plain_name(&n.to_string_lossy()))
            .unwrap_or_default();
        let rel = format!("{}/{name}", self.stem);
        let staging = format!("{}/{name}", self.staging);
        let failed = |e: String| crate::Error::Write {
            path: file.to_path_buf(),
            source: std::io::Error::other(e),
        };
        if name == PLAYLIST {
            let url = self
                .runtime
                .block_on(self.shared.output.put_replace(file, &rel, &staging))
                .map_err(failed)?;
            let text = std::fs::read_to_string(file).unwrap_or_default();
            *self.playlist.lock().unwrap_or_else(|e| e.into_inner()) = Some((url, text));
            return Ok(());
        }
        let url = self
            .runtime
            .block_on(self.shared.output.put_new(file, &rel, &staging))
            .map_err(|e| match e {
                super::store::PutError::Exists(rel) => format!("{rel} is already in the store"),
                super::store::PutError::Store(e) => e,
            })
            .map_err(failed)?;
        tracing::info!(output = %url, "segment delivered");
        super::fault::pause_if("segment", &self.summary);
        self.segments
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((
                name,
                Delivered {
                    url,
                    bytes: std::fs::metadata(file).map(|m| m.len()).unwrap_or(0),
                    duration_ms: 0,
                    segment: None,
                },
            ));
        Ok(())
    }

    /// The segment delivered as `name`, if it was.
    pub fn segment(&self, name: &str) -> Option<Delivered> {
        self.segments
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, d)| d.clone())
    }

    /// Removes the segments delivered (a chunk's attempt failed: no playlist lists them).
    pub async fn remove_segments(&self) {
        let names: Vec<String> = self
            .segments
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            if let Err(e) = self
                .shared
                .output
                .delete(&format!("{}/{name}", self.stem))
                .await
            {
                tracing::warn!(error = %e, "cannot remove a failed chunk's segment");
            }
        }
    }

    /// What was delivered: the playlist first (with the whole duration), then the segments.
    pub fn delivered(&self) -> Vec<Delivered> {
        let playlist = self
            .playlist
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let segments: Vec<Delivered> = self
            .segments
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(_, d)| d.clone())
            .collect();
        playlist
            .map(|(url, text)| Delivered {
                url,
                bytes: text.len() as u64,
                duration_ms: duration_ms(&text),
                segment: None,
            })
            .into_iter()
            .chain(segments)
            .collect()
    }

    /// Removes everything published (the job failed).
    pub async fn remove(&self) {
        if let Err(e) = self.shared.output.delete_under(&self.stem).await {
            tracing::warn!(error = %e, "cannot remove a failed job's HLS output");
        }
    }
}

/// The sum of a playlist's `#EXTINF` durations, in ms.
fn duration_ms(playlist: &str) -> i64 {
    let secs: f64 = playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .filter_map(|l| l.split(',').next()?.parse::<f64>().ok())
        .sum();
    (secs * 1000.0).round() as i64
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_playlist_lasts_its_segments() {
        let text = "#EXTM3U\n#EXTINF:6.000000,\na.ts\n#EXTINF:2.500000,\nb.ts\n#EXT-X-ENDLIST\n";
        assert_eq!(super::duration_ms(text), 8_500);
    }
}
