//! Issuer authentication: the RFC 7523 assertion exchanged for an access token, and access
//! tokens checked on every API call.
//!
//! Access tokens are JWTs signed by the service key, so any node verifies them without a
//! database read. A verified token is remembered for `auth.cache_ttl_secs`, so the ECDSA
//! verify runs once per token per period, not once per request. On each new check the
//! assertion key the token was exchanged with must still be registered: removing a key
//! revokes its tokens within twice the cache period.

use std::sync::Arc;
use std::time::Duration;

use d1_crypto::ec::PublicKey;
use d1_crypto::jwt::{self, AccessClaims, JwtError, ACCESS_TOKEN_LIFETIME_SECS};
use d1_domain::IssuerId;
use d1_store::{AssertionKeyRecord, Store, StoreError};
use moka::sync::Cache;
use serde::Serialize;
use utoipa::ToSchema;

use crate::clock::now_secs;
use crate::error::{ApiError, OAuthError};
use crate::keyring::Keyring;
use crate::listen::peer::{admits, ClientCert};

/// The longest bearer token looked at.
const MAX_TOKEN_LEN: usize = 4096;

/// The token endpoint's success body.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    #[schema(example = 900)]
    pub expires_in: i64,
    #[schema(example = "banking")]
    pub scope: &'static str,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticator")
    }
}

/// Exchanges assertions and checks access tokens.
pub struct Authenticator {
    store: Arc<dyn Store>,
    keyring: Arc<Keyring>,
    audiences: Vec<String>,
    tokens: Cache<String, Arc<AccessClaims>>,
    assertion_keys: Cache<String, AssertionKeyRecord>,
}

impl Authenticator {
    /// Builds the authenticator; `ttl` bounds how long a check is trusted.
    #[must_use]
    pub fn new(
        store: Arc<dyn Store>,
        keyring: Arc<Keyring>,
        audiences: Vec<String>,
        ttl: Duration,
    ) -> Self {
        Self {
            store,
            keyring,
            audiences,
            tokens: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl)
                .build(),
            assertion_keys: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(ttl)
                .build(),
        }
    }

    /// An issuer's assertion key by kid. Only found keys are cached, so a key added by the CLI
    /// is seen on its first use.
    async fn assertion_key(&self, kid: &str) -> Result<Option<AssertionKeyRecord>, StoreError> {
        if let Some(hit) = self.assertion_keys.get(kid) {
            return Ok(Some(hit));
        }
        let found = self.store.assertion_key(kid).await?;
        if let Some(record) = &found {
            self.assertion_keys.insert(kid.to_owned(), record.clone());
        }
        Ok(found)
    }

    /// Exchanges an assertion for an access token (the token endpoint's work); `cert` is the
    /// connection's client certificate, checked against the issuer's bindings.
    ///
    /// # Errors
    /// `invalid_grant` for any defect of the assertion or a certificate the issuer is not
    /// bound to, a server error if the store fails.
    pub async fn exchange(
        &self,
        assertion: &str,
        cert: Option<&ClientCert>,
    ) -> Result<TokenResponse, OAuthError> {
        let grant = |e: JwtError| OAuthError::invalid_grant(e.to_string());
        let header = jwt::read_header(assertion).map_err(grant)?;
        let record = self
            .assertion_key(&header.kid)
            .await
            .map_err(|e| server_error(&e))?
            .ok_or_else(|| OAuthError::invalid_grant("unknown kid"))?;
        let key = PublicKey::parse(&record.public_jwk).map_err(|e| server_error(&e))?;
        let (assertion_owned, audiences, issuer) = (
            assertion.to_owned(),
            self.audiences.clone(),
            record.issuer_id.clone(),
        );
        let now = now_secs();
        let verified = tokio::task::spawn_blocking(move || {
            jwt::verify_assertion(&assertion_owned, &key, issuer.as_str(), &audiences, now)
        })
        .await
        .map_err(|e| server_error(&e))?
        .map_err(grant)?;
        // Read now, not cached: a binding set by the CLI holds for the next token.
        let issuer = self
            .store
            .issuer(&record.issuer_id)
            .await
            .map_err(|e| server_error(&e))?;
        if let Some(bound) = issuer.map(|i| i.client_certs) {
            if !admits(cert, &bound.subjects, &bound.sans) {
                return Err(OAuthError::invalid_grant(
                    "the connection's client certificate is not bound to the issuer",
                ));
            }
        }
        if let Some(jti) = &verified.jti {
            match self
                .store
                .use_jti(&record.issuer_id, jti, verified.exp.saturating_mul(1000))
                .await
            {
                Ok(()) => {}
                Err(StoreError::Conflict(_)) => {
                    return Err(OAuthError::invalid_grant(
                        "the assertion's jti was already used",
                    ))
                }
                Err(e) => return Err(server_error(&e)),
            }
        }
        let (kid, signer) = self
            .keyring
            .signer()
            .ok_or_else(|| server_error(&"no signing key"))?;
        let (issuer, akid) = (record.issuer_id.as_str().to_owned(), record.kid.clone());
        let access_token = tokio::task::spawn_blocking(move || {
            let jti = uuid::Uuid::new_v4().simple().to_string();
            jwt::sign_access_token(&signer, &kid, &issuer, &akid, &jti, now)
        })
        .await
        .map_err(|e| server_error(&e))?
        .map_err(|e| server_error(&e))?;
        tracing::info!(issuer = %record.issuer_id, kid = %record.kid, "access token issued");
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: ACCESS_TOKEN_LIFETIME_SECS,
            scope: "banking",
        })
    }

    /// Checks an `Authorization` header value and returns the issuer it acts for.
    ///
    /// # Errors
    /// 401 for anything but a valid, unexpired token whose assertion key still exists.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<IssuerId, ApiError> {
        let token = authorization
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_LEN)
            .ok_or_else(ApiError::unauthorized)?;
        let now = now_secs();
        let claims = match self.tokens.get(token) {
            Some(claims) => claims,
            None => {
                let claims = Arc::new(self.verify(token, now).await?);
                self.tokens.insert(token.to_owned(), Arc::clone(&claims));
                claims
            }
        };
        if claims.exp <= now {
            return Err(ApiError::unauthorized());
        }
        IssuerId::parse(&claims.sub).map_err(|_| ApiError::unauthorized())
    }

    async fn verify(&self, token: &str, now: i64) -> Result<AccessClaims, ApiError> {
        let header = jwt::read_header(token).map_err(|_| ApiError::unauthorized())?;
        let key = match self.keyring.verifier(&header.kid) {
            Some(key) => key,
            None => {
                // Another node may have rotated the signing key since this one loaded.
                self.keyring
                    .refresh_for_unknown_kid(self.store.as_ref())
                    .await
                    .map_err(|e| ApiError::internal(&e))?;
                self.keyring
                    .verifier(&header.kid)
                    .ok_or_else(ApiError::unauthorized)?
            }
        };
        let owned = token.to_owned();
        let claims =
            tokio::task::spawn_blocking(move || jwt::verify_access_token(&owned, &key, now))
                .await
                .map_err(|e| ApiError::internal(&e))?
                .map_err(|_| ApiError::unauthorized())?;
        match self.assertion_key(&claims.akid).await? {
            Some(record) if record.issuer_id.as_str() == claims.sub => Ok(claims),
            _ => Err(ApiError::unauthorized()),
        }
    }
}

fn server_error(cause: &dyn std::fmt::Display) -> OAuthError {
    tracing::error!(error = %cause, "token endpoint failed");
    OAuthError::with_status(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "internal error",
    )
}
