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

    /// Whether anything is stored at `rel` or under `rel/`.
    pub async fn taken(&self, rel: &str) -> Result<bool, String> {
        use futures_util::StreamExt;
        let path = self.child(rel);
        match self.store.head(&path).await {
            Ok(_) => return Ok(true),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => {
                return Err(format!(
                    "the output store cannot tell whether {rel} exists: {e}"
                ));
            }
        }
        let mut under = self.store.list(Some(&path));
        match under.next().await {
            None => Ok(false),
            Some(Ok(_)) => Ok(true),
            Some(Err(e)) => Err(format!("the output store cannot list {rel}/: {e}")),
        }
    }

    /// Reads the object at `rel` into the local file `dest` (at most `max_bytes`); gives its
    /// size.
    pub async fn get_to_file(
        &self,
        rel: &str,
        dest: &FsPath,
        max_bytes: u64,
    ) -> Result<u64, String> {
        let got = self
            .store
            .get(&self.child(rel))
            .await
            .map_err(|e| format!("reading {rel} from the output store: {e}"))?;
        super::fetch::save_stream(got.into_stream(), dest, max_bytes, rel)
            .await
            .map_err(|e| e.message)
    }

    /// Writes a local file to `rel`, replacing what is there: for an object that is the job's
    /// own and changes while it runs (an HLS event playlist). Uploaded under `staging` first and
    /// moved into place, so a reader sees the old or the new, never a part.
    pub async fn put_replace(
        &self,
        local: &FsPath,
        rel: &str,
        staging: &str,
    ) -> Result<String, String> {
        let staged = self.child(staging);
        if let Err(e) = self.upload(local, &staged, rel).await {
            let _ = self.store.delete(&staged).await;
            return Err(match e {
                PutError::Exists(rel) => format!("{rel} exists"),
                PutError::Store(e) => e,
            });
        }
        self.store
            .rename(&staged, &self.child(rel))
            .await
            .map_err(|e| format!("writing {rel} to the output store: {e}"))?;
        Ok(format!("{}/{rel}", self.url))
    }

    /// Writes `bytes` to `rel`, replacing what is there, as [`Location::put_replace`] does a
    /// file (a playlist rendered in memory).
    pub async fn put_replace_bytes(
        &self,
        bytes: Vec<u8>,
        rel: &str,
        staging: &str,
    ) -> Result<String, String> {
        let staged = self.child(staging);
        if let Err(e) = self.store.put(&staged, bytes.into()).await {
            let _ = self.store.delete(&staged).await;
            return Err(format!("the output store refused {rel}: {e}"));
        }
        self.store
            .rename(&staged, &self.child(rel))
            .await
            .map_err(|e| format!("writing {rel} to the output store: {e}"))?;
        Ok(format!("{}/{rel}", self.url))
    }

    /// The names of the objects under `rel/` (relative to it).
    pub async fn names_under(&self, rel: &str) -> Result<Vec<String>, String> {
        use futures_util::StreamExt;
        let folder = self.child(rel);
        let listed: Vec<_> = self.store.list(Some(&folder)).collect().await;
        let mut names = Vec::new();
        for meta in listed {
            let meta = meta.map_err(|e| format!("listing {rel}/ in the output store: {e}"))?;
            if let Some(name) = meta.location.prefix_match(&folder) {
                names.push(
                    name.map(|p| p.as_ref().to_owned())
                        .collect::<Vec<_>>()
                        .join("/"),
                );
            }
        }
        names.sort();
        Ok(names)
    }

    /// Deletes the object at `rel` (nothing if there is none).
    pub async fn delete(&self, rel: &str) -> Result<(), String> {
        match self.store.delete(&self.child(rel)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(format!("deleting {rel} from the output store: {e}")),
        }
    }

    /// Deletes every object under `rel/` (nothing if there is none).
    pub async fn delete_under(&self, rel: &str) -> Result<(), String> {
        use futures_util::StreamExt;
        let listed: Vec<_> = self.store.list(Some(&self.child(rel))).collect().await;
        for meta in listed {
            let meta = meta.map_err(|e| format!("listing {rel}/ in the output store: {e}"))?;
            match self.store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => {
                    return Err(format!(
                        "deleting {} from the output store: {e}",
                        meta.location
                    ));
                }
            }
        }
        Ok(())
    }

    /// Writes a local file to `rel` without ever replacing an object: uploaded under
    /// `staging` (a key of the job's own) first, then moved into place only if nothing is at
    /// `rel` (atomically where the store can: a hard link on a local folder; elsewhere after
    /// a check). Nothing is left at `staging` or `rel` when it fails. Gives the URL.
    pub async fn put_new(
        &self,
        local: &FsPath,
        rel: &str,
        staging: &str,
    ) -> Result<String, PutError> {
        let staged = self.child(staging);
        if let Err(e) = self.upload(local, &staged, rel).await {
            let _ = self.store.delete(&staged).await;
            return Err(e);
        }
        let target = self.child(rel);
        let moved = match self.store.rename_if_not_exists(&staged, &target).await {
            Err(
                object_store::Error::NotSupported { .. }
                | object_store::Error::NotImplemented { .. },
            ) => {
                // A store without create-only writes (S3 unless configured): checked first.
                match self.store.head(&target).await {
                    Ok(_) => Err(object_store::Error::AlreadyExists {
                        path: target.to_string(),
                        source: "found by a check before the write".into(),
                    }),
                    Err(object_store::Error::NotFound { .. }) => {
                        self.store.rename(&staged, &target).await
                    }
                    Err(e) => Err(e),
                }
            }
            other => other,
        };
        match moved {
            Ok(()) => Ok(format!("{}/{}", self.url, rel)),
            Err(e) => {
                let _ = self.store.delete(&staged).await;
                Err(match e {
                    object_store::Error::AlreadyExists { .. } => PutError::Exists(rel.to_owned()),
                    e => PutError::Store(format!("the output store refused {rel}: {e}")),
                })
            }
        }
    }

    /// Uploads a local file to `path` (multipart: never whole in memory); aborted on failure.
    async fn upload(&self, local: &FsPath, path: &Path, rel: &str) -> Result<(), PutError> {
        let refused = |e: object_store::Error| {
            PutError::Store(format!("the output store refused {rel}: {e}"))
        };
        let upload = self.store.put_multipart(path).await.map_err(refused)?;
        let mut writer = WriteMultipart::new(upload);
        let result = async {
            let mut file = tokio::fs::File::open(local)
                .await
                .map_err(|e| PutError::Store(format!("reading {}: {e}", local.display())))?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = file
                    .read(&mut buf)
                    .await
                    .map_err(|e| PutError::Store(format!("reading {}: {e}", local.display())))?;
                if n == 0 {
                    return Ok(());
                }
                writer.wait_for_capacity(4).await.map_err(refused)?;
                writer.write(&buf[..n]);
            }
        }
        .await;
        match result {
            Ok(()) => writer.finish().await.map(|_| ()).map_err(refused),
            Err(e) => {
                let _ = writer.abort().await;
                Err(e)
            }
        }
    }
}

/// Why an output could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PutError {
    /// Something is already stored under the name (not written: never overwritten).
    #[error("{0} already exists in the output store")]
    Exists(String),
    #[error("{0}")]
    Store(String),
}

/// The store of `stores` that `url` lies under, and the object's path in it: every segment
/// percent-decoded on its own and refused if it then names a folder (`a%2Fb`), a dot
/// segment or nothing. A URL with a query or fragment is refused too.
pub fn under_store<'s>(
    url: &str,
    stores: &'s [String],
) -> Result<(&'s str, Vec<String>), FetchError> {
    let shown = super::fetch::redact(url);
    let base = stores
        .iter()
        .map(|a| a.trim_end_matches('/'))
        .find(|a| url.starts_with(&format!("{a}/")))
        .ok_or_else(|| {
            FetchError::fatal(format!(
                "{shown:?} is not under a store configured for this source"
            ))
        })?;
    if url.contains(['?', '#']) {
        return Err(FetchError::fatal(format!(
            "{shown:?}: a store object's URL has no query or fragment"
        )));
    }
    let mut parts = Vec::new();
    for raw in url[base.len() + 1..].split('/') {
        let part = percent_decoded(raw);
        if part.is_empty() || part == "." || part == ".." || part.contains(['/', '\\', '\0']) {
            return Err(FetchError::fatal(format!(
                "{shown:?}: the path segment {raw:?} is not a plain name"
            )));
        }
        parts.push(part);
    }
    Ok((base, parts))
}

/// Reads an object named by its full URL (which must lie under one of `allowed`) into
/// `dest`, at most `max_bytes`.
pub async fn read_to_file(
    url: &str,
    allowed: &[String],
    dest: &FsPath,
    max_bytes: u64,
) -> Result<u64, FetchError> {
    let (base, parts) = under_store(url, allowed)?;
    let shown = super::fetch::redact(url);
    let loc = Location::parse(base).map_err(FetchError::fatal)?;
    let path = parts
        .iter()
        .fold(loc.prefix.clone(), |p, part| p.clone().join(part.as_str()));
    let got = match loc.store.get(&path).await {
        Ok(g) => g,
        Err(object_store::Error::NotFound { .. }) => {
            // Not there yet (an "uploaded" event may arrive early): worth retrying.
            return Err(FetchError::retry(format!("{shown} does not exist (yet)")));
        }
        Err(e) => return Err(FetchError::retry(format!("reading {shown}: {e}"))),
    };
    if got.meta.size > max_bytes {
        return Err(FetchError::fatal(format!(
            "{shown} is {} bytes, over the limit of {max_bytes}",
            got.meta.size
        )));
    }
    super::fetch::save_stream(got.into_stream(), dest, max_bytes, &shown).await
}

fn percent_decoded(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_paths_decode_each_segment_and_refuse_folders_in_them() {
        let stores = vec!["file:///s/".to_string(), "file:///t".to_string()];
        let (base, parts) = under_store("file:///s/123/arch%201/archive.zip", &stores).unwrap();
        assert_eq!(base, "file:///s");
        assert_eq!(parts, ["123", "arch 1", "archive.zip"]);
        for bad in [
            "file:///s/1%2F..%2F2/archive.zip",
            "file:///s/../t/archive.zip",
            "file:///s/%2e%2e/archive.zip",
            "file:///s//archive.zip",
            "file:///s/a.zip?x=1",
            "file:///u/a.zip",
            "file:///sx/a.zip",
        ] {
            assert!(under_store(bad, &stores).is_err(), "{bad}");
        }
        assert!(under_store("file:///t/a.zip", &stores).is_ok());
        assert!(
            under_store("file:///t/a.zip", &[]).is_err(),
            "no store for this source"
        );
    }
}
