//! `d1-registry aggregator`: onboarding an aggregator, a party that signs assertions for
//! several issuers (contract section 4), and listing them.

use d1_store::{NewAggregator, StoreError};

use super::args::{AggregatorCommand, OnOff};
use super::issuer::on_off;
use super::refuse::{parse_issuer, parse_kid, read_public_key, refuse};
use crate::bootstrap;
use crate::config::Config;

/// Runs an `aggregator` subcommand.
pub(super) async fn run(cmd: AggregatorCommand, config: &Config) -> anyhow::Result<()> {
    match cmd {
        AggregatorCommand::Add {
            aggregator_id,
            assertion_key,
            kid,
            issuers,
            require_jti,
        } => {
            let aggregator_id = d1_domain::IssuerId::parse(&aggregator_id)
                .map_err(|_| refuse("--aggregator-id must be exactly 10 letters or digits"))?;
            let kid = parse_kid(&kid)?;
            let issuers = issuers
                .iter()
                .map(|i| parse_issuer(i.trim()))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let public_jwk = read_public_key(&assertion_key)?;
            let opened = bootstrap::open(config).await?;
            let new = NewAggregator {
                aggregator_id: aggregator_id.clone(),
                kid: kid.clone(),
                public_jwk,
                issuers,
                require_jti: matches!(require_jti, OnOff::On),
            };
            match opened.store.add_aggregator(new).await {
                Ok(()) => {
                    println!("aggregator {aggregator_id} added with key {kid}");
                    Ok(())
                }
                Err(StoreError::NotFound) => Err(refuse(format!(
                    "aggregator {aggregator_id} not added: one of its issuers is not onboarded"
                ))),
                Err(StoreError::Conflict(why)) => Err(refuse(format!(
                    "aggregator {aggregator_id} not added: {why}"
                ))),
                Err(e) => Err(e.into()),
            }
        }
        AggregatorCommand::List => {
            let opened = bootstrap::open(config).await?;
            for a in opened.store.aggregators().await? {
                let issuers: Vec<&str> =
                    a.issuers.iter().map(d1_domain::IssuerId::as_str).collect();
                println!(
                    "{} require_jti={} kids={} issuers={}",
                    a.aggregator_id,
                    on_off(a.require_jti),
                    a.kids.join(","),
                    issuers.join(",")
                );
            }
            Ok(())
        }
    }
}
