//! A real `mosaic serve` (or `worker`) process on a loopback port, and the real HTTP peers
//! around it: a file server holding recordings, and a notification receiver that checks
//! Standard Webhooks signatures. Everything listens on 127.0.0.1 only and stops when
//! dropped.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{archive, probe, segment, stream, write_sample};
use mosaic::sample::ContainerKind;

mod client;
mod peers;
mod postgres;
mod tree;
pub use client::*;
pub use peers::*;
// Only some of the test programs that share this harness start PostgreSQL.
#[allow(unused_imports)]
pub use postgres::*;
#[allow(unused_imports)]
pub use tree::*;

pub const OPENTOK_SECRET: &str = "opentok-project-secret";
pub const LIVESWITCH_APP: &str = "mosaic-sample-app";
pub const LIVESWITCH_SECRET: &str = "liveswitch-shared-secret";
pub const ENABLEX_TOKEN: &str = "enablex-token-of-the-tests";
pub const API_TOKEN: &str = "api-token-of-the-tests";
/// Not the documented example (which the service refuses): 24 bytes of the tests' own.
pub const NOTIFY_SECRET: &str = "whsec_dGhpcy1pcy1hLXRlc3Qtc2VjcmV0LTI0Yg==";

/// A folder for one service: its configuration, data, output and storage.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub extra: String,
}

impl Setup {
    pub fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        for d in ["data", "out", "storage"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        Setup {
            dir,
            extra: String::new(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The configuration: small, fast compositions; short leases and delays.
    pub fn config(
        &self,
        notify_url: Option<&str>,
        queue: &str,
        workers: usize,
        private: bool,
    ) -> PathBuf {
        let mut text = format!(
            r#"listen = "127.0.0.1:0"
data_dir = "{data}"
queue = "{queue}"
output = "file://{out}"
workers = {workers}
api_token = "{API_TOKEN}"
allow_private_urls = {private}
poll_ms = 100
lease_secs = 3
retry_base_ms = 300
retry_cap_ms = 2000
{extra}
[compose]
size = "640x480"
speed = "fast"
[opentok]
secret = "{OPENTOK_SECRET}"
storage = "file://{storage}"
[liveswitch.secrets]
"{LIVESWITCH_APP}" = "{LIVESWITCH_SECRET}"
[enablex]
token = "{ENABLEX_TOKEN}"
[notify_retry]
base_ms = 400
cap_ms = 4000
max_age_secs = 60
"#,
            data = self.path("data").display(),
            out = self.path("out").display(),
            storage = self.path("storage").display(),
            extra = self.extra,
        );
        if let Some(url) = notify_url {
            text.push_str(&format!(
                "[[notify]]\nurl = \"{url}\"\nsecret = \"{NOTIFY_SECRET}\"\n"
            ));
        }
        let path = self.path("mosaic.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Every file under the output folder, relative.
    pub fn outputs(&self) -> Vec<String> {
        let mut found = Vec::new();
        walk(&self.path("out"), &self.path("out"), &mut found);
        found.sort();
        found
    }
}

fn walk(root: &Path, dir: &Path, found: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(root, &p, found);
        } else {
            found.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
        }
    }
}

/// A running `mosaic serve` or `mosaic worker`.
pub struct Service {
    pub child: Child,
    /// `http://127.0.0.1:<port>` (serve only).
    pub base: String,
    pub log: Arc<Mutex<String>>,
}

impl Service {
    pub fn start(role: &str, config: &Path) -> Service {
        Service::start_with(role, config, &[])
    }

    /// Starts with extra environment variables (a test-only fault switch, an override).
    pub fn start_with(role: &str, config: &Path, env: &[(&str, &str)]) -> Service {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mosaic"))
            .args([role, "--config"])
            .arg(config)
            .env("RUST_LOG", "info,sqlx=warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log: Arc<Mutex<String>> = Arc::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("listen=").nth(1)
                    && let Some(t) = tx.take()
                {
                    let _ = t.send(addr.split_whitespace().next().unwrap_or("").to_owned());
                }
                if line.contains(" working ")
                    && let Some(t) = tx.take()
                {
                    let _ = t.send(String::new());
                }
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("mosaic {role} did not start:\n{}", log.lock().unwrap()));
        Service {
            child,
            base: format!("http://{addr}"),
            log,
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        unsafe_kill(self.child.id(), "TERM");
        self.child.wait().unwrap()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits for the process to end by itself (a crash), giving its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < timeout,
                "the service did not exit:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn unsafe_kill(pid: u32, signal: &str) {
    Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .unwrap();
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How long a test waits for a job.
pub const LONG: Duration = Duration::from_secs(120);

/// A 3 s, two-camera OpenTok archive written as `<dir>/<id>.zip`.
pub fn short_archive(dir: &Path, id: &str, seconds: i64) -> std::path::PathBuf {
    let ms = seconds * 1000;
    let spec = archive(
        id,
        ContainerKind::Webm,
        vec![
            stream("a", [200, 30, 30], vec![1_000], vec![segment(0, ms)]),
            stream("b", [30, 30, 200], vec![1_500], vec![segment(500, ms)]),
        ],
    );
    write_sample(dir, &spec)
}

pub fn output_path(setup: &Setup, url: &str) -> std::path::PathBuf {
    let out = format!("file://{}/", setup.path("out").display());
    let rel = url
        .strip_prefix(&out)
        .unwrap_or_else(|| panic!("{url} is not under {out}"));
    setup.path("out").join(rel)
}

/// The job's one output: where it is, and its probed duration.
pub fn probed_output(setup: &Setup, job: &Value) -> (String, f64) {
    let outputs = job["outputs"].as_array().expect("outputs");
    assert_eq!(outputs.len(), 1, "{job}");
    let url = outputs[0]["url"].as_str().unwrap().to_owned();
    let path = output_path(setup, &url);
    assert_eq!(
        outputs[0]["bytes"].as_u64().unwrap(),
        std::fs::metadata(&path).unwrap().len()
    );
    let (codecs, duration) = probe(&path);
    assert_eq!(codecs, vec!["h264".to_string(), "aac".to_string()], "{url}");
    (url, duration)
}

/// `mosaic worker` processes on the intake's queue (its configuration at `intake`, with
/// `workers = 0`), one slot each, each with a data folder of its own, as on separate machines.
pub fn start_workers(setup: &Setup, intake: &Path, names: &[&str]) -> Vec<Service> {
    start_workers_with(setup, intake, names, &[])
}

/// [`start_workers`] with `env` set for each.
pub fn start_workers_with(
    setup: &Setup,
    intake: &Path,
    names: &[&str],
    env: &[(&str, &str)],
) -> Vec<Service> {
    let text = std::fs::read_to_string(intake).unwrap();
    names
        .iter()
        .map(|w| {
            let data = setup.path(&format!("data-{w}"));
            let config = setup.path(&format!("{w}.toml"));
            let own = text
                .replace(
                    &format!("\"{}\"", setup.path("data").display()),
                    &format!("\"{}\"", data.display()),
                )
                .replace("workers = 0", "workers = 1");
            std::fs::write(&config, own).unwrap();
            Service::start_with("worker", &config, env)
        })
        .collect()
}

pub async fn one_notification(receiver: &Receiver, job: &str) -> Value {
    wait_until("the notification", LONG, || {
        receiver.delivered().iter().any(|r| r.body["job"] == job)
    })
    .await;
    let got: Vec<_> = receiver
        .delivered()
        .into_iter()
        .filter(|r| r.body["job"] == job)
        .collect();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].verified,
        "the Standard Webhooks signature must verify"
    );
    got[0].body.clone()
}

/// Waits until a job is composing, failing if it finishes first: running, and either past
/// `percent` by its heartbeats or with its output's temporary file already in its work folder.
/// (A release build composes the short test archives within a heartbeat or two, so the
/// progress alone may never be seen between 10 % and the end.)
pub async fn wait_composing(setup: &Setup, base: &str, id: &str, percent: f64) {
    let start = Instant::now();
    let work = setup.path("data/work");
    loop {
        let partial = holds_partial_output(&work);
        let job = get_json(base, &format!("/v1/jobs/{id}")).await;
        let progress = job["progress"].as_f64().unwrap_or(0.0);
        if job["state"] == "running" && (partial || progress > percent) {
            return;
        }
        assert!(
            job["state"] != "succeeded",
            "finished before it was seen composing: {job}"
        );
        assert!(start.elapsed() < LONG, "{job}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether a folder, or one below it, holds an output being written (`.NAME.partial-PID`).
fn holds_partial_output(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        (name.starts_with('.') && name.contains(".partial-"))
            || (e.file_type().is_ok_and(|t| t.is_dir()) && holds_partial_output(&e.path()))
    })
}

/// The usual cast of a service test: its folders, a file server (holding a generated
/// archive, when asked) and a notification receiver failing its first `fail_first` tries.
pub struct Scene {
    pub setup: Setup,
    pub files: PathBuf,
    pub server: FileServer,
    pub receiver: Receiver,
    /// The configuration: SQLite, one worker, notifications to the receiver.
    pub config: PathBuf,
}

impl Scene {
    /// `archive`: an id and a length in seconds; `private`: allow fetching from loopback.
    pub async fn new(archive: Option<(&str, i64)>, fail_first: usize, private: bool) -> Scene {
        let setup = Setup::new();
        let files = setup.path("files");
        std::fs::create_dir_all(&files).unwrap();
        if let Some((id, seconds)) = archive {
            short_archive(&files, id, seconds);
        }
        let server = FileServer::start(&files).await;
        let receiver = Receiver::start(fail_first).await;
        let config = setup.config(Some(&receiver.url()), "sqlite", 1, private);
        Scene {
            setup,
            files,
            server,
            receiver,
            config,
        }
    }

    pub fn serve(&self) -> Service {
        Service::start("serve", &self.config)
    }

    /// An OpenTok `available` callback for `<id>.zip` on the file server.
    pub fn available(&self, id: &str) -> Vec<u8> {
        opentok_event(
            id,
            "available",
            Some(&self.server.url(&format!("{id}.zip"))),
        )
    }
}

/// The generated LiveSwitch folder `rec`'s ready event, with every file's URL on `server`
/// (files the event does not name are found by connection id, as the media server names
/// them).
pub fn liveswitch_event(rec: &Path, server: &FileServer) -> Value {
    let mut event: Value =
        serde_json::from_slice(&std::fs::read(rec.join("event.json")).unwrap()).unwrap();
    for c in event["connectionRecordings"].as_array_mut().unwrap() {
        for (kind, ext) in [("audio", "mka"), ("video", "mkv")] {
            let name = c[format!("{kind}FileName")]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{}-0.{ext}", c["connectionId"].as_str().unwrap()));
            if rec.join(&name).exists() {
                c[format!("{kind}Url")] = Value::String(server.url(&name));
            }
        }
    }
    event
}

/// An EnableX recording of room `room-7`, conference `conf-42` in `files`: two participants
/// for `ms`, red with a flash at 1 s and blue with one at 1.5 s.
pub fn enablex_recording(files: &Path, ms: i64) {
    let spec = archive(
        "enablex",
        ContainerKind::Webm,
        vec![
            stream("p1", [200, 30, 30], vec![1_000], vec![segment(0, ms)]),
            stream("p2", [30, 30, 200], vec![1_500], vec![segment(0, ms)]),
        ],
    );
    mosaic::sample::enablex::write_folder(&spec, files, "room-7", "conf-42").unwrap();
}

/// The LiveSwitch demo recordings written to `files/` and served over HTTP.
pub async fn liveswitch_demo_served(setup: &Setup) -> (PathBuf, FileServer) {
    let rec = setup.path("files");
    mosaic::sample::liveswitch::write_folder(
        &mosaic::sample::liveswitch::demo(),
        &rec,
        &Default::default(),
    )
    .unwrap();
    let server = FileServer::start(&rec).await;
    (rec, server)
}
