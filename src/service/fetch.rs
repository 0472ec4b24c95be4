//! Downloads (edge): streamed to disk, never whole in memory; a size limit and the
//! announced size checked; `http`/`https` only (or a configured store); no loopback, private
//! or link-local address unless allowed (checked on the resolved address, which the request
//! is then pinned to, and again on every redirect); connect and read timeouts; retries with
//! backoff for network errors and 5xx.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::backoff::{Backoff, jitter};
use super::config::FetchConfig;
use super::job::Fetch;

/// Why a download failed, and whether trying again could help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FetchError {
    pub message: String,
    pub retry: bool,
}

impl FetchError {
    pub fn fatal(message: impl Into<String>) -> FetchError {
        FetchError {
            message: message.into(),
            retry: false,
        }
    }
    pub fn retry(message: impl Into<String>) -> FetchError {
        FetchError {
            message: message.into(),
            retry: true,
        }
    }
}

/// What a download may do.
#[derive(Debug, Clone)]
pub struct Policy {
    pub limits: FetchConfig,
    pub allow_private: bool,
    /// Delay between tries.
    pub backoff: Backoff,
}

/// True for an address on the public internet: not loopback, private, link-local,
/// shared (CGNAT), benchmarking, documentation, multicast or reserved, and for IPv6 not an
/// address that embeds an IPv4 one mosaic cannot check (NAT64 `64:ff9b::/96` and
/// `64:ff9b:1::/48`, 6to4 `2002::/16`, Teredo `2001::/32`; the IPv4-mapped and -compatible
/// forms are judged by their IPv4 address).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space
                || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
                || (a == 192 && b == 0 && c == 2) // documentation
                || (a == 198 && (b == 18 || b == 19)) // benchmarking 198.18.0.0/15
                || (a == 198 && b == 51 && c == 100) // documentation
                || (a == 203 && b == 0 && c == 113) // documentation
                || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            let first = s[0];
            if s[..6] == [0; 6] {
                // ::/96, IPv4-compatible (deprecated): ::1 and :: are caught below too.
                return !v6.is_loopback()
                    && !v6.is_unspecified()
                    && is_public(IpAddr::V4(std::net::Ipv4Addr::new(
                        (s[6] >> 8) as u8,
                        s[6] as u8,
                        (s[7] >> 8) as u8,
                        s[7] as u8,
                    )));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link local
                || (first & 0xffc0) == 0xfec0 // site local (deprecated)
                || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64 64:ff9b::/96 and 64:ff9b:1::/48
                || first == 0x2002 // 6to4
                || (first == 0x2001 && s[1] == 0) // Teredo 2001::/32
                || (first == 0x2001 && s[1] == 0x0db8) // documentation
                || (first == 0x0100 && s[1..4] == [0, 0, 0])) // discard-only 100::/64
        }
    }
}

/// Checks at intake that a URL may be fetched at all: `http`/`https` on a public address
/// (unless private ones are allowed), or under one of `stores` (those configured for the
/// job's origin).
pub async fn check_url(from: &str, policy: &Policy, stores: &[String]) -> Result<(), FetchError> {
    if from.starts_with("http://") || from.starts_with("https://") {
        let url = url::Url::parse(from)
            .map_err(|e| FetchError::fatal(format!("{:?} is not a URL: {e}", redact(from))))?;
        resolve(&url, policy.allow_private).await.map(|_| ())
    } else if super::store::under_store(from, stores).is_ok() {
        Ok(())
    } else {
        Err(FetchError::fatal(format!(
            "{:?} is neither http(s) nor under a store configured for this source",
            redact(from)
        )))
    }
}

/// Downloads `f` into `dest`, with the policy's tries, at most `budget` bytes (what is left
/// of the job's total) and the per-file limit. Gives the size.
pub async fn fetch(
    f: &Fetch,
    dest: &Path,
    policy: &Policy,
    stores: &[String],
    budget: u64,
) -> Result<u64, FetchError> {
    let partial = dest.with_extension("partial");
    let mut attempt = 0;
    let result = loop {
        attempt += 1;
        let max = policy.limits.max_bytes.min(budget);
        let got = if f.from.starts_with("http://") || f.from.starts_with("https://") {
            http_once(f, &partial, policy, max).await
        } else {
            super::store::read_to_file(&f.from, stores, &partial, max).await
        };
        match got {
            Err(e) if e.retry && attempt < policy.limits.tries.max(1) => {
                let wait = policy.backoff.delay_ms(attempt, jitter());
                tracing::warn!(url = %redact(&f.from), error = %e, wait_ms = wait, "download failed; trying again");
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
            other => break other,
        }
    };
    let size = match result {
        Ok(size) => size,
        Err(e) => {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(e);
        }
    };
    if let Some(announced) = f.size
        && announced != size
    {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(FetchError::fatal(format!(
            "{} is {size} bytes, but the event announced {announced}",
            redact(&f.from)
        )));
    }
    tokio::fs::rename(&partial, dest)
        .await
        .map_err(|e| FetchError::retry(format!("renaming {}: {e}", dest.display())))?;
    Ok(size)
}

/// A URL as it may be shown (logs, errors, the API, pages, notifications): without its
/// query and fragment (pre-signed URLs carry credentials there) and without a user name or
/// password before the host.
pub fn redact(url: &str) -> String {
    let bare = url.split(['?', '#']).next().unwrap_or(url);
    match bare.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => bare.to_owned(),
    }
}

/// A download error's text without the URL reqwest puts in it (which holds the query).
fn network_error(shown: &str, e: reqwest::Error) -> FetchError {
    FetchError::retry(format!("{shown}: {}", e.without_url()))
}

/// The addresses a URL's host may be fetched from, or why not.
async fn resolve(url: &url::Url, allow_private: bool) -> Result<Vec<SocketAddr>, FetchError> {
    let host = url
        .host_str()
        .ok_or_else(|| FetchError::fatal(format!("{} has no host", redact(url.as_str()))))?;
    let port = url.port_or_known_default().unwrap_or(443);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| FetchError::retry(format!("cannot resolve {host}: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(FetchError::retry(format!("{host} resolves to no address")));
    }
    if !allow_private && let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
        return Err(FetchError::fatal(format!(
            "{host} is a private or loopback address ({}); set allow_private_urls to fetch from it",
            bad.ip()
        )));
    }
    Ok(addrs)
}

async fn http_once(f: &Fetch, dest: &Path, policy: &Policy, max: u64) -> Result<u64, FetchError> {
    let limits = &policy.limits;
    let mut url = url::Url::parse(&f.from)
        .map_err(|e| FetchError::fatal(format!("{:?} is not a URL: {e}", redact(&f.from))))?;
    let mut response = None;
    for _hop in 0..6 {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::fatal(format!(
                "{} is not http or https",
                redact(url.as_str())
            )));
        }
        let addrs = resolve(&url, policy.allow_private).await?;
        let host = url.host_str().unwrap_or_default().to_owned();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(limits.connect_timeout_secs))
            .read_timeout(Duration::from_secs(limits.read_timeout_secs))
            .resolve_to_addrs(&host, &addrs)
            .no_proxy()
            .build()
            .map_err(|e| FetchError::fatal(format!("HTTP client: {e}")))?;
        let r = client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| network_error(&redact(url.as_str()), e))?;
        if r.status().is_redirection() {
            let next = r
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| url.join(l).ok())
                .ok_or_else(|| FetchError::fatal("a redirect without a usable Location"))?;
            url = next;
            continue;
        }
        response = Some(r);
        break;
    }
    let Some(r) = response else {
        return Err(FetchError::fatal("more than 5 redirects"));
    };
    let status = r.status();
    let shown = redact(url.as_str());
    if !status.is_success() {
        let code = status.as_u16();
        return Err(if f.expires && matches!(code, 403 | 404 | 410) {
            FetchError::fatal(format!(
                "{shown}: {status}: the download URL has expired or was refused (OpenTok's last \
                 10 minutes); request a fresh one and post the job again"
            ))
        } else if code == 429 || status.is_server_error() {
            FetchError::retry(format!("{shown}: {status}"))
        } else {
            FetchError::fatal(format!("{shown}: {status}"))
        });
    }
    let max = max.min(f.size.unwrap_or(u64::MAX));
    if let Some(len) = r.content_length()
        && len > max
    {
        return Err(FetchError::fatal(format!(
            "{shown} is {len} bytes, over the limit of {max} ({LIMITS})"
        )));
    }
    use futures_util::StreamExt;
    let chunks = r
        .bytes_stream()
        .map(|c| c.map_err(reqwest::Error::without_url));
    save_stream(chunks, dest, max, &shown).await
}

/// What bounds a download, for its error.
const LIMITS: &str =
    "the per-file limit, what is left of the job's total download limit, or the announced size";

/// Writes a stream of chunks to `dest`, at most `max` bytes; gives the size.
pub(super) async fn save_stream<E: std::fmt::Display>(
    mut stream: impl futures_util::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    dest: &Path,
    max: u64,
    shown: &str,
) -> Result<u64, FetchError> {
    use futures_util::StreamExt;
    let write_error =
        |e: std::io::Error| FetchError::retry(format!("writing {}: {e}", dest.display()));
    let mut out = tokio::fs::File::create(dest).await.map_err(write_error)?;
    let mut total = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| FetchError::retry(format!("{shown}: {e}")))?;
        total += chunk.len() as u64;
        if total > max {
            return Err(FetchError::fatal(format!(
                "{shown} is more than {max} bytes ({LIMITS})"
            )));
        }
        out.write_all(&chunk).await.map_err(write_error)?;
    }
    out.flush().await.map_err(write_error)?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_addresses() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::",
            // Addresses that embed an IPv4 address, or are reserved for benchmarks and docs.
            "64:ff9b::7f00:1",
            "64:ff9b:1::a00:1",
            "2002:7f00:1::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:db8::1",
            "::127.0.0.1",
            "::10.0.0.1",
            "198.18.0.1",
            "198.19.255.254",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "fec0::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:2800:220:1::1",
            "198.20.0.1",
            "2001:4860:4860::8888",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        assert_eq!(redact("https://h/a.zip?Signature=s"), "https://h/a.zip");
        assert_eq!(
            redact("https://user:pass@h:8443/a.zip?X-Amz-Signature=s#frag"),
            "https://h:8443/a.zip"
        );
        assert_eq!(redact("http://token@h/a"), "http://h/a");
        assert_eq!(redact("file:///s/a.zip"), "file:///s/a.zip");
    }
}
