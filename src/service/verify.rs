//! Webhook signatures, checked on the raw body before anything in it is trusted (pure: the
//! edge passes the headers' values, the body and the time in).
//!
//! - OpenTok: `Authorization: Bearer <JWT>`, HS256 with the project's secret; `iat` within
//!   5 minutes (to the millisecond); the `payload_hash` claim is the hex SHA-256 of the body;
//!   `jti` is required, and the caller spends it with what the call stored, remembering it
//!   until [`SignedCall::remember_until_ms`], past the end of the `iat` window, so a replay is
//!   refused for as long as the time check would pass it.
//! - LiveSwitch: `X-ApplicationSignature` is the base64 HMAC-SHA256 of the body with the
//!   secret of the body's `applicationId`, trailing `=` trimmed.
//! - EnableX: the seed defines no signature; a configured token must be given.

use std::collections::BTreeMap;

use base64::Engine;
use hmac::{KeyInit, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How far `iat` may be from now.
pub const MAX_AGE_S: i64 = 300;

/// Why a call was refused (401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

fn refused<T>(why: impl Into<String>) -> Result<T, Refused> {
    Err(Refused(why.into()))
}

/// What a verified OpenTok call carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCall {
    /// The token's id, to refuse a replay; `None` for an unsigned call.
    pub jti: Option<String>,
    /// Until when (epoch ms) a replay could still pass the time checks, with a margin for
    /// the clocks of the processes that share the queue.
    pub remember_until_ms: i64,
}

/// How far the clocks of two intake processes may disagree on when a token expires.
const CLOCK_MARGIN_MS: i64 = 60_000;

#[derive(Deserialize)]
struct Claims {
    iat: Option<i64>,
    exp: Option<i64>,
    jti: Option<String>,
    payload_hash: Option<String>,
}

/// Checks an OpenTok callback's `Authorization` header against its body.
pub fn opentok(
    authorization: Option<&str>,
    body: &[u8],
    secret: Option<&str>,
    allow_unsigned: bool,
    now_ms: i64,
) -> Result<SignedCall, Refused> {
    let Some(header) = authorization else {
        if allow_unsigned {
            return Ok(SignedCall {
                jti: None,
                remember_until_ms: now_ms,
            });
        }
        return refused("missing Authorization: Bearer <signed token>");
    };
    let Some(secret) = secret else {
        return refused("a signed callback arrived but opentok.secret is not configured");
    };
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .ok_or_else(|| Refused("Authorization is not a Bearer token".into()))?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let data = jsonwebtoken::decode::<Claims>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .map_err(|e| Refused(format!("token refused: {e}")))?;
    let claims = data.claims;
    let Some(iat) = claims.iat else {
        return refused("token has no iat");
    };
    let iat_ms = iat.saturating_mul(1000);
    if now_ms.saturating_sub(iat_ms).abs() > MAX_AGE_S * 1000 {
        return refused(format!(
            "token issued {} s from now (limit {MAX_AGE_S} s)",
            now_ms.saturating_sub(iat_ms) / 1000
        ));
    }
    if let Some(exp) = claims.exp
        && exp.saturating_mul(1000) < now_ms
    {
        return refused("token expired");
    }
    let Some(jti) = claims.jti.filter(|j| !j.is_empty()) else {
        return refused("token has no jti (a token id is required to refuse replays)");
    };
    let Some(hash) = claims.payload_hash else {
        return refused("token has no payload_hash");
    };
    let actual = hex(&Sha256::digest(body));
    if !bool::from(
        actual
            .as_bytes()
            .ct_eq(hash.to_ascii_lowercase().as_bytes()),
    ) {
        return refused("payload_hash does not match the body");
    }
    Ok(SignedCall {
        jti: Some(jti),
        remember_until_ms: iat_ms + MAX_AGE_S * 1000 + CLOCK_MARGIN_MS,
    })
}

/// Checks a LiveSwitch webhook's `X-ApplicationSignature` with the secret of `application_id`.
pub fn liveswitch(
    signature: Option<&str>,
    body: &[u8],
    application_id: Option<&str>,
    secrets: &BTreeMap<String, String>,
) -> Result<(), Refused> {
    let Some(signature) = signature else {
        return refused("missing X-ApplicationSignature");
    };
    let Some(app) = application_id else {
        return refused("the body names no applicationId");
    };
    let Some(secret) = secrets.get(app) else {
        return refused(format!("no secret configured for application {app:?}"));
    };
    let expected = liveswitch_signature(body, secret);
    let given = signature.trim().trim_end_matches('=');
    if bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
        Ok(())
    } else {
        refused("X-ApplicationSignature does not match the body")
    }
}

/// The signature LiveSwitch sends for `body` (base64, trailing `=` trimmed).
pub fn liveswitch_signature(body: &[u8], secret: &str) -> String {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(body);
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    sig.trim_end_matches('=').to_owned()
}

/// Compares a given token with the configured one in constant time.
pub fn token(given: Option<&str>, expected: Option<&str>) -> Result<(), Refused> {
    match (given, expected) {
        (_, None) => refused("no token is configured for this endpoint"),
        (None, _) => refused("missing token"),
        (Some(g), Some(e)) if bool::from(g.as_bytes().ct_eq(e.as_bytes())) => Ok(()),
        _ => refused("wrong token"),
    }
}

/// How long a jobs-page session lasts.
pub const SESSION_S: i64 = 12 * 3600;

/// A jobs-page session value, not the API token: `<expiry>.<nonce>.<MAC>`, the MAC keyed by
/// the API token (so a new token ends every session) over the expiry and a random nonce.
pub fn session_value(api_token: &str, now_s: i64, nonce: &str) -> String {
    let expiry = now_s + SESSION_S;
    format!("{expiry}.{nonce}.{}", session_mac(api_token, expiry, nonce))
}

/// Whether a session value is one [`session_value`] made with this token and not expired.
pub fn session_valid(value: &str, api_token: &str, now_s: i64) -> bool {
    let mut parts = value.splitn(3, '.');
    let (Some(expiry), Some(nonce), Some(mac)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Ok(expiry) = expiry.parse::<i64>() else {
        return false;
    };
    let expected = session_mac(api_token, expiry, nonce);
    expiry > now_s && bool::from(expected.as_bytes().ct_eq(mac.as_bytes()))
}

fn session_mac(api_token: &str, expiry: i64, nonce: &str) -> String {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(api_token.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(format!("mosaic-session.{expiry}.{nonce}").as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A signed OpenTok-style token for `body` (tests and the sample sender use it).
pub fn opentok_token(body: &[u8], secret: &str, iat: i64, jti: &str) -> String {
    let claims = serde_json::json!({
        "iat": iat,
        "jti": jti,
        "payload_hash": hex(&Sha256::digest(body)),
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256 signing of a JSON object")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":"a","status":"available"}"#;

    #[test]
    fn opentok_tokens() {
        let now = 1_800_000_000;
        let t = opentok_token(BODY, "s3cret", now - 10, "j1");
        let ok = opentok(
            Some(&format!("Bearer {t}")),
            BODY,
            Some("s3cret"),
            false,
            now * 1000,
        )
        .unwrap();
        assert_eq!(ok.jti.as_deref(), Some("j1"));
        assert_eq!(
            ok.remember_until_ms,
            (now - 10 + MAX_AGE_S) * 1000 + CLOCK_MARGIN_MS
        );
        let check = |h: Option<&str>, body: &[u8], secret: &str, now: i64| {
            opentok(h, body, Some(secret), false, now * 1000)
                .unwrap_err()
                .0
        };
        // The window is checked to the millisecond: 1 ms past it is refused, and a replay
        // that passes the check is still remembered then.
        let edge = opentok(
            Some(&format!("Bearer {t}")),
            BODY,
            Some("s3cret"),
            false,
            (now - 10 + MAX_AGE_S) * 1000,
        )
        .unwrap();
        assert!(edge.remember_until_ms > (now - 10 + MAX_AGE_S) * 1000);
        assert!(
            opentok(
                Some(&format!("Bearer {t}")),
                BODY,
                Some("s3cret"),
                false,
                (now - 10 + MAX_AGE_S) * 1000 + 1,
            )
            .is_err()
        );
        let no_jti = opentok_token(BODY, "s3cret", now, "");
        assert!(check(Some(&format!("Bearer {no_jti}")), BODY, "s3cret", now).contains("jti"));
        let h = format!("Bearer {t}");
        assert!(check(Some(&h), BODY, "other", now).contains("token refused"));
        assert!(check(Some(&h), b"{\"id\":\"b\"}", "s3cret", now).contains("payload_hash"));
        assert!(check(Some(&h), BODY, "s3cret", now + 600).contains("issued"));
        assert!(check(None, BODY, "s3cret", now).contains("missing"));
        assert!(check(Some(&t), BODY, "s3cret", now).contains("Bearer"));
        // The same claims with "alg": "none" and no signature.
        let claims = t.split('.').nth(1).unwrap();
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"alg":"none","typ":"JWT"}"#);
        let alg_none = format!("Bearer {header}.{claims}.");
        assert!(check(Some(&alg_none), BODY, "s3cret", now).contains("token refused"));
        assert!(
            opentok(None, BODY, None, true, now * 1000)
                .unwrap()
                .jti
                .is_none()
        );
    }

    #[test]
    fn liveswitch_signatures() {
        let secrets = BTreeMap::from([("app".to_string(), "shh".to_string())]);
        let sig = liveswitch_signature(BODY, "shh");
        assert!(!sig.ends_with('='));
        assert!(liveswitch(Some(&sig), BODY, Some("app"), &secrets).is_ok());
        assert!(liveswitch(Some(&format!("{sig}=")), BODY, Some("app"), &secrets).is_ok());
        assert!(liveswitch(Some(&sig), b"{}", Some("app"), &secrets).is_err());
        assert!(liveswitch(Some(&sig), BODY, Some("other"), &secrets).is_err());
        assert!(liveswitch(None, BODY, Some("app"), &secrets).is_err());
        // Known vector: HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog").
        assert_eq!(
            liveswitch_signature(b"The quick brown fox jumps over the lazy dog", "key"),
            "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg"
        );
    }

    #[test]
    fn sessions() {
        let v = session_value("api-token-0123456789", 1_000, "n1");
        assert!(!v.contains("api-token"));
        assert!(session_valid(&v, "api-token-0123456789", 1_000));
        assert!(!session_valid(&v, "another-token-0123456", 1_000));
        assert!(!session_valid(
            &v,
            "api-token-0123456789",
            1_000 + SESSION_S
        ));
        let forged = v.replacen("n1", "n2", 1);
        assert!(!session_valid(&forged, "api-token-0123456789", 1_000));
        assert!(!session_valid("garbage", "api-token-0123456789", 1_000));
    }

    #[test]
    fn tokens() {
        assert!(token(Some("a"), Some("a")).is_ok());
        assert!(token(Some("b"), Some("a")).is_err());
        assert!(token(None, Some("a")).is_err());
        assert!(token(Some("a"), None).is_err());
    }
}
