//! The issuer's OAuth token (client credentials, Basic), kept per issuer and reused until
//! shortly before it expires.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::{Backend, FetchError};

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

/// Tokens by (issuer, client id).
#[derive(Default)]
pub(crate) struct Tokens {
    // Held across a fetch, so concurrent first calls make one token request.
    held: tokio::sync::Mutex<HashMap<(String, String), (SecretString, Instant)>>,
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
        let mut held = self.held.lock().await;
        if let Some((token, renew_at)) = held.get(&key) {
            if Instant::now() < *renew_at {
                return Ok(Some(token.clone()));
            }
        }
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{client_id}:{}", secret.expose_secret()));
        let response = http
            .post(format!("{}/oauth2/token", backend.url))
            .header("authorization", format!("Basic {basic}"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    FetchError::Timeout
                } else {
                    FetchError::Unavailable("the token endpoint is unreachable")
                }
            })?;
        let status = response.status();
        if status.is_server_error() {
            return Err(FetchError::Unavailable("the token endpoint failed"));
        }
        if !status.is_success() {
            return Err(FetchError::Unavailable("the token request was refused"));
        }
        let reply: Reply = response
            .json()
            .await
            .map_err(|_| FetchError::Unavailable("the token reply is unreadable"))?;
        let life = lifetime(reply.expires_in.as_ref());
        let token = SecretString::from(reply.access_token);
        held.insert(key, (token.clone(), Instant::now() + life - margin(life)));
        Ok(Some(token))
    }

    /// Drops `backend`'s token, after the issuer refused it.
    pub(crate) async fn forget(&self, backend: &Backend) {
        if let Some((client_id, _)) = &backend.credentials {
            self.held
                .lock()
                .await
                .remove(&(backend.issuer_id.clone(), client_id.clone()));
        }
    }
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
