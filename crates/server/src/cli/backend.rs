//! `d1-registry issuer set-backend`: where an issuer's backend is, how to authenticate to it,
//! and which card operations it is notified of in calls of how many. Every setting is given
//! again each time (an absent flag takes its default). The client secret is read from a file
//! and kept sealed under the KEK.

use std::path::PathBuf;

use anyhow::Context;
use d1_domain::IssuerId;
use d1_store::{BackendRecord, CardNotifications, StoreError};

use super::refuse::refuse;
use crate::bootstrap;
use crate::config::Config;

/// The command's arguments.
pub(super) struct Backend {
    pub(super) url: String,
    pub(super) client_id: Option<String>,
    pub(super) client_secret_file: Option<PathBuf>,
    pub(super) send_card_id: bool,
    pub(super) pi_cache_ttl: u32,
    pub(super) card_notifications: CardNotifications,
    /// 1 to 100, checked by the argument parser.
    pub(super) notification_batch_size: u32,
}

fn check_url(url: &str) -> anyhow::Result<String> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|_| refuse("--url must be an absolute http:// or https:// URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(refuse("--url must be an absolute http:// or https:// URL"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(refuse("--url must not have a query or a fragment"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

fn read_secret(path: &PathBuf) -> anyhow::Result<zeroize::Zeroizing<String>> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    let secret = zeroize::Zeroizing::new(text.trim_end_matches(['\r', '\n']).to_owned());
    if secret.is_empty() {
        return Err(refuse(format!("{} is empty", path.display())));
    }
    Ok(secret)
}

/// Stores the backend settings of `issuer`.
///
/// # Errors
/// A refusal (bad URL, unreadable secret, unknown issuer) or a store failure.
pub(super) async fn set_backend(
    config: &Config,
    issuer: IssuerId,
    args: Backend,
) -> anyhow::Result<()> {
    let url = check_url(&args.url)?;
    let client_id = match args.client_id {
        Some(id) if id.is_empty() || id.len() > 256 || id.contains(':') => {
            return Err(refuse(
                "--client-id must be 1 to 256 characters without ':'",
            ))
        }
        other => other,
    };
    let secret = args
        .client_secret_file
        .as_ref()
        .map(read_secret)
        .transpose()?;
    let opened = bootstrap::open(config).await?;
    let sealed_secret = secret
        .map(|s| {
            opened
                .store
                .vault()
                .seal_backend_secret(&issuer, s.as_bytes())
        })
        .transpose()?;
    let record = BackendRecord {
        issuer_id: issuer.clone(),
        url: url.clone(),
        client_id,
        sealed_secret,
        send_card_id: args.send_card_id,
        pi_cache_ttl_s: args.pi_cache_ttl,
        card_notifications: args.card_notifications,
        notification_batch_size: args.notification_batch_size,
    };
    match opened.store.set_issuer_backend(record).await {
        Ok(()) => {
            println!(
                "issuer {issuer} backend set to {url} (card notifications {}, batch size {})",
                args.card_notifications.as_str(),
                args.notification_batch_size
            );
            Ok(())
        }
        Err(StoreError::NotFound) => Err(refuse(format!("issuer {issuer} is not onboarded"))),
        Err(e) => Err(e.into()),
    }
}
