//! `mosaic serve` and `mosaic worker`: recordings processed from webhooks, unattended.
//!
//! The data's path: a platform's webhook → [`http`] (signature checked on the raw body by
//! [`verify`], the event read by [`intake`]) → a job in the durable [`queue`] (SQLite, or
//! PostgreSQL for many workers) → a [`worker`] claims it under a lease → [`process`]
//! fetches the files ([`fetch`], [`store`]), composes or repairs them, delivers the outputs
//! to the output store → [`notify`] tells every configured endpoint, signed and retried.
//! [`config`], [`intake`], [`verify`], [`backoff`], [`job`] and [`page`] are pure;
//! [`listen`] serves connections with limits against slow clients; [`fault`] holds the
//! debug builds' test-only crash switch.

pub mod backoff;
mod chunk_jobs;
pub mod config;
pub mod fault;
pub mod fetch;
mod hls_chunks;
mod hls_delivery;
pub mod http;
pub mod intake;
pub mod job;
pub mod listen;
pub mod metrics;
pub mod notify;
pub mod page;
pub mod process;
pub mod queue;
pub mod store;
pub mod verify;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use config::Config;
use queue::SqlQueue;
use worker::Shared;

/// What can stop the service from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Queue(#[from] queue::QueueError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("output store: {0}")]
    Output(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The queue's database URL for a configuration.
pub fn queue_url(config: &Config) -> String {
    if config.queue == "sqlite" {
        format!(
            "sqlite://{}?mode=rwc",
            config.data_dir.join("queue.db").display()
        )
    } else {
        config.queue.clone()
    }
}

/// Makes ring the process's TLS crypto provider (the build's only one), once; every HTTPS
/// client (downloads, notifications, cloud object stores) uses it. Safe to call again.
pub fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Opens the queue and the output store, ready to work.
pub async fn connect(config: Config) -> Result<Arc<Shared>, ServiceError> {
    install_tls_provider();
    std::fs::create_dir_all(&config.data_dir)?;
    sweep_work(&config.data_dir.join("work"));
    let queue = SqlQueue::open(&queue_url(&config), (config.workers as u32 + 8).max(8)).await?;
    let output = store::Location::parse(&config.output).map_err(ServiceError::Output)?;
    let policy = fetch::Policy {
        limits: config.fetch.clone(),
        allow_private: config.allow_private_urls,
        backoff: backoff::Backoff {
            base_ms: 500,
            cap_ms: 10_000,
        },
    };
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .map_err(|e| ServiceError::Config(format!("HTTP client: {e}")))?;
    Ok(Arc::new(Shared {
        queue,
        output,
        policy,
        owner: worker::owner_name(),
        metrics: metrics::Metrics::default(),
        http,
        config,
    }))
}

/// Work folders (`<job id>.<pid>`) left by killed processes sharing this data folder:
/// their jobs will be claimed again (the lease runs out) and start from a clean folder.
fn sweep_work(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = name
            .rsplit_once('.')
            .and_then(|(_, p)| p.parse::<u32>().ok());
        if pid.is_none_or(|p| !crate::workdir::alive(p)) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Runs the intake and the workers until SIGTERM/SIGINT, then stops taking work, gives
/// running jobs back and returns.
pub async fn serve(shared: Arc<Shared>, stop: watch::Receiver<bool>) -> Result<(), ServiceError> {
    let addr = shared.config.listen.clone();
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| ServiceError::Listen {
            addr: addr.clone(),
            source,
        })?;
    let local = listener.local_addr()?;
    tracing::info!(listen = %local, owner = %shared.owner, "serving");
    let workers = tokio::spawn(worker::run(shared.clone(), stop.clone()));
    let pruner = tokio::spawn(worker::prune_loop(shared.clone(), stop.clone()));
    let limits = shared.config.http.clone();
    listen::serve(listener, http::router(shared), &limits, stop).await;
    let _ = workers.await;
    let _ = pruner.await;
    Ok(())
}

/// Runs workers only, until the stop signal.
pub async fn work(shared: Arc<Shared>, stop: watch::Receiver<bool>) -> Result<(), ServiceError> {
    if shared.config.workers == 0 {
        return Err(ServiceError::Config(
            "workers: a worker process needs at least 1".into(),
        ));
    }
    tracing::info!(owner = %shared.owner, workers = shared.config.workers, "working");
    let pruner = tokio::spawn(worker::prune_loop(shared.clone(), stop.clone()));
    worker::run(shared, stop).await;
    let _ = pruner.await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_tls_provider_makes_https_clients_and_cloud_stores() {
        install_tls_provider();
        install_tls_provider();
        let provider = rustls::crypto::CryptoProvider::get_default().expect("installed");
        assert!(!provider.cipher_suites.is_empty());
        reqwest::Client::builder()
            .https_only(true)
            .build()
            .expect("an HTTPS client");
        for url in [
            "s3://bucket/prefix",
            "gs://bucket/prefix",
            "az://container/prefix",
        ] {
            if let Err(e) = store::Location::parse(url) {
                // Only missing credentials or account names may stop a cloud store here.
                assert!(
                    e.contains("Account") || e.contains("credential") || e.contains("Missing"),
                    "{url}: {e}"
                );
            }
        }
    }
}
