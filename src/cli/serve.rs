//! `mosaic serve` and `mosaic worker`: the webhook service and its workers.

use std::path::PathBuf;

use anyhow::Context;
use tokio::sync::watch;

use mosaic::service::{self, Config};

#[derive(clap::Args)]
pub struct Args {
    /// The configuration file (TOML). Every key can be overridden by an environment
    /// variable MOSAIC_<KEY>, nested keys joined by _ (MOSAIC_OPENTOK_SECRET).
    #[arg(long, short, value_name = "FILE", default_value = "mosaic.toml")]
    config: PathBuf,
}

/// Which part of the service to run.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// HTTP intake and workers.
    Serve,
    /// Workers only.
    Worker,
}

pub fn run(args: Args, role: Role) -> anyhow::Result<u8> {
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("reading the configuration {}", args.config.display()))?;
    let config = Config::parse(&text, std::env::vars())
        .with_context(|| format!("in {}", args.config.display()))?;
    init_logs();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let (stop_tx, stop) = watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("stopping: no new jobs; running ones are given back");
            let _ = stop_tx.send(true);
        });
        let shared = service::connect(config).await?;
        match role {
            Role::Serve => service::serve(shared, stop).await?,
            Role::Worker => service::work(shared, stop).await?,
        }
        anyhow::Ok(0)
    })
}

/// Logs as lines on stderr, the job id in every line of a job; RUST_LOG filters
/// (default info).
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
