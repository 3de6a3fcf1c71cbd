//! The issuer's OAuth token (client credentials, Basic), kept per issuer and reused until
//! shortly before it expires; fetched through the single-flight of [`crate::flight`], so no
//! lock is held while the token endpoint answers.

use std::time::Duration;

use base64::Engine;
use futures_util::FutureExt;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::flight::{Flights, Kept};
use crate::{Backend, FetchError, Unavailable};

/// The longest a token is kept when the issuer says nothing about its lifetime.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

#[derive(Deserialize)]
struct Reply {
    access_token: String,
    /// A string in D1's schema; a number is accepted too.
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

fn lifetime(expires_in: Option<&serde_json::Value>) -> Duration {
    let seconds = match expires_in {
        Some(serde_json::Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        _ => None,
    };
    seconds.map_or(DEFAULT_LIFETIME, Duration::from_secs)
}

/// Renews a token this long before it expires: a tenth of its life, at most 30 s.
fn margin(life: Duration) -> Duration {
    (life / 10).min(Duration::from_secs(30))
}

/// Tokens kept by (issuer, client id).
type Key = (String, String);

/// How many tokens are kept at most, across issuers.
const CAPACITY: u64 = 10_000;

/// Tokens by (issuer, client id), fetched once at a time per issuer: concurrent first calls
/// for one issuer share one token request, and a slow token endpoint delays only its own
/// issuer's calls.
pub(crate) struct Tokens {
    flights: Flights<Key, SecretString>,
}

impl Default for Tokens {
    fn default() -> Self {
        Self {
            flights: Flights::new(CAPACITY),
        }
    }
}

impl Tokens {
    /// A bearer token for `backend`, fetched if none is fresh; `None` without credentials.
    pub(crate) async fn bearer(
        &self,
        http: &reqwest::Client,
        backend: &Backend,
    ) -> Result<Option<SecretString>, FetchError> {
        let Some((client_id, secret)) = &backend.credentials else {
            return Ok(None);
        };
        let key = (backend.issuer_id.clone(), client_id.clone());
        let basic = SecretString::from(base64::engine::general_purpose::STANDARD.encode(
            Zeroizing::new(format!("{client_id}:{}", secret.expose_secret())),
        ));
        let (http, url) = (http.clone(), format!("{}/oauth2/token", backend.url));
        let (token, _) = self
            .flights
            .run(key, true, move || fetch(http, url, basic).boxed())
            .await?;
        Ok(Some(token))
    }

    /// Drops `backend`'s token, after the issuer refused it.
    pub(crate) fn forget(&self, backend: &Backend) {
        if let Some((client_id, _)) = &backend.credentials {
            self.flights
                .forget(&(backend.issuer_id.clone(), client_id.clone()));
        }
    }
}

/// One token request; the token is kept until shortly before it expires.
async fn fetch(
    http: reqwest::Client,
    url: String,
    basic: SecretString,
) -> Result<Kept<SecretString>, FetchError> {
    let response = http
        .post(url)
        .header("authorization", format!("Basic {}", basic.expose_secret()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                FetchError::Timeout
            } else {
                FetchError::Unavailable(Unavailable::TokenEndpointUnreachable)
            }
        })?;
    let status = response.status();
    if status.is_server_error() {
        return Err(FetchError::Unavailable(Unavailable::TokenEndpointFailed));
    }
    if !status.is_success() {
        return Err(FetchError::Unavailable(Unavailable::TokenRefused));
    }
    let reply: Reply = response
        .json()
        .await
        .map_err(|_| FetchError::Unavailable(Unavailable::TokenReplyUnreadable))?;
    let life = lifetime(reply.expires_in.as_ref());
    Ok((SecretString::from(reply.access_token), life - margin(life)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_is_read_as_a_string_or_a_number() {
        assert_eq!(
            lifetime(Some(&serde_json::json!("3600"))),
            Duration::from_secs(3600)
        );
        assert_eq!(
            lifetime(Some(&serde_json::json!(60))),
            Duration::from_secs(60)
        );
        assert_eq!(lifetime(Some(&serde_json::json!("soon"))), DEFAULT_LIFETIME);
        assert_eq!(lifetime(None), DEFAULT_LIFETIME);
    }

    #[test]
    fn a_token_is_renewed_before_it_expires() {
        assert_eq!(margin(Duration::from_secs(3600)), Duration::from_secs(30));
        assert_eq!(margin(Duration::from_secs(60)), Duration::from_secs(6));
    }
}
