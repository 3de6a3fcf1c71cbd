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
use d1_crypto::jwt::{self, JwtError, ACCESS_TOKEN_LIFETIME_SECS};
use d1_domain::IssuerId;
use d1_store::{AssertionKeyRecord, Store, StoreError};
use moka::sync::Cache;
use serde::Serialize;
use utoipa::ToSchema;

use crate::clock::now_secs;
use crate::error::{ApiError, OAuthError};
use crate::keyring::Keyring;
use crate::limits::Limits;
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
    tokens: Cache<String, Arc<Verified>>,
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
    /// `invalid_grant` for any defect of the assertion (a missing `jti` when its owner
    /// requires one included) or a certificate the issuer is not bound to, `slow_down`
    /// over the key owner's rate, a server error if the store fails.
    pub async fn exchange(
        &self,
        assertion: &str,
        cert: Option<&ClientCert>,
        limits: &Limits,
    ) -> Result<TokenResponse, OAuthError> {
        let grant = |e: JwtError| OAuthError::invalid_grant(e.to_string());
        let header = jwt::read_header(assertion).map_err(grant)?;
        let record = self
            .assertion_key(&header.kid)
            .await
            .map_err(|e| server_error(&e))?
            .ok_or_else(|| OAuthError::invalid_grant("unknown kid"))?;
        // Counted before the signature is checked, so that guesses cost the guesser.
        limits
            .token_for(record.issuer_id.as_str())
            .map_err(OAuthError::slow_down)?;
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
        if record.require_jti && verified.jti.is_none() {
            return Err(OAuthError::invalid_grant("the assertion has no jti"));
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
        let scope: Option<Vec<String>> = record
            .aggregated
            .as_ref()
            .map(|all| all.iter().map(|i| i.as_str().to_owned()).collect());
        let access_token = tokio::task::spawn_blocking(move || {
            let jti = uuid::Uuid::new_v4().simple().to_string();
            let scope = scope.as_deref();
            jwt::sign_scoped_access_token(&signer, &kid, &issuer, scope, &akid, &jti, now)
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

    /// Checks an `Authorization` header value and returns whom the token speaks for.
    ///
    /// # Errors
    /// 401 for anything but a valid, unexpired token whose assertion key still exists; the
    /// reason is logged as one word ([`Refusal`]), never the token.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, ApiError> {
        let Some(header) = authorization else {
            return Err(Refusal::Missing.log());
        };
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_LEN)
            .ok_or_else(|| Refusal::Malformed.log())?;
        let now = now_secs();
        let verified = match self.tokens.get(token) {
            Some(verified) => verified,
            None => {
                let verified = Arc::new(self.verify(token, now).await.map_err(Refusal::log)?);
                self.tokens.insert(token.to_owned(), Arc::clone(&verified));
                verified
            }
        };
        if verified.exp <= now {
            return Err(Refusal::Expired.log());
        }
        Ok(verified.principal.clone())
    }

    async fn verify(&self, token: &str, now: i64) -> Result<Verified, Refusal> {
        let header = jwt::read_header(token).map_err(|_| Refusal::Malformed)?;
        let key = match self.keyring.verifier(&header.kid) {
            Some(key) => key,
            None => {
                // Another node may have rotated the signing key since this one loaded.
                self.keyring
                    .refresh_for_unknown_kid(self.store.as_ref())
                    .await
                    .map_err(|e| Refusal::Internal(e.to_string()))?;
                self.keyring
                    .verifier(&header.kid)
                    .ok_or(Refusal::UnknownKey)?
            }
        };
        let owned = token.to_owned();
        let claims =
            tokio::task::spawn_blocking(move || jwt::verify_access_token(&owned, &key, now))
                .await
                .map_err(|e| Refusal::Internal(e.to_string()))?
                .map_err(|e| match e {
                    JwtError::Expired => Refusal::Expired,
                    JwtError::Signature => Refusal::BadSignature,
                    _ => Refusal::Malformed,
                })?;
        let record = self
            .assertion_key(&claims.akid)
            .await
            .map_err(|e| Refusal::Internal(e.to_string()))?;
        let principal = match record {
            Some(record) if record.issuer_id.as_str() == claims.sub => {
                Principal::of(&record, claims.issuers.as_deref()).ok_or(Refusal::RevokedKey)?
            }
            _ => return Err(Refusal::RevokedKey),
        };
        Ok(Verified {
            exp: claims.exp,
            principal,
        })
    }
}

/// A token checked once, remembered for the cache period.
struct Verified {
    exp: i64,
    principal: Principal,
}

/// Whom a valid access token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The holder: an issuer, or an aggregator.
    pub subject: IssuerId,
    /// For an aggregator, the issuers it acts for; `None` for an issuer's own token.
    pub issuers: Option<Vec<IssuerId>>,
}

impl Principal {
    /// The principal of a token exchanged with `record`, if the token's scope is the key's.
    fn of(record: &AssertionKeyRecord, issuers: Option<&[String]>) -> Option<Self> {
        let scope = match (&record.aggregated, issuers) {
            (None, None) => None,
            (Some(now), Some(then))
                if now
                    .iter()
                    .map(IssuerId::as_str)
                    .eq(then.iter().map(String::as_str)) =>
            {
                Some(now.clone())
            }
            _ => return None,
        };
        Some(Self {
            subject: record.issuer_id.clone(),
            issuers: scope,
        })
    }

    /// Whether a request for `issuer`'s routes may be made with this token.
    #[must_use]
    pub fn acts_for(&self, issuer: &str) -> bool {
        match &self.issuers {
            None => self.subject.as_str() == issuer,
            Some(issuers) => issuers.iter().any(|i| i.as_str() == issuer),
        }
    }

    /// The aggregator holding the token, if an aggregator does.
    #[must_use]
    pub fn aggregator(&self) -> Option<&IssuerId> {
        self.issuers.as_ref().map(|_| &self.subject)
    }
}

/// Why a token was refused: logged at info level as one fixed word, never sent (contract
/// section 3).
#[derive(Debug)]
pub enum Refusal {
    Expired,
    BadSignature,
    UnknownKey,
    WrongIssuer,
    Malformed,
    Missing,
    RevokedKey,
    /// A valid token over a connection whose client certificate the issuer is not bound to.
    WrongCertificate,
    /// Not the token's fault: the check could not run (a 500).
    Internal(String),
}

impl Refusal {
    /// The reason word of the log.
    #[must_use]
    pub fn word(&self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::BadSignature => "bad_signature",
            Self::UnknownKey => "unknown_key",
            Self::WrongIssuer => "wrong_issuer",
            Self::Malformed => "malformed",
            Self::Missing => "missing",
            Self::RevokedKey => "revoked_key",
            Self::WrongCertificate => "wrong_certificate",
            Self::Internal(_) => "internal",
        }
    }

    /// Logs the refusal and gives the answer: 401, or 500 when the check could not run.
    #[must_use]
    pub fn log(self) -> ApiError {
        if let Self::Internal(cause) = &self {
            return ApiError::internal(cause);
        }
        tracing::info!(reason = self.word(), "access token refused");
        ApiError::unauthorized()
    }
}

fn server_error(cause: &dyn std::fmt::Display) -> OAuthError {
    tracing::error!(error = %cause, "token endpoint failed");
    OAuthError::with_status(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "internal error",
    )
}
