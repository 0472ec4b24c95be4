//! The real HTTP peers around the service: a file server holding recordings, and a
//! notification receiver that checks Standard Webhooks signatures (127.0.0.1 only).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::Value;

use super::NOTIFY_SECRET;

/// Serves the files of a folder at `/files/<name>`, counting requests.
pub struct FileServer {
    pub addr: std::net::SocketAddr,
    pub hits: Arc<AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

impl FileServer {
    pub async fn start(dir: &Path) -> FileServer {
        let hits = Arc::new(AtomicUsize::new(0));
        let state = (dir.to_path_buf(), hits.clone());
        let app = axum::Router::new()
            .route(
                "/files/{name}",
                get(
                    |State((dir, hits)): State<(PathBuf, Arc<AtomicUsize>)>,
                     UrlPath(name): UrlPath<String>| async move {
                        hits.fetch_add(1, Ordering::SeqCst);
                        match std::fs::read(dir.join(name)) {
                            Ok(b) => (StatusCode::OK, b),
                            Err(_) => (StatusCode::NOT_FOUND, Vec::new()),
                        }
                    },
                ),
            )
            .route(
                "/expired/{name}",
                get(
                    |State((_, hits)): State<(PathBuf, Arc<AtomicUsize>)>| async move {
                        hits.fetch_add(1, Ordering::SeqCst);
                        StatusCode::FORBIDDEN
                    },
                ),
            )
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FileServer {
            addr,
            hits,
            _task: task,
        }
    }

    pub fn url(&self, name: &str) -> String {
        format!("http://{}/files/{name}", self.addr)
    }
}

/// One notification as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub body: Value,
    pub verified: bool,
    pub answered: u16,
}

/// Receives notifications at `/hook`, failing the first `fail_first` with 500.
pub struct Receiver {
    pub addr: std::net::SocketAddr,
    pub got: Arc<Mutex<Vec<Received>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(fail_first: usize) -> Receiver {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let state = got.clone();
        let app = axum::Router::new()
            .route(
                "/hook",
                post(
                    move |State(got): State<Arc<Mutex<Vec<Received>>>>,
                          headers: HeaderMap,
                          body: Bytes| async move {
                        let hook = standardwebhooks::Webhook::new(NOTIFY_SECRET).unwrap();
                        let verified = hook.verify(&body, &headers).is_ok();
                        let mut got = got.lock().unwrap();
                        let answered = if got.len() < fail_first { 500 } else { 204 };
                        got.push(Received {
                            at: Instant::now(),
                            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                            verified,
                            answered,
                        });
                        StatusCode::from_u16(answered).unwrap()
                    },
                ),
            )
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            addr,
            got,
            _task: task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The notifications answered with success.
    pub fn delivered(&self) -> Vec<Received> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.answered < 300)
            .cloned()
            .collect()
    }
}
