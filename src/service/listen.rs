//! Serving connections (edge): the accept loop, with limits against slow and abusive clients.
//!
//! `axum::serve` sets no limit, so a client that trickles its headers a byte a second holds
//! its connection (and a task) for as long as it likes. Here each connection is served by
//! hyper's HTTP/1 connection builder directly:
//!
//! - **headers**: hyper's `header_read_timeout` (`http.header_timeout_secs`), which runs from
//!   the moment the connection waits for a request: a client that has not sent a whole header
//!   by then, and an idle keep-alive connection, is closed;
//! - **body**: tower-http's `RequestBodyTimeout` (`http.body_timeout_secs`) around the
//!   router: a body that has not arrived by then fails the request (408);
//! - **connections**: at most `http.max_connections` at once (a semaphore); more wait in the
//!   listen backlog until one closes.
//!
//! At the stop signal the loop stops accepting and the open connections finish their
//! requests (hyper-util's graceful shutdown), for at most [`DRAIN`].

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use super::config::HttpConfig;

/// How long open connections may take to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(5);

/// Serves `router` on `listener` until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &HttpConfig,
    mut stop: watch::Receiver<bool>,
) {
    let app = tower_http::timeout::RequestBodyTimeout::new(
        router,
        Duration::from_secs(limits.body_timeout_secs),
    );
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_timeout_secs))
        .keep_alive(true);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stop.wait_for(|s| *s) => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.wait_for(|s| *s) => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {DRAIN:?}; closing them");
    }
}
