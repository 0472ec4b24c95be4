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
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            max_bytes: 8 << 30,
            connect_timeout_secs: 10,
            read_timeout_secs: 60,
            tries: 3,
        }
    }
}

/// Compose's options, named as its flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComposeConfig {
    /// `mp4`, `webm`, `mkv`, `m4a` or `opus`.
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
        }
    }
}

impl ComposeConfig {
    /// The output's format and compose's options.
    pub fn to_options(&self) -> Result<(OutputFormat, ComposeOptions), ServiceError> {
        let bad = |key: &str, why: String| ServiceError::Config(format!("compose.{key}: {why}"));
        let format = OutputFormat::from_path(std::path::Path::new(&format!("x.{}", self.format)))
            .ok_or_else(|| {
            bad(
                "format",
                format!("{:?} is not mp4, webm, mkv, m4a or opus", self.format),
            )
        })?;
        let (w, h) = parse_size(&self.size).map_err(|e| bad("size", e))?;
        let layout = Layout::named(&self.layout).ok_or_else(|| {
            bad(
                "layout",
                format!(
                    "{:?} is not bestFit, pip, verticalPresentation or horizontalPresentation",
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
        merge(&mut merged, Value::Table(file));
        for (name, value) in env {
            if let Some(key) = name.strip_prefix("MOSAIC_") {
                apply_env(&mut merged, key, &value)
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
        self.compose.to_options()?;
        Ok(())
    }

    /// The job's retry delays.
    pub fn job_backoff(&self) -> super::backoff::Backoff {
        super::backoff::Backoff {
            base_ms: self.retry_base_ms,
            cap_ms: self.retry_cap_ms,
        }
    }
}

/// Lays `over`'s keys onto `base`, table by table.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Table(b), Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) if existing.is_table() && v.is_table() => merge(existing, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Sets the value an environment variable names (`OPENTOK_SECRET`, `NOTIFY_0_URL`,
/// `LIVESWITCH_SECRETS_<application id>`), matched against the keys the configuration has
/// (case-insensitively; keys may hold `_` themselves).
fn apply_env(root: &mut Value, key: &str, value: &str) -> Result<(), String> {
    match root {
        Value::Table(table) => {
            // The longest key that the name starts with wins (`data_dir` before `data`).
            let mut names: Vec<String> = table.keys().cloned().collect();
            names.sort_by_key(|k| std::cmp::Reverse(k.len()));
            for name in names {
                let upper = name.to_ascii_uppercase();
                if key.eq_ignore_ascii_case(&upper) {
                    let slot = table.get_mut(&name).ok_or("vanished key")?;
                    *slot = typed_like(slot, value)?;
                    return Ok(());
                }
                if let Some(rest) = strip_prefix_ci(key, &format!("{upper}_")) {
                    let slot = table.get_mut(&name).ok_or("vanished key")?;
                    if name == "secrets" {
                        // A map keyed by application id: the rest is the id, as written.
                        if let Value::Table(map) = slot {
                            map.insert(rest.to_owned(), Value::String(value.to_owned()));
                            return Ok(());
                        }
                    }
                    return apply_env(slot, rest, value);
                }
            }
            Err(format!("no configuration key matches {key:?}"))
        }
        Value::Array(items) => {
            let (index, rest) = key.split_once('_').ok_or("needs an index and a key")?;
            let index: usize = index
                .parse()
                .map_err(|_| format!("{index:?} is not an index"))?;
            while items.len() <= index {
                items.push(Value::Table(Table::new()));
            }
            match &mut items[index] {
                Value::Table(t) => {
                    t.insert(rest.to_ascii_lowercase(), Value::String(value.to_owned()));
                    Ok(())
                }
                _ => Err("not a list of tables".into()),
            }
        }
        _ => Err(format!("{key:?} is not a table")),
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() > prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

/// The environment's text as the kind of value the key holds.
fn typed_like(existing: &Value, text: &str) -> Result<Value, String> {
    Ok(match existing {
        Value::Boolean(_) => Value::Boolean(match text {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => return Err(format!("{text:?} is not true or false")),
        }),
        Value::Integer(_) => Value::Integer(
            text.trim()
                .parse()
                .map_err(|_| format!("{text:?} is not a whole number"))?,
        ),
        Value::Float(_) => Value::Float(
            text.trim()
                .parse()
                .map_err(|_| format!("{text:?} is not a number"))?,
        ),
        Value::Array(_) => Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        ),
        _ => Value::String(text.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn file_then_environment() {
        let text = r#"
            output = "file:///tmp/out"
            workers = 2
            [opentok]
            secret = "in-file"
            [liveswitch.secrets]
            "app-1" = "s1"
            [[notify]]
            url = "http://127.0.0.1:9/hook"
            secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        "#;
        let c = Config::parse(
            text,
            env(&[
                ("MOSAIC_OPENTOK_SECRET", "from-env"),
                ("MOSAIC_DATA_DIR", "/var/lib/mosaic"),
                ("MOSAIC_ALLOW_PRIVATE_URLS", "true"),
                ("MOSAIC_PRODUCE", "compose,repair"),
                ("MOSAIC_LIVESWITCH_SECRETS_app-2", "s2"),
                ("MOSAIC_NOTIFY_0_URL", "http://127.0.0.1:10/hook"),
                ("MOSAIC_COMPOSE_SIZE", "640x480"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        assert_eq!(c.workers, 2);
        assert_eq!(c.opentok.secret.as_deref(), Some("from-env"));
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/mosaic"));
        assert!(c.allow_private_urls);
        assert_eq!(c.produce, vec![Product::Compose, Product::Repair]);
        assert_eq!(c.liveswitch.secrets["app-1"], "s1");
        assert_eq!(c.liveswitch.secrets["app-2"], "s2");
        assert_eq!(c.notify[0].url, "http://127.0.0.1:10/hook");
        assert_eq!(c.compose.size, "640x480");
        assert_eq!(c.lease_secs, 60);
    }

    #[test]
    fn the_documented_example_is_every_default() {
        let example = Config::parse(include_str!("../../docs/mosaic.toml"), Vec::new()).unwrap();
        let defaults = Config::default();
        assert_eq!(example.listen, defaults.listen);
        assert_eq!(example.fetch.max_bytes, defaults.fetch.max_bytes);
        assert_eq!(example.compose, defaults.compose);
        assert_eq!(example.lease_secs, defaults.lease_secs);
        assert_eq!(example.notify_retry.cap_ms, defaults.notify_retry.cap_ms);
        assert_eq!(example.body_limit, defaults.body_limit);
        assert_eq!(example.retry_cap_ms, defaults.retry_cap_ms);
    }

    #[test]
    fn the_readme_shows_the_documented_example() {
        let readme = include_str!("../../README.md");
        assert!(readme.contains(include_str!("../../docs/mosaic.toml")));
    }

    #[test]
    fn mistakes_are_named() {
        let err =
            |text: &str, e: &[(&str, &str)]| Config::parse(text, env(e)).unwrap_err().to_string();
        assert!(err("", &[]).contains("output: is required"));
        assert!(err("output = \"file:///x\"\nworkrs = 2", &[]).contains("workrs"));
        assert!(
            err("output = \"file:///x\"", &[("MOSAIC_WORKERS", "many")]).contains("MOSAIC_WORKERS")
        );
        assert!(
            err("output = \"file:///x\"", &[("MOSAIC_NOPE", "1")]).contains("no configuration key")
        );
        assert!(err("output = \"file:///x\"\nqueue = \"mysql://x\"", &[]).contains("queue"));
        assert!(
            err("output = \"file:///x\"\n[compose]\nlayout = \"grid\"", &[])
                .contains("compose.layout")
        );
        assert!(
            err(
                "output = \"file:///x\"\n[[notify]]\nurl = \"http://h/\"\nsecret = \"***\"",
                &[]
            )
            .contains("notify[0].secret")
        );
    }
}
