//! `d1-registry product add`: an issuer's card product, its scheme, BIN and card validity.

use d1_store::StoreError;

use super::args::ProductCommand;
use super::refuse::{parse_issuer, refuse};
use crate::bootstrap;
use crate::config::Config;

/// Runs a `product` subcommand.
pub(super) async fn run(cmd: ProductCommand, config: &Config) -> anyhow::Result<()> {
    let ProductCommand::Add {
        issuer_id,
        card_product_id,
        scheme,
        bin,
        validity_months,
    } = cmd;
    let issuer_id = parse_issuer(&issuer_id)?;
    let card_product_id = d1_domain::card::CardProductId::parse(&card_product_id)
        .map_err(|_| refuse("--card-product-id must be 1 to 48 letters, digits, _ or -"))?;
    if !(6..=8).contains(&bin.len()) || !bin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refuse("--bin must be 6 to 8 digits"));
    }
    if !(1..=240).contains(&validity_months) {
        return Err(refuse("--validity-months must be 1 to 240"));
    }
    let opened = bootstrap::open(config).await?;
    if opened.store.issuer(&issuer_id).await?.is_none() {
        return Err(refuse(format!("issuer {issuer_id} is not onboarded")));
    }
    let product = d1_store::ProductRecord {
        issuer_id: issuer_id.clone(),
        card_product_id: card_product_id.clone(),
        scheme: scheme.into(),
        bin,
        validity_months,
    };
    match opened.store.add_product(product).await {
        Ok(()) => {
            println!(
                "product {} added for issuer {issuer_id}",
                card_product_id.as_str()
            );
            Ok(())
        }
        Err(StoreError::Conflict(why)) => Err(refuse(format!("product not added: {why}"))),
        Err(e) => Err(e.into()),
    }
}
