//! `d1-registry issuer`: onboarding issuers, changing their settings and keys, setting
//! their backend, listing them.

use d1_store::{IssuerChange, NewIssuer, StoreError};

use super::args::{IssuerCommand, OnOff};
use super::refuse::{parse_issuer, parse_kid, read_public_key, refuse};
use crate::bootstrap;
use crate::config::Config;

/// Runs an `issuer` subcommand.
pub(super) async fn run(cmd: IssuerCommand, config: &Config) -> anyhow::Result<()> {
    match cmd {
        IssuerCommand::Add {
            issuer_id,
            assertion_key,
            kid,
            pi_storage,
            click_to_pay,
            lookalike_policy,
            client_certs,
            require_jti,
        } => {
            let issuer_id = parse_issuer(&issuer_id)?;
            let kid = parse_kid(&kid)?;
            let client_certs = client_certs.bindings()?;
            let public_jwk = read_public_key(&assertion_key)?;
            let opened = bootstrap::open(config).await?;
            let new = NewIssuer {
                issuer_id: issuer_id.clone(),
                pi_storage: pi_storage.into(),
                click_to_pay,
                lookalike_policy: lookalike_policy.into(),
                kid: kid.clone(),
                public_jwk,
                client_certs,
                require_jti: matches!(require_jti, OnOff::On),
            };
            match opened.store.add_issuer(new).await {
                Ok(()) => {
                    println!("issuer {issuer_id} added with key {kid}");
                    Ok(())
                }
                Err(StoreError::Conflict(why)) => {
                    Err(refuse(format!("issuer {issuer_id} not added: {why}")))
                }
                Err(e) => Err(e.into()),
            }
        }
        IssuerCommand::Set {
            issuer_id,
            pi_storage,
            click_to_pay,
            add_key,
            kid,
            remove_key,
            lookalike_policy,
            client_certs,
            unbind_client_certs,
            require_jti,
        } => {
            let issuer_id = parse_issuer(&issuer_id)?;
            let client_certs = if unbind_client_certs {
                Some(d1_store::CertBindings::default())
            } else if client_certs.given() {
                Some(client_certs.bindings()?)
            } else {
                None
            };
            let add_key = match (add_key, kid) {
                (Some(path), Some(kid)) => Some((parse_kid(&kid)?, read_public_key(&path)?)),
                _ => None,
            };
            let change = IssuerChange {
                pi_storage: pi_storage.map(Into::into),
                click_to_pay: click_to_pay.map(|v| matches!(v, OnOff::On)),
                lookalike_policy: lookalike_policy.map(Into::into),
                require_jti: require_jti.map(|v| matches!(v, OnOff::On)),
                add_key,
                remove_kid: remove_key,
                client_certs,
            };
            let opened = bootstrap::open(config).await?;
            match opened.store.change_issuer(issuer_id.clone(), change).await {
                Ok(()) => {
                    println!("issuer {issuer_id} updated");
                    Ok(())
                }
                Err(StoreError::NotFound) => Err(refuse(format!(
                    "issuer {issuer_id} or its key was not found"
                ))),
                Err(StoreError::Conflict(why)) => {
                    Err(refuse(format!("issuer {issuer_id} not updated: {why}")))
                }
                Err(e) => Err(e.into()),
            }
        }
        IssuerCommand::SetBackend {
            issuer_id,
            url,
            client_id,
            client_secret_file,
            send_card_id,
            pi_cache_ttl,
            card_notifications,
            notification_batch_size,
        } => {
            let issuer_id = parse_issuer(&issuer_id)?;
            let backend = super::backend::Backend {
                url,
                client_id,
                client_secret_file,
                send_card_id,
                pi_cache_ttl,
                card_notifications: card_notifications.into(),
                notification_batch_size,
            };
            super::backend::set_backend(config, issuer_id, backend).await
        }
        IssuerCommand::List => {
            let opened = bootstrap::open_existing(config).await?;
            for i in opened.store.issuers().await? {
                let backend = opened
                    .store
                    .issuer_backend(&i.issuer_id)
                    .await?
                    .map_or_else(
                        || "-".to_owned(),
                        |b| {
                            format!(
                                "{} card_notifications={} notification_batch_size={}",
                                b.url,
                                b.card_notifications.as_str(),
                                b.notification_batch_size
                            )
                        },
                    );
                println!(
                    "{} pi_storage={} click_to_pay={} lookalike_policy={} require_jti={} kids={} {} backend={backend}",
                    i.issuer_id,
                    i.pi_storage.as_str(),
                    on_off(i.click_to_pay),
                    i.lookalike_policy.as_str(),
                    on_off(i.require_jti),
                    i.kids.join(","),
                    super::certs::show(&i.client_certs),
                );
            }
            let aggregators = opened.store.aggregators().await?.len();
            if aggregators > 0 {
                println!("({aggregators} aggregator(s) sign for issuers: see `aggregator list`)");
            }
            Ok(())
        }
    }
}

/// A setting as the command line writes it.
pub(super) fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}
