//! Webhook signatures, checked on the raw body before anything in it is trusted (pure: the
//! edge passes the headers' values, the body and the time in).
//!
//! - OpenTok: `Authorization: Bearer <JWT>`, HS256 with the project's secret; `iat` within
//!   5 minutes; the `payload_hash` claim is the hex SHA-256 of the body; `jti` is remembered
//!   by the caller until [`SignedCall::remember_until_s`] and a replay refused.
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
    /// Until when a replay could still pass the `iat` check.
    pub remember_until_s: i64,
}

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
    now_s: i64,
) -> Result<SignedCall, Refused> {
    let Some(header) = authorization else {
        if allow_unsigned {
            return Ok(SignedCall {
                jti: None,
                remember_until_s: now_s,
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
    if (now_s - iat).abs() > MAX_AGE_S {
        return refused(format!(
            "token issued {} s from now (limit {MAX_AGE_S} s)",
            now_s - iat
        ));
    }
    if let Some(exp) = claims.exp
        && exp < now_s
    {
        return refused("token expired");
    }
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
        jti: claims.jti,
        remember_until_s: claims.exp.unwrap_or(iat).max(iat) + MAX_AGE_S,
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
            now,
        )
        .unwrap();
        assert_eq!(ok.jti.as_deref(), Some("j1"));
        assert_eq!(ok.remember_until_s, now - 10 + MAX_AGE_S);
        let check = |h: Option<&str>, body: &[u8], secret: &str, now: i64| {
            opentok(h, body, Some(secret), false, now).unwrap_err().0
        };
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
        assert!(opentok(None, BODY, None, true, now).unwrap().jti.is_none());
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
    fn tokens() {
        assert!(token(Some("a"), Some("a")).is_ok());
        assert!(token(Some("b"), Some("a")).is_err());
        assert!(token(None, Some("a")).is_err());
        assert!(token(Some("a"), None).is_err());
    }
}
