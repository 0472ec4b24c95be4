//! One job's work (edge): fetch its files into a work folder, open the recording, compose
//! and/or repair it on a blocking thread, deliver the outputs to the output store.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde_json::Value;

use super::config::Product;
use super::fetch::{self, FetchError};
use super::intake::liveswitch_url;
use super::job::{Delivered, Fetch, JobSpec};
use super::worker::Shared;
use crate::compose::{self, Control};
use crate::repair::{self, RepairOptions};
use crate::source::{self, SourceOptions};

/// How an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Worth another attempt (network, storage, the machine).
    Retry(String),
    /// Trying again cannot help (bad input, a refused URL).
    Final(String),
    /// Stopped: shutdown or a lost lease.
    Cancelled,
}

impl From<FetchError> for Failure {
    fn from(e: FetchError) -> Self {
        if e.retry {
            Failure::Retry(e.message)
        } else {
            Failure::Final(e.message)
        }
    }
}

/// Progress (0–10000) and the stop flag, shared with the heartbeat.
#[derive(Default)]
pub struct Tracker {
    pub basis_points: AtomicU64,
    pub cancel: AtomicBool,
}

impl Tracker {
    fn set(&self, fraction: f64) {
        let bp = (fraction.clamp(0.0, 1.0) * 10_000.0) as u64;
        self.basis_points.store(bp, Ordering::Relaxed);
    }
    pub fn percent(&self) -> f64 {
        self.basis_points.load(Ordering::Relaxed) as f64 / 100.0
    }
}

/// A name safe as a path piece: letters, digits, `.`, `-`, `_`.
pub fn safe_key(key: &str) -> String {
    let s: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let s = s.trim_start_matches('.').to_owned();
    if s.is_empty() { "recording".into() } else { s }
}

/// Runs a job's work in `work`; gives what was delivered.
pub async fn run(
    shared: &Arc<Shared>,
    job_id: &str,
    spec: &JobSpec,
    work: &Path,
    tracker: &Arc<Tracker>,
) -> Result<Vec<Delivered>, Failure> {
    tokio::fs::create_dir_all(work)
        .await
        .map_err(|e| Failure::Retry(format!("creating {}: {e}", work.display())))?;
    let files = files_to_fetch(shared, spec).await?;
    for f in &files {
        if tracker.cancel.load(Ordering::Relaxed) {
            return Err(Failure::Cancelled);
        }
        let size = fetch::fetch(f, &work.join(&f.to), &shared.policy).await?;
        tracing::info!(file = %f.to, bytes = size, "fetched");
    }
    if let Some((name, json)) = &spec.descriptor {
        let text = serde_json::to_vec_pretty(json).map_err(|e| Failure::Final(e.to_string()))?;
        tokio::fs::write(work.join(name), text)
            .await
            .map_err(|e| Failure::Retry(format!("writing {name}: {e}")))?;
    }
    tracker.set(0.05);

    let produce = spec
        .produce
        .clone()
        .unwrap_or_else(|| shared.config.produce.clone());
    let compose_cfg = spec
        .compose
        .clone()
        .unwrap_or_else(|| shared.config.compose.clone());
    let (format, opts) = compose_cfg
        .to_options()
        .map_err(|e| Failure::Final(e.to_string()))?;
    let input = work.join(&spec.open);
    let out_dir = work.join("out");
    let t = tracker.clone();
    let span = tracing::Span::current();
    let (produced, svg) = tokio::task::spawn_blocking(move || {
        let _job = span.enter(); // the job id on the worker thread's lines too
        produce_all(&input, &out_dir, &produce, format, &opts, &t)
    })
    .await
    .map_err(|e| Failure::Retry(format!("the worker thread failed: {e}")))??;
    if let Err(e) = shared.queue.set_timeline(job_id, &svg).await {
        tracing::warn!(error = %e, "cannot keep the timeline drawing");
    }

    let mut delivered = Vec::new();
    for p in produced {
        let url = shared
            .output
            .put_file(&p.local, &p.rel)
            .await
            .map_err(Failure::Retry)?;
        tracing::info!(output = %url, bytes = p.bytes, "delivered");
        delivered.push(Delivered {
            url,
            bytes: p.bytes,
            duration_ms: p.duration_ms,
        });
    }
    Ok(delivered)
}

/// The job's files, with LiveSwitch URLs that only per-connection events gave filled in.
async fn files_to_fetch(shared: &Shared, spec: &JobSpec) -> Result<Vec<Fetch>, Failure> {
    let mut files = spec.fetch.clone();
    if spec.pending.is_empty() {
        return Ok(files);
    }
    let key = spec.events_key.as_deref().unwrap_or_default();
    let events: Vec<Value> = shared
        .queue
        .events(key)
        .await
        .map_err(|e| Failure::Retry(e.to_string()))?
        .iter()
        .filter_map(|b| serde_json::from_str(b).ok())
        .collect();
    for p in &spec.pending {
        let url = events
            .iter()
            .rev()
            .find_map(|e| liveswitch_url(e, &p.connection_id, &p.kind));
        match url {
            Some(from) => files.push(Fetch {
                from,
                to: p.to.clone(),
                size: None,
                expires: false,
            }),
            None => {
                return Err(Failure::Retry(format!(
                    "no {} URL yet for connection {}: neither the event nor a \
                     connection.recording.{}.ready event gave one",
                    p.kind, p.connection_id, p.kind
                )));
            }
        }
    }
    Ok(files)
}

/// One output file, ready to deliver.
struct Produced {
    local: PathBuf,
    rel: String,
    bytes: u64,
    duration_ms: i64,
}

fn produce_all(
    input: &Path,
    out_dir: &Path,
    produce: &[Product],
    format: compose::OutputFormat,
    opts: &compose::ComposeOptions,
    tracker: &Tracker,
) -> Result<(Vec<Produced>, String), Failure> {
    let classify = |e: crate::Error| match e {
        crate::Error::Cancelled => Failure::Cancelled,
        e if e.class() == crate::ErrorClass::Internal => Failure::Retry(e.to_string()),
        e => Failure::Final(e.to_string()),
    };
    std::fs::create_dir_all(out_dir)
        .map_err(|e| Failure::Retry(format!("creating {}: {e}", out_dir.display())))?;
    let mut recording = source::open_one(input, &SourceOptions::default()).map_err(classify)?;
    let report = crate::inspect::inspect_recording(
        &mut recording,
        &crate::inspect::InspectOptions::default(),
    )
    .map_err(classify)?;
    let svg = crate::inspect::svg::render(&report);
    let origin = recording.kind.as_str();
    let key = safe_key(&recording.key);
    let steps = produce.len() as f64;
    let mut out = Vec::new();
    for (i, product) in produce.iter().enumerate() {
        let base = 0.05 + 0.95 * i as f64 / steps;
        let span = 0.95 / steps;
        let progress = |done: u64, total: u64| {
            tracker.set(base + span * done as f64 / total.max(1) as f64);
        };
        let control = Control {
            progress: Some(&progress),
            cancel: Some(&tracker.cancel),
        };
        match product {
            Product::Compose => {
                let ext = format!("{format:?}").to_ascii_lowercase();
                let local = out_dir.join(format!("{key}.{ext}"));
                let report =
                    compose::compose_inspected(&mut recording, &report, &local, opts, &control)
                        .map_err(classify)?;
                for w in &report.warnings {
                    tracing::warn!(warning = %w, "compose");
                }
                out.push(Produced {
                    bytes: file_size(&local),
                    local,
                    rel: format!("{origin}/{key}.{ext}"),
                    duration_ms: report.duration_ms,
                });
            }
            Product::Repair => {
                let dir = out_dir.join(&key);
                std::fs::create_dir_all(&dir)
                    .map_err(|e| Failure::Retry(format!("creating {}: {e}", dir.display())))?;
                let ropts = RepairOptions {
                    strict: opts.strict,
                    ..RepairOptions::default()
                };
                let report =
                    repair::repair_inspected(&mut recording, &report, &dir, &ropts, &control)
                        .map_err(classify)?;
                for s in report.streams {
                    let name = s
                        .output
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    out.push(Produced {
                        bytes: file_size(&s.output),
                        local: s.output,
                        rel: format!("{origin}/{key}/{name}"),
                        duration_ms: s.duration_ms,
                    });
                }
            }
        }
    }
    Ok((out, svg))
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_plain_names() {
        assert_eq!(safe_key("b40ef09b-3811"), "b40ef09b-3811");
        assert_eq!(safe_key("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_key(".."), "recording");
        assert_eq!(
            safe_key("ch 1-2022-02-28T01:51:18Z"),
            "ch_1-2022-02-28T01_51_18Z"
        );
    }
}
