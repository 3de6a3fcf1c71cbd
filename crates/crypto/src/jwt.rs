//! ES256 JWTs: the issuer's RFC 7523 assertion (verified here, signed by the `token` command)
//! and the service's own access tokens.
//!
//! The header is read here before any library call, so that every refusal has an exact
//! reason: only `ES256` is accepted, and a `kid` is required. Signatures go through
//! `jsonwebtoken` with an ES256-only validation; every time claim is checked here against the
//! caller's clock.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::b64url_decode;
use crate::ec::{PublicKey, SigningKey};

/// How far in the future an assertion's `exp` may be.
pub const MAX_ASSERTION_LIFETIME_SECS: i64 = 15 * 60;
/// Tolerated clock difference for `exp` beyond [`MAX_ASSERTION_LIFETIME_SECS`].
pub const EXP_SKEW_SECS: i64 = 30;
/// Tolerated clock difference for `iat` and `nbf`.
pub const IAT_SKEW_SECS: i64 = 60;
/// The lifetime of the access tokens we issue.
pub const ACCESS_TOKEN_LIFETIME_SECS: i64 = 900;
/// The audience written into our access tokens.
pub const ACCESS_TOKEN_AUDIENCE: &str = "d1-registry/banking";

/// Why a JWT was refused. The text is safe to return: it never quotes the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the assertion is not a signed JWT")]
    Malformed,
    #[error("only ES256 is accepted")]
    Algorithm,
    #[error("the header has no kid")]
    MissingKid,
    #[error("the signature does not verify")]
    Signature,
    #[error("a required claim is missing or malformed")]
    Claims,
    #[error("iss and sub must both be the issuer of the key")]
    Issuer,
    #[error("the assertion has expired")]
    Expired,
    #[error("exp is more than 15 minutes ahead")]
    TooFarAhead,
    #[error("iat or nbf is in the future")]
    NotYetValid,
    #[error("aud is not this service")]
    Audience,
}

#[derive(Deserialize)]
struct RawHeader {
    alg: Option<String>,
    kid: Option<String>,
}

/// The parts of a JWT header we act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtHeader {
    pub kid: String,
}

/// Reads and checks the header: three segments, `alg` exactly `ES256`, a `kid`.
///
/// # Errors
/// [`JwtError::Malformed`], [`JwtError::Algorithm`] or [`JwtError::MissingKid`].
pub fn read_header(token: &str) -> Result<JwtHeader, JwtError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let bytes = b64url_decode(header).ok_or(JwtError::Malformed)?;
    let raw: RawHeader = serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)?;
    if raw.alg.as_deref() != Some("ES256") {
        return Err(JwtError::Algorithm);
    }
    let kid = raw
        .kid
        .filter(|k| !k.is_empty())
        .ok_or(JwtError::MissingKid)?;
    Ok(JwtHeader { kid })
}

fn es256_only() -> Validation {
    let mut v = Validation::new(Algorithm::ES256);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    v.leeway = 0;
    v
}

fn decoding_key(key: &PublicKey) -> Result<DecodingKey, JwtError> {
    DecodingKey::from_ec_components(&key.x_b64(), &key.y_b64()).map_err(|_| JwtError::Signature)
}

fn verify_signature<T: for<'de> Deserialize<'de>>(
    token: &str,
    key: &PublicKey,
) -> Result<T, JwtError> {
    let key = decoding_key(key)?;
    match jsonwebtoken::decode::<T>(token, &key, &es256_only()) {
        Ok(data) => Ok(data.claims),
        Err(e) => match e.kind() {
            jsonwebtoken::errors::ErrorKind::Json(_) => Err(JwtError::Claims),
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => Err(JwtError::Algorithm),
            _ => Err(JwtError::Signature),
        },
    }
}

/// NumericDate: RFC 7519 allows fractions.
fn seconds(value: Option<&serde_json::Value>) -> Result<Option<i64>, JwtError> {
    match value {
        None => Ok(None),
        #[allow(clippy::cast_possible_truncation)]
        Some(v) => v
            .as_f64()
            .filter(|f| f.is_finite())
            .map(|f| Some(f.floor() as i64))
            .ok_or(JwtError::Claims),
    }
}

/// The claims of an RFC 7523 assertion, as sent.
#[derive(Debug, Deserialize, Serialize)]
pub struct AssertionClaims {
    pub iss: Option<String>,
    pub sub: Option<String>,
    pub exp: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// An assertion that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    pub issuer: String,
    pub exp: i64,
    pub jti: Option<String>,
}

/// Verifies an assertion against the key its `kid` selected, which belongs to `key_issuer`.
/// `audiences` lists the accepted `aud` values; `now` is Unix seconds.
///
/// # Errors
/// The first [`JwtError`] found.
pub fn verify_assertion(
    token: &str,
    key: &PublicKey,
    key_issuer: &str,
    audiences: &[String],
    now: i64,
) -> Result<VerifiedAssertion, JwtError> {
    read_header(token)?;
    let claims: AssertionClaims = verify_signature(token, key)?;
    let exp = seconds(claims.exp.as_ref())?.ok_or(JwtError::Claims)?;
    if claims.iss.as_deref() != Some(key_issuer) || claims.sub.as_deref() != Some(key_issuer) {
        return Err(JwtError::Issuer);
    }
    if exp <= now {
        return Err(JwtError::Expired);
    }
    if exp > now + MAX_ASSERTION_LIFETIME_SECS + EXP_SKEW_SECS {
        return Err(JwtError::TooFarAhead);
    }
    for claim in [&claims.iat, &claims.nbf] {
        if seconds(claim.as_ref())?.is_some_and(|t| t > now + IAT_SKEW_SECS) {
            return Err(JwtError::NotYetValid);
        }
    }
    if let Some(aud) = &claims.aud {
        let accepted =
            |v: &serde_json::Value| v.as_str().is_some_and(|s| audiences.iter().any(|a| a == s));
        let ok = match aud {
            serde_json::Value::Array(items) => items.iter().any(accepted),
            other => accepted(other),
        };
        if !ok {
            return Err(JwtError::Audience);
        }
    }
    if claims
        .jti
        .as_ref()
        .is_some_and(|j| j.is_empty() || j.len() > 256)
    {
        return Err(JwtError::Claims);
    }
    Ok(VerifiedAssertion {
        issuer: key_issuer.to_owned(),
        exp,
        jti: claims.jti,
    })
}

fn sign<T: Serialize>(claims: &T, key: &SigningKey, kid: &str) -> Result<String, JwtError> {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    let encoding = EncodingKey::from_ec_der(key.pkcs8());
    jsonwebtoken::encode(&header, claims, &encoding).map_err(|_| JwtError::Signature)
}

/// Signs an assertion for `issuer` with its private key: what an issuer backend does, and
/// what the `token` command does for people trying the service.
///
/// # Errors
/// [`JwtError::Signature`] if signing fails.
pub fn sign_assertion(
    key: &SigningKey,
    kid: &str,
    issuer: &str,
    aud: Option<&str>,
    jti: &str,
    now: i64,
) -> Result<String, JwtError> {
    let claims = AssertionClaims {
        iss: Some(issuer.to_owned()),
        sub: Some(issuer.to_owned()),
        exp: Some((now + 300).into()),
        iat: Some(now.into()),
        nbf: None,
        aud: aud.map(Into::into),
        jti: Some(jti.to_owned()),
    };
    sign(&claims, key, kid)
}

/// The claims of our access tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The issuer (bank) the token acts for, or the aggregator that holds it.
    pub sub: String,
    /// For an aggregator's token, the issuers it acts for: the scope is checked from the
    /// token alone, without a database read per request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuers: Option<Vec<String>>,
    /// The kid of the assertion key it was exchanged with, so that removing that key revokes it.
    pub akid: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub scope: String,
}

/// Signs an access token for `issuer`, valid [`ACCESS_TOKEN_LIFETIME_SECS`] from `now`.
///
/// # Errors
/// [`JwtError::Signature`] if signing fails.
pub fn sign_access_token(
    key: &SigningKey,
    kid: &str,
    issuer: &str,
    assertion_kid: &str,
    jti: &str,
    now: i64,
) -> Result<String, JwtError> {
    sign_scoped_access_token(key, kid, issuer, None, assertion_kid, jti, now)
}

/// Signs an access token for `subject`: an issuer (`issuers: None`), or an aggregator acting
/// for `issuers` only.
///
/// # Errors
/// [`JwtError::Signature`] if signing fails.
pub fn sign_scoped_access_token(
    key: &SigningKey,
    kid: &str,
    subject: &str,
    issuers: Option<&[String]>,
    assertion_kid: &str,
    jti: &str,
    now: i64,
) -> Result<String, JwtError> {
    let claims = AccessClaims {
        sub: subject.to_owned(),
        issuers: issuers.map(<[String]>::to_vec),
        akid: assertion_kid.to_owned(),
        aud: ACCESS_TOKEN_AUDIENCE.to_owned(),
        exp: now + ACCESS_TOKEN_LIFETIME_SECS,
        iat: now,
        jti: jti.to_owned(),
        scope: "banking".to_owned(),
    };
    sign(&claims, key, kid)
}

/// Verifies one of our access tokens with the service key its `kid` named.
///
/// # Errors
/// [`JwtError`] for a bad signature, another audience or an expired token.
pub fn verify_access_token(
    token: &str,
    key: &PublicKey,
    now: i64,
) -> Result<AccessClaims, JwtError> {
    let claims: AccessClaims = verify_signature(token, key)?;
    if claims.aud != ACCESS_TOKEN_AUDIENCE {
        return Err(JwtError::Audience);
    }
    if claims.exp <= now {
        return Err(JwtError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests;
