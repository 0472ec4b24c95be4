//! One job's work (edge): fetch its files into a work folder, open the recording, compose
//! and/or repair it on a blocking thread, deliver the outputs to the output store.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde_json::Value;

use super::chunk_jobs::{self, Step};
use super::config::Product;
use super::fetch::{self, FetchError};
use super::hls_chunks;
use super::hls_delivery;
use super::intake::liveswitch_url;
use super::job::{Delivered, Fetch, JobSpec};
use super::queue::{JobRow, NewJob};
use super::store::PutError;
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
    /// A chunked compose fanned out: these chunk jobs are to be stored, the job waiting for
    /// them.
    FanOut(Vec<NewJob>),
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
    pub(super) fn set(&self, fraction: f64) {
        let bp = (fraction.clamp(0.0, 1.0) * 10_000.0) as u64;
        self.basis_points.store(bp, Ordering::Relaxed);
    }
    pub fn percent(&self) -> f64 {
        self.basis_points.load(Ordering::Relaxed) as f64 / 100.0
    }
}

/// Runs a job's work in `work`; gives what was delivered.
pub async fn run(
    shared: &Arc<Shared>,
    job: &JobRow,
    spec: &JobSpec,
    work: &Path,
    tracker: &Arc<Tracker>,
) -> Result<Vec<Delivered>, Failure> {
    tokio::fs::create_dir_all(work)
        .await
        .map_err(|e| Failure::Retry(format!("creating {}: {e}", work.display())))?;
    let files = files_to_fetch(shared, spec).await?;
    let stores = shared.config.stores_for(spec.origin);
    let mut budget = shared.config.fetch.max_total_bytes;
    for f in &files {
        let dest =
            crate::names::join_under(work, &f.to).map_err(|e| Failure::Final(e.to_string()))?;
        let download = fetch::fetch(f, &dest, &shared.policy, &stores, budget);
        let size = until_cancelled(download, tracker).await??;
        budget = budget.saturating_sub(size);
        tracing::info!(file = %f.to, bytes = size, "fetched");
    }
    if let Some((name, json)) = &spec.descriptor {
        let text = serde_json::to_vec_pretty(json).map_err(|e| Failure::Final(e.to_string()))?;
        let dest =
            crate::names::join_under(work, name).map_err(|e| Failure::Final(e.to_string()))?;
        tokio::fs::write(dest, text)
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
    let input =
        crate::names::join_under(work, &spec.open).map_err(|e| Failure::Final(e.to_string()))?;
    let kind = spec.origin.source_kind();
    if let Some(part) = spec.chunk {
        let window = chunk_jobs::Window {
            input,
            kind,
            opts,
            part,
        };
        return match format {
            compose::OutputFormat::Hls => {
                let stem = output_stem(spec, job);
                hls_chunks::run_chunk(shared, job, window, work, tracker, &stem).await
            }
            _ => chunk_jobs::run_chunk(shared, job, window, work, tracker).await,
        };
    }
    let step = match produce.contains(&Product::Compose) {
        true => chunk_jobs::step(shared, job, spec, &opts, &input, kind, work, tracker).await?,
        false => Step::OnePass,
    };
    let (chunk_files, mut delivered, published) = match step {
        Step::OnePass => (None, Vec::new(), None),
        Step::Stitch(stitched) => (Some(stitched.files), Vec::new(), None),
        Step::Published(stem, delivered) => (None, delivered, Some(stem)),
    };
    let stitched = chunk_files.is_some();
    // What is left to make here (an HLS output its chunks wrote is complete).
    let produce: Vec<Product> = produce
        .into_iter()
        .filter(|p| published.is_none() || *p != Product::Compose)
        .collect();
    let out_dir = work.join("out");
    let t = tracker.clone();
    let span = tracing::Span::current();
    let stem = output_stem(spec, job);
    // HLS goes to the store segment by segment while it composes, under a name chosen now.
    let hls = match format == compose::OutputFormat::Hls && produce.contains(&Product::Compose) {
        true => Some(Arc::new(
            hls_delivery::HlsDelivery::start(shared, job, &stem).await?,
        )),
        false => None,
    };
    let publish = hls.clone();
    let produced = tokio::task::spawn_blocking(move || {
        let _job = span.enter(); // the job id on the worker thread's lines too
        produce_all(
            &input,
            kind,
            &out_dir,
            &produce,
            format,
            &opts,
            chunk_files,
            publish.as_deref(),
            &t,
        )
    })
    .await
    .map_err(|e| Failure::Retry(format!("the worker thread failed: {e}")));
    let (produced, svg) = match produced.and_then(|p| p) {
        Ok(done) => done,
        Err(e) => {
            if let Some(hls) = &hls {
                hls.remove().await;
            }
            if let Some(stem) = published.as_deref().filter(|_| ends_the_job(&e, job)) {
                hls_chunks::remove(shared, stem).await;
            }
            return Err(e);
        }
    };
    if let Err(e) = shared.queue.set_timeline(&job.id, &svg).await {
        tracing::warn!(error = %e, "cannot keep the timeline drawing");
    }
    delivered.extend(hls.map(|h| h.delivered()).unwrap_or_default());
    delivered.extend(until_cancelled(deliver(shared, job, &stem, produced), tracker).await??);
    if stitched {
        // Every chunk stored for this job, a lost attempt's too.
        let chunks = format!("chunks/{}", crate::names::plain_name(&job.id));
        if let Err(e) = shared.output.delete_under(&chunks).await {
            tracing::warn!(error = %e, "cannot delete the chunks");
        }
    }
    Ok(delivered)
}

/// Whether `failure` ends the job (no attempt will follow).
pub(super) fn ends_the_job(failure: &Failure, job: &JobRow) -> bool {
    match failure {
        Failure::Final(_) => true,
        Failure::Retry(_) => job.attempts >= job.max_attempts,
        Failure::Cancelled | Failure::FanOut(_) => false,
    }
}

/// Runs `work` on a blocking thread, in the job's span.
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _job = span.enter();
        work()
    })
    .await
    .map_err(|e| Failure::Retry(format!("the worker thread failed: {e}")))?
}

pub(super) fn classify(e: crate::Error) -> Failure {
    match e {
        crate::Error::Cancelled => Failure::Cancelled,
        e if e.class() == crate::ErrorClass::Internal => Failure::Retry(e.to_string()),
        e => Failure::Final(e.to_string()),
    }
}

pub(super) fn open(
    input: &Path,
    kind: crate::source::SourceKind,
) -> Result<source::Recording, Failure> {
    let opts_in = SourceOptions {
        kind: Some(kind),
        ..SourceOptions::default()
    };
    source::open_one(input, &opts_in).map_err(classify)
}

pub(super) fn inspect(
    recording: &mut source::Recording,
) -> Result<crate::inspect::ArchiveReport, Failure> {
    crate::inspect::inspect_recording(recording, &crate::inspect::InspectOptions::default())
        .map_err(classify)
}

/// Where a job's outputs go in the store (without extension): as intake decided, or for a
/// job stored before it did, `<origin>/<job id>`.
pub(super) fn output_stem(spec: &JobSpec, job: &JobRow) -> String {
    spec.output.clone().unwrap_or_else(|| {
        format!(
            "{}/{}",
            spec.origin.as_str(),
            crate::names::plain_name(&job.id)
        )
    })
}

/// Runs `work` until it ends or the job is cancelled (checked every 100 ms).
pub(super) async fn until_cancelled<T>(
    work: impl std::future::Future<Output = T>,
    tracker: &Tracker,
) -> Result<T, Failure> {
    let cancelled = async {
        while !tracker.cancel.load(Ordering::Relaxed) {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    tokio::select! {
        r = work => Ok(r),
        _ = cancelled => Err(Failure::Cancelled),
    }
}

/// The names a job's outputs may take in the store, in turn: `stem`, `stem-<job id>`,
/// `stem-<job id>-<attempt>`.
pub(super) fn output_names(stem: &str, job: &JobRow) -> [String; 3] {
    let id = crate::names::plain_name(&job.id);
    [
        stem.to_owned(),
        format!("{stem}-{id}"),
        format!("{stem}-{id}-{}", job.attempts),
    ]
}

/// Delivers the outputs under `stem`, never over anything already stored: when `stem` is
/// taken (a second output for the same recording, or an earlier attempt of this job), the
/// job id goes into the name (`<stem>-<job id>`, then `-<job id>-<attempt>`).
async fn deliver(
    shared: &Shared,
    job: &JobRow,
    stem: &str,
    produced: Vec<Produced>,
) -> Result<Vec<Delivered>, Failure> {
    let id = crate::names::plain_name(&job.id);
    let candidates = output_names(stem, job);
    let mut chosen = None;
    for candidate in &candidates {
        let mut taken = false;
        for p in &produced {
            if shared
                .output
                .taken(&p.rel_under(candidate))
                .await
                .map_err(Failure::Retry)?
            {
                taken = true;
                break;
            }
        }
        if !taken {
            chosen = Some(candidate.clone());
            break;
        }
    }
    let Some(stem) = chosen else {
        return Err(Failure::Final(format!(
            "{stem} and its alternatives with the job id are all taken in the output store"
        )));
    };
    if stem != candidates[0] {
        tracing::warn!(taken = %candidates[0], output = %stem, "the output name is taken; writing beside it");
    }
    let mut delivered = Vec::new();
    for (n, p) in produced.iter().enumerate() {
        let rel = p.rel_under(&stem);
        let staging = format!(".mosaic-staging/{id}/{}-{n}", job.attempts);
        let url = match shared.output.put_new(&p.local, &rel, &staging).await {
            Ok(url) => url,
            Err(PutError::Exists(rel)) => {
                return Err(Failure::Retry(format!(
                    "{rel} appeared in the output store while this job wrote beside it"
                )));
            }
            Err(PutError::Store(e)) => return Err(Failure::Retry(e)),
        };
        tracing::info!(output = %url, bytes = p.bytes, "delivered");
        delivered.push(Delivered {
            url,
            bytes: p.bytes,
            duration_ms: p.duration_ms,
            segment: None,
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
        .events(spec.origin.as_str(), key)
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
    /// `.<ext>` for the composite (after the stem), `/<name>` for a repaired file.
    suffix: String,
    bytes: u64,
    duration_ms: i64,
}

impl Produced {
    fn rel_under(&self, stem: &str) -> String {
        format!("{stem}{}", self.suffix)
    }
}

#[allow(clippy::too_many_arguments)]
fn produce_all(
    input: &Path,
    kind: crate::source::SourceKind,
    out_dir: &Path,
    produce: &[Product],
    format: compose::OutputFormat,
    opts: &compose::ComposeOptions,
    stitch: Option<Vec<PathBuf>>,
    hls: Option<&hls_delivery::HlsDelivery>,
    tracker: &Tracker,
) -> Result<(Vec<Produced>, String), Failure> {
    std::fs::create_dir_all(out_dir)
        .map_err(|e| Failure::Retry(format!("creating {}: {e}", out_dir.display())))?;
    let mut recording = open(input, kind)?;
    let report = inspect(&mut recording)?;
    let svg = crate::inspect::svg::render(&report);
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
            published: None,
        };
        match product {
            Product::Compose if format == compose::OutputFormat::Hls => {
                // The playlist and its segments go to the store as each is complete.
                let dir = out_dir.join("hls");
                std::fs::create_dir_all(&dir)
                    .map_err(|e| Failure::Retry(format!("creating {}: {e}", dir.display())))?;
                let publish = |file: &Path| match hls {
                    Some(h) => h.publish(file),
                    None => Ok(()),
                };
                let control = Control {
                    published: Some(&publish),
                    ..control
                };
                compose::compose_inspected(
                    &mut recording,
                    &report,
                    &dir.join(hls_delivery::PLAYLIST),
                    opts,
                    &control,
                )
                .map_err(classify)?;
            }
            Product::Compose => {
                let ext = format!("{format:?}").to_ascii_lowercase();
                let local = out_dir.join(format!("composite.{ext}"));
                let report = match &stitch {
                    Some(chunks) => compose::stitch_inspected(
                        &mut recording,
                        &report,
                        chunks,
                        &local,
                        opts,
                        &control,
                    ),
                    None => {
                        compose::compose_inspected(&mut recording, &report, &local, opts, &control)
                    }
                }
                .map_err(classify)?;
                for w in &report.warnings {
                    tracing::warn!(warning = %w, "compose");
                }
                out.push(Produced {
                    bytes: file_size(&local),
                    local,
                    suffix: format!(".{ext}"),
                    duration_ms: report.duration_ms,
                });
            }
            Product::Repair => {
                let dir = out_dir.join("repaired");
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
                        suffix: format!("/{}", crate::names::plain_name(&name)),
                        duration_ms: s.duration_ms,
                    });
                }
            }
        }
    }
    Ok((out, svg))
}

pub(super) fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_go_under_their_stem() {
        let p = Produced {
            local: PathBuf::from("/w/out/composite.mp4"),
            suffix: ".mp4".into(),
            bytes: 1,
            duration_ms: 1,
        };
        assert_eq!(p.rel_under("opentok/arch-1"), "opentok/arch-1.mp4");
    }
}
