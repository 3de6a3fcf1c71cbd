//! `d1-registry token`: signs an assertion with an issuer's key, exchanges it at the token
//! endpoint and prints the access token.

use std::path::{Path, PathBuf};

use anyhow::Context;
use d1_crypto::ec::SigningKey;

use super::refuse::{parse_issuer, refuse};
use crate::routes::token::{JWT_BEARER, TOKEN_PATH};

/// `token`'s flags for a service that terminates TLS and wants a client certificate.
#[derive(Debug, clap::Args)]
pub(crate) struct TokenTls {
    /// Trust this CA (PEM) for the service's certificate, besides the system's roots.
    #[arg(long)]
    pub(crate) ca_cert: Option<PathBuf>,
    /// Present this client certificate (PEM); needs --client-key.
    #[arg(long, requires = "client_key")]
    pub(crate) client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM, PKCS#8).
    #[arg(long, requires = "client_cert")]
    pub(crate) client_key: Option<PathBuf>,
}

impl TokenTls {
    fn client(&self) -> anyhow::Result<reqwest::Client> {
        let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
        let mut builder = reqwest::Client::builder().use_rustls_tls();
        if let Some(ca) = &self.ca_cert {
            let ca = reqwest::Certificate::from_pem(&read(ca)?)
                .map_err(|_| refuse("--ca-cert is not a PEM certificate"))?;
            builder = builder.add_root_certificate(ca);
        }
        if let (Some(cert), Some(key)) = (&self.client_cert, &self.client_key) {
            let mut pem = zeroize::Zeroizing::new(read(cert)?);
            pem.extend_from_slice(&zeroize::Zeroizing::new(read(key)?));
            let identity = reqwest::Identity::from_pem(&pem).map_err(|_| {
                refuse("--client-cert/--client-key are not a PEM certificate and key")
            })?;
            builder = builder.identity(identity);
        }
        builder.build().context("building the HTTP client")
    }
}

/// Prints an access token for `issuer_id`, got from the service at `url`.
pub(super) async fn run(
    issuer_id: &str,
    key_path: &Path,
    kid: &str,
    url: &str,
    tls: &TokenTls,
) -> anyhow::Result<()> {
    let issuer_id = parse_issuer(issuer_id)?;
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(key_path)
            .with_context(|| format!("reading {}", key_path.display()))?,
    );
    let key =
        SigningKey::from_pem(&text).map_err(|e| refuse(format!("{}: {e}", key_path.display())))?;
    let jti = uuid::Uuid::new_v4().to_string();
    let assertion = d1_crypto::jwt::sign_assertion(
        &key,
        kid,
        issuer_id.as_str(),
        None,
        &jti,
        crate::clock::now_secs(),
    )
    .map_err(|e| refuse(e.to_string()))?;
    let endpoint = format!("{}{TOKEN_PATH}", url.trim_end_matches('/'));
    let response = tls
        .client()?
        .post(&endpoint)
        .form(&[
            ("grant_type", JWT_BEARER),
            ("assertion", assertion.as_str()),
        ])
        .send()
        .await
        .map_err(|e| refuse(format!("could not reach {endpoint}: {}", e.without_url())))?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|_| refuse(format!("{endpoint} answered {status} without JSON")))?;
    match body.get("access_token").and_then(|t| t.as_str()) {
        Some(token) if status.is_success() => {
            println!("{token}");
            Ok(())
        }
        _ => Err(refuse(format!(
            "token refused ({status}): {} {}",
            body.get("error").and_then(|v| v.as_str()).unwrap_or("?"),
            body.get("error_description")
                .and_then(|v| v.as_str())
                .unwrap_or("")
        ))),
    }
}
