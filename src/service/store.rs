//! Object stores (edge): reading an input from a configured store and delivering outputs,
//! through `object_store`. `file://`, `s3://`, `gs://` and `az://` URLs; credentials come
//! from the usual environment variables (`AWS_ACCESS_KEY_ID`, `GOOGLE_SERVICE_ACCOUNT`, …).
//! Every write is atomic: the local store writes a staging file and renames it, the cloud
//! stores complete a multipart upload, so a reader never sees half an output.

use std::path::Path as FsPath;
use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use tokio::io::AsyncReadExt;

use super::fetch::FetchError;

/// A store and the folder in it.
#[derive(Clone)]
pub struct Location {
    pub store: Arc<dyn ObjectStore>,
    pub prefix: Path,
    /// The URL, without a trailing `/`.
    pub url: String,
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

impl Location {
    /// Opens the store a URL names.
    pub fn parse(url: &str) -> Result<Location, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        if parsed.scheme() == "file" {
            let dir = parsed
                .to_file_path()
                .map_err(|_| format!("{url:?} is not a local path"))?;
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let env = std::env::vars().map(|(k, v)| (k.to_ascii_lowercase(), v));
        let (store, prefix) = object_store::parse_url_opts(&parsed, env)
            .map_err(|e| format!("cannot open the store {url:?}: {e}"))?;
        Ok(Location {
            store: Arc::from(store),
            prefix,
            url: url.trim_end_matches('/').to_owned(),
        })
    }

    /// The path of `rel` (a `/`-separated relative name) in the store.
    pub fn child(&self, rel: &str) -> Path {
        rel.split('/')
            .filter(|p| !p.is_empty())
            .fold(self.prefix.clone(), |p, part| p.clone().join(part))
    }

    /// Copies a local file to `rel`, atomically; gives its URL.
    pub async fn put_file(&self, local: &FsPath, rel: &str) -> Result<String, String> {
        let path = self.child(rel);
        let upload = self
            .store
            .put_multipart(&path)
            .await
            .map_err(|e| format!("writing {rel}: {e}"))?;
        let mut writer = WriteMultipart::new(upload);
        let mut file = tokio::fs::File::open(local)
            .await
            .map_err(|e| format!("reading {}: {e}", local.display()))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file
                .read(&mut buf)
                .await
                .map_err(|e| format!("reading {}: {e}", local.display()))?;
            if n == 0 {
                break;
            }
            writer
                .wait_for_capacity(4)
                .await
                .map_err(|e| format!("writing {rel}: {e}"))?;
            writer.write(&buf[..n]);
        }
        writer
            .finish()
            .await
            .map_err(|e| format!("writing {rel}: {e}"))?;
        Ok(format!("{}/{}", self.url, rel))
    }
}

/// Reads an object named by its full URL (which must lie under one of `allowed`) into
/// `dest`, at most `max_bytes`.
pub async fn read_to_file(
    url: &str,
    allowed: &[String],
    dest: &FsPath,
    max_bytes: u64,
) -> Result<u64, FetchError> {
    let under = allowed.iter().find(|a| {
        let a = a.trim_end_matches('/');
        url.starts_with(&format!("{a}/"))
    });
    let Some(base) = under else {
        return Err(FetchError::fatal(format!(
            "{url:?} is not under a configured store (opentok.storage, input_stores)"
        )));
    };
    if url.contains("/../") || url.contains("/./") {
        return Err(FetchError::fatal(format!("{url:?} has dot segments")));
    }
    let loc = Location::parse(base).map_err(FetchError::fatal)?;
    let rel = &url[base.trim_end_matches('/').len() + 1..];
    let rel = percent_decoded(rel);
    let path = loc.child(&rel);
    let got = match loc.store.get(&path).await {
        Ok(g) => g,
        Err(object_store::Error::NotFound { .. }) => {
            // Not there yet (an "uploaded" event may arrive early): worth retrying.
            return Err(FetchError::retry(format!("{url} does not exist (yet)")));
        }
        Err(e) => return Err(FetchError::retry(format!("reading {url}: {e}"))),
    };
    if got.meta.size > max_bytes {
        return Err(FetchError::fatal(format!(
            "{url} is {} bytes, over the limit of {max_bytes}",
            got.meta.size
        )));
    }
    super::fetch::save_stream(got.into_stream(), dest, max_bytes, url).await
}

fn percent_decoded(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_owned())
}
