//! `d1-registry serve`: bind, serve, and drain on SIGTERM or Ctrl-C.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::app;
use crate::bootstrap::Opened;
use crate::config::Config;
use crate::listen::proxy::ProxyHeader;
use crate::listen::tls::TlsFiles;
use crate::listen::{ConnLimits, Listen};
use crate::state::AppState;

/// Serves until a shutdown signal, then lets in-flight requests finish (up to the grace
/// period) and closes the store, which commits every queued write. With `tls`, every
/// connection is TLS ([`crate::listen::tls`]).
///
/// # Errors
/// If the address cannot be bound, the TLS files or the proxy settings cannot be read.
pub async fn run(
    config: Config,
    opened: Opened,
    listen: &str,
    tls: Option<TlsFiles>,
) -> anyhow::Result<()> {
    let limits = ConnLimits::from_config(&config.server);
    crate::listen::limits::raise_descriptor_limit(limits.max_connections);
    let tls = tls.as_ref().map(crate::listen::tls::acceptor).transpose()?;
    let proxy = ProxyHeader::from_config(&config.server)?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let issuers = opened.store.issuers().await?;
    tracing::info!(address = %listener.local_addr()?, tls = tls.is_some(), database = %redact_url(&config.paths.database_url), "d1-registry listening");
    if issuers.is_empty() {
        let hint =
            "no issuer is onboarded yet. Next step: d1-registry issuer add --issuer-id BANK000001 \
                    --assertion-key issuer-public.pem --kid issuer-key-1 (see README)";
        tracing::warn!("{hint}");
        eprintln!("d1-registry: {hint}");
    }
    let grace = Duration::from_millis(config.server.shutdown_grace_ms);
    let config_cards = config.cards.clone();
    let state = AppState::new(opened.store.clone(), opened.keyring, config)?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    state.click_to_pay.start(stopped.clone()).await;
    let (store, cards) = (opened.store.clone(), config_cards);
    let renewals_stop = stopped.clone();
    tokio::spawn(crate::supervise::supervise(
        "card-renewals",
        stopped.clone(),
        crate::supervise::Backoff::default(),
        move || crate::renewals::run(Arc::clone(&store), cards.clone(), renewals_stop.clone()),
    ));
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let settings = Listen {
        limits,
        tls,
        proxy,
        grace,
    };
    crate::listen::serve(listener, app::router(state.clone()), settings, stopped).await;
    // The last handles to the store: dropping them lets the writer commit what is queued.
    drop(state);
    drop(opened.store);
    tracing::info!("d1-registry stopped");
    Ok(())
}

/// A database URL without its password, for the log.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; draining in-flight requests");
}
