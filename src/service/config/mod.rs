//! The service's configuration: a TOML file, then `MOSAIC_<KEY>` environment variables over
//! it (nested keys joined by `_`: `MOSAIC_OPENTOK_SECRET`, `MOSAIC_NOTIFY_0_URL`), so secrets
//! need not be in the file. Reading and merging are pure; the edge passes the file's text and
//! the environment in.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use toml::{Table, Value};

use super::ServiceError;
use crate::compose::plan::{PlanOptions, VideoMutePolicy, parse_size};
use crate::compose::trim::{TrimMode, TrimOptions};
use crate::compose::{ComposeOptions, OutputFormat, Speed};
use crate::layout::Layout;

/// What a job produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Product {
    /// One composite video.
    Compose,
    /// A folder of playable per-stream files.
    Repair,
}

/// Everything `mosaic serve` and `mosaic worker` read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address of the HTTP intake.
    pub listen: String,
    /// The SQLite queue and the jobs' work folders.
    pub data_dir: PathBuf,
    /// `sqlite` (a file in `data_dir`) or a `postgres://` URL shared by many workers.
    pub queue: String,
    /// Where outputs go: `file:///dir`, `s3://bucket/prefix`, `gs://…`, `az://…`.
    pub output: String,
    /// Jobs at once in this process; 0 makes `mosaic serve` an intake only.
    pub workers: usize,
    pub produce: Vec<Product>,
    /// Bearer token for `/v1/jobs` and the jobs page.
    pub api_token: Option<String>,
    /// Allow fetching from loopback and private addresses.
    pub allow_private_urls: bool,
    /// Object stores direct jobs (`POST /v1/jobs`) may read inputs from, besides
    /// `opentok.storage`.
    pub input_stores: Vec<String>,
    /// Largest webhook body accepted, in bytes.
    pub body_limit: usize,
    /// A claimed job's lease, renewed by heartbeats; a dead worker's job is taken over
    /// when it runs out.
    pub lease_secs: u64,
    /// How often an idle worker looks for work.
    pub poll_ms: u64,
    /// Attempts at a job before it is dead (errors worth retrying only).
    pub max_attempts: u32,
    /// Backoff between a job's attempts: from `retry_base_ms`, doubling, capped.
    pub retry_base_ms: u64,
    pub retry_cap_ms: u64,
    pub fetch: FetchConfig,
    pub compose: ComposeConfig,
    pub opentok: OpentokConfig,
    pub liveswitch: LiveswitchConfig,
    pub enablex: EnablexConfig,
    pub notify: Vec<NotifyTarget>,
    pub notify_retry: NotifyRetry,
    /// Events received, token ids used and finished jobs are deleted this many days after
    /// they were received or ended (outputs stay in the output store).
    pub retention_days: u64,
    pub http: HttpConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("mosaic-data"),
            queue: "sqlite".into(),
            output: String::new(),
            workers: 1,
            produce: vec![Product::Compose],
            api_token: None,
            allow_private_urls: false,
            input_stores: Vec::new(),
            body_limit: 1 << 20,
            lease_secs: 60,
            poll_ms: 1000,
            max_attempts: 5,
            retry_base_ms: 2_000,
            retry_cap_ms: 600_000,
            fetch: FetchConfig::default(),
            compose: ComposeConfig::default(),
            opentok: OpentokConfig::default(),
            liveswitch: LiveswitchConfig::default(),
            enablex: EnablexConfig::default(),
            notify: Vec::new(),
            notify_retry: NotifyRetry::default(),
            retention_days: 30,
            http: HttpConfig::default(),
        }
    }
}

/// The HTTP intake's limits against slow and abusive clients.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// A request's headers must arrive within this (an idle connection is closed after it).
    pub header_timeout_secs: u64,
    /// A request's body must arrive within this.
    pub body_timeout_secs: u64,
    /// Connections open at once; more wait to be accepted.
    pub max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            max_connections: 1024,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FetchConfig {
    /// Largest download, in bytes.
    pub max_bytes: u64,
    pub connect_timeout_secs: u64,
    /// Longest wait for the next bytes of a download.
    pub read_timeout_secs: u64,
    /// Tries of one download (network errors and 5xx only).
    pub tries: u32,
    /// Largest total of one job's downloads, in bytes.
    pub max_total_bytes: u64,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            max_bytes: 8 << 30,
            connect_timeout_secs: 10,
            read_timeout_secs: 60,
            tries: 3,
            max_total_bytes: 16 << 30,
        }
    }
}

/// Compose's options, named as its flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComposeConfig {
    /// `mp4`, `webm`, `mkv`, `m4a`, `opus` or `hls` (a playlist and its segments under the
    /// output's name).
    pub format: String,
    pub size: String,
    pub fps: u32,
    pub layout: String,
    pub video_mute: String,
    pub max_freeze: f64,
    pub labels: bool,
    pub speed: String,
    pub quality: u32,
    pub strict: bool,
    /// `off`, or an integrated loudness target in LUFS (`-16`).
    pub loudness: String,
    /// `off`, `empty` or `quiet` (see `mosaic compose --trim`).
    pub trim: String,
    /// Fan a composition out into chunk jobs of this many seconds that any worker takes (0:
    /// in one pass); see `mosaic compose --chunk-secs`.
    pub chunk_secs: u32,
    /// Seconds: only longer stretches are trimmed.
    pub trim_min: f64,
}

impl Default for ComposeConfig {
    fn default() -> Self {
        ComposeConfig {
            format: "mp4".into(),
            size: "1280x720".into(),
            fps: 30,
            layout: "bestFit".into(),
            video_mute: "freeze".into(),
            max_freeze: 1.0,
            labels: false,
            speed: "balanced".into(),
            quality: 23,
            strict: false,
            loudness: "off".into(),
            trim: "off".into(),
            trim_min: 10.0,
            chunk_secs: 0,
        }
    }
}

impl ComposeConfig {
    /// The output's format and compose's options.
    pub fn to_options(&self) -> Result<(OutputFormat, ComposeOptions), ServiceError> {
        let bad = |key: &str, why: String| ServiceError::Config(format!("compose.{key}: {why}"));
        let ext = match self.format.as_str() {
            "hls" => "m3u8",
            other => other,
        };
        let format = OutputFormat::from_path(std::path::Path::new(&format!("x.{ext}")))
            .ok_or_else(|| {
                bad(
                    "format",
                    format!("{:?} is not mp4, webm, mkv, m4a, opus or hls", self.format),
                )
            })?;
        let (w, h) = parse_size(&self.size).map_err(|e| bad("size", e))?;
        let layout = Layout::named(&self.layout).ok_or_else(|| {
            bad(
                "layout",
                format!(
                    "{:?} is not bestFit, pip, verticalPresentation, horizontalPresentation or speaker",
                    self.layout
                ),
            )
        })?;
        let video_mute = match self.video_mute.as_str() {
            "freeze" => VideoMutePolicy::Freeze,
            "black" => VideoMutePolicy::Black,
            "placeholder" => VideoMutePolicy::Placeholder,
            other => {
                return Err(bad(
                    "video_mute",
                    format!("{other:?} is not freeze, black or placeholder"),
                ));
            }
        };
        let speed = <Speed as clap::ValueEnum>::from_str(&self.speed, true).map_err(|_| {
            bad(
                "speed",
                format!("{:?} is not fast, balanced or quality", self.speed),
            )
        })?;
        let loudness = match self.loudness.trim() {
            "off" | "" => None,
            text => Some(text.parse::<f64>().map_err(|_| {
                bad(
                    "loudness",
                    format!("{text:?} is not off or a loudness in LUFS"),
                )
            })?),
        };
        let trim = match self.trim.as_str() {
            "off" | "" => None,
            text => Some(TrimOptions {
                mode: <TrimMode as clap::ValueEnum>::from_str(text, true)
                    .map_err(|_| bad("trim", format!("{text:?} is not off, empty or quiet")))?,
                min_ms: (self.trim_min * 1000.0).round() as i64,
            }),
        };
        let opts = ComposeOptions {
            plan: PlanOptions {
                width: w,
                height: h,
                fps: self.fps,
                layout,
                video_mute,
                max_freeze_ms: (self.max_freeze.max(0.0) * 1000.0).round() as i64,
                from_ms: None,
                to_ms: None,
            },
            labels: self.labels,
            format: Some(format),
            speed,
            quality: self.quality,
            strict: self.strict,
            loudness,
            speakers: false,
            chapters: false,
            speaker_rules: Default::default(),
            trim,
            chunk_secs: (self.chunk_secs > 0).then_some(self.chunk_secs),
        };
        opts.validate()
            .map_err(|e| ServiceError::Config(format!("compose: {e}")))?;
        Ok((format, opts))
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpentokConfig {
    /// The project's callback signature secret.
    pub secret: Option<String>,
    /// Accept callbacks without a signature.
    pub allow_unsigned: bool,
    /// Where "uploaded" archives land: `<partnerId>/<archiveId>/archive.zip` under it.
    pub storage: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveswitchConfig {
    /// Shared secret of each application id.
    pub secrets: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnablexConfig {
    /// Required on every EnableX call, as `?token=` or an `X-Mosaic-Token` header.
    pub token: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyTarget {
    pub url: String,
    /// A Standard Webhooks secret (`whsec_` and base64).
    pub secret: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyRetry {
    /// The first retry's delay; each next one doubles, up to `cap_ms`.
    pub base_ms: u64,
    pub cap_ms: u64,
    /// After this long a notification is dead.
    pub max_age_secs: u64,
}

impl Default for NotifyRetry {
    fn default() -> Self {
        NotifyRetry {
            base_ms: 1_000,
            cap_ms: 1_800_000,
            max_age_secs: 86_400,
        }
    }
}

impl Config {
    /// Reads a configuration from the file's text and the environment's `MOSAIC_*`
    /// variables (which win), then checks it.
    pub fn parse(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ServiceError> {
        let file: Table = toml::from_str(text).map_err(|e| ServiceError::Config(e.to_string()))?;
        let mut merged =
            Value::try_from(Config::default()).map_err(|e| ServiceError::Config(e.to_string()))?;
        env::merge(&mut merged, Value::Table(file));
        for (name, value) in env {
            if let Some(key) = name.strip_prefix("MOSAIC_") {
                env::apply_env(&mut merged, key, &value)
                    .map_err(|why| ServiceError::Config(format!("{name}: {why}")))?;
            }
        }
        let config: Config = merged
            .try_into()
            .map_err(|e: toml::de::Error| ServiceError::Config(e.to_string()))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ServiceError> {
        let bad = |s: String| Err(ServiceError::Config(s));
        if self.output.is_empty() {
            return bad("output: is required (file:///dir, s3://bucket/prefix, …)".into());
        }
        if self.workers > 64 {
            return bad(format!("workers: {} is more than 64", self.workers));
        }
        if self.produce.is_empty() {
            return bad("produce: name compose and/or repair".into());
        }
        if self.lease_secs < 2 {
            return bad("lease_secs: at least 2".into());
        }
        if self.queue != "sqlite"
            && !self.queue.starts_with("postgres://")
            && !self.queue.starts_with("postgresql://")
        {
            return bad(format!(
                "queue: {:?} is not sqlite or a postgres:// URL",
                self.queue
            ));
        }
        for (i, n) in self.notify.iter().enumerate() {
            if standardwebhooks::Webhook::new(&n.secret).is_err() {
                return bad(format!("notify[{i}].secret: not a whsec_ base64 secret"));
            }
            if url::Url::parse(&n.url).is_err() {
                return bad(format!("notify[{i}].url: {:?} is not a URL", n.url));
            }
        }
        if self.http.max_connections == 0 || self.http.header_timeout_secs == 0 {
            return bad("http: max_connections and header_timeout_secs must be at least 1".into());
        }
        if self.retention_days == 0 {
            return bad("retention_days: at least 1".into());
        }
        self.check_secrets()?;
        self.compose.to_options()?;
        Ok(())
    }

    /// Every token and secret that is set, by its key.
    fn secrets(&self) -> Vec<(String, &str)> {
        let mut all = Vec::new();
        if let Some(t) = &self.api_token {
            all.push(("api_token".to_owned(), t.as_str()));
        }
        if let Some(s) = &self.opentok.secret {
            all.push(("opentok.secret".to_owned(), s.as_str()));
        }
        for (app, s) in &self.liveswitch.secrets {
            all.push((format!("liveswitch.secrets.{app:?}"), s.as_str()));
        }
        if let Some(t) = &self.enablex.token {
            all.push(("enablex.token".to_owned(), t.as_str()));
        }
        for (i, n) in self.notify.iter().enumerate() {
            all.push((format!("notify[{i}].secret"), n.secret.as_str()));
        }
        all
    }

    /// Refuses, naming the key, a token or secret that is empty, shorter than
    /// [`MIN_SECRET_LEN`] bytes (a notify secret: once decoded) or one of the documented
    /// example values (`docs/mosaic.toml`).
    fn check_secrets(&self) -> Result<(), ServiceError> {
        let examples = documented_examples();
        for (key, value) in self.secrets() {
            let len = match value.strip_prefix("whsec_") {
                Some(b64) => {
                    use base64::Engine;
                    base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .map_or(0, |k| k.len())
                }
                None => value.len(),
            };
            let why = if value.trim().is_empty() {
                "is empty".to_owned()
            } else if examples.iter().any(|e| e == value) {
                "is the documented example value; set a secret of your own".to_owned()
            } else if len < MIN_SECRET_LEN {
                format!("is {len} bytes long; a secret needs at least {MIN_SECRET_LEN}")
            } else {
                continue;
            };
            return Err(ServiceError::Config(format!("{key}: {why}")));
        }
        Ok(())
    }

    /// The object stores a job of `origin` may read its input from: OpenTok's uploaded
    /// archives from `opentok.storage`, direct API jobs from `input_stores`, the others none
    /// (their files come by http(s) URLs).
    pub fn stores_for(&self, origin: super::job::Origin) -> Vec<String> {
        use super::job::Origin;
        match origin {
            Origin::Opentok => self.opentok.storage.iter().cloned().collect(),
            Origin::Api => self.input_stores.clone(),
            Origin::Liveswitch | Origin::Enablex => Vec::new(),
        }
    }

    /// The job's retry delays.
    pub fn job_backoff(&self) -> super::backoff::Backoff {
        super::backoff::Backoff {
            base_ms: self.retry_base_ms,
            cap_ms: self.retry_cap_ms,
        }
    }
}

/// The shortest token or secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 16;

/// The example configuration's tokens and secrets, which must never be used as they are.
fn documented_examples() -> Vec<String> {
    let Ok(example) = toml::from_str::<Table>(include_str!("../../../docs/mosaic.toml")) else {
        return Vec::new();
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let mut found = Vec::new();
    found.extend(text(example.get("api_token")));
    for (section, key) in [("opentok", "secret"), ("enablex", "token")] {
        found.extend(text(example.get(section).and_then(|t| t.get(key))));
    }
    if let Some(Value::Table(secrets)) = example.get("liveswitch").and_then(|l| l.get("secrets")) {
        found.extend(
            secrets
                .values()
                .filter_map(|v| v.as_str().map(str::to_owned)),
        );
    }
    if let Some(Value::Array(targets)) = example.get("notify") {
        found.extend(targets.iter().filter_map(|t| text(t.get("secret"))));
    }
    found
}

mod env;
#[cfg(test)]
mod tests;
