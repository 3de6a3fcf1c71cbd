//! What each effect of the reason table writes to the card: a new state and reason, a new
//! or waiting expiry (with the sealed data resealed), or the shredding of a final state.

use d1_domain::card::lifecycle::Effect;
use d1_domain::card::{CardProductId, Expiry};

use super::{After, Target, RENEWAL};
use crate::db::{params, Db};
use crate::rows::ConsumerRow;
use crate::sql::lifecycle as sql;
use crate::{
    CardAction, CardOperation, CardState, OperateCard, ReasonCode, StoreError, StoreResult, Vault,
};

/// What an effect other than a replace leaves of the card.
pub(super) async fn apply<D: Db>(
    db: &D,
    vault: &Vault,
    cmd: &OperateCard,
    card: &Target,
    consumer: &ConsumerRow,
    effect: Effect,
    today: time::Date,
) -> StoreResult<After> {
    let code = cmd.reason_code;
    let reseal = |expiry: Expiry| {
        let key = consumer.data_key(vault, &cmd.issuer_id, &card.consumer_id)?;
        let sealed = card.sealed()?;
        vault
            .reseal_card(
                &key,
                &cmd.issuer_id,
                cmd.card_id.as_str(),
                sealed,
                &cmd.card_id,
                None,
                expiry,
            )
            .map(Some)
    };
    let take_renewal = |after: After| -> StoreResult<After> {
        let Some(renewed) = card
            .renewed_expiry
            .as_deref()
            .filter(|_| card.standing().renewing)
        else {
            return Ok(after);
        };
        let expiry = Expiry::stored(renewed).ok_or_else(|| StoreError::Corrupt {
            table: "cards",
            column: "renewed_expiry".to_owned(),
        })?;
        Ok(After {
            expiry: expiry.mmyy(),
            sealed: reseal(expiry)?,
            renewed_expiry: None,
            ongoing: None,
            ..after
        })
    };
    Ok(match effect {
        Effect::Becomes(CardState::Deleted) => After::ended(card, CardState::Deleted, code),
        Effect::Becomes(state) => {
            let after = After {
                state,
                state_reason: Some(code.as_str().to_owned()),
                ..After::of(card)
            };
            if cmd.action.operation() == CardOperation::Activate {
                take_renewal(after)?
            } else {
                after
            }
        }
        Effect::TakesRenewal => take_renewal(After::of(card))?,
        Effect::Renews => match &cmd.action {
            CardAction::Renew { data: Some(d) } => After {
                expiry: d.expiry.mmyy(),
                sealed: reseal(d.expiry)?,
                ..After::of(card)
            },
            _ => {
                let validity = card_product(db, cmd, card).await?.validity_months;
                After {
                    renewed_expiry: Some(Expiry::months_after(today, validity).mmyy()),
                    ongoing: Some(RENEWAL.to_owned()),
                    ..After::of(card)
                }
            }
        },
    })
}

/// The card's product: a created card's range and validity.
pub(super) async fn card_product<D: Db>(
    db: &D,
    cmd: &OperateCard,
    card: &Target,
) -> StoreResult<crate::ProductRecord> {
    let id = CardProductId::parse(&card.product).map_err(|_| StoreError::Corrupt {
        table: "cards",
        column: "card_product_id".to_owned(),
    })?;
    crate::rules::cards::product(db, &cmd.issuer_id, &id)
        .await?
        .ok_or_else(|| StoreError::Other(anyhow::anyhow!("a created card without its product")))
}

/// Writes the card as the operation leaves it, with the operation for the retry rule.
pub(super) async fn write<D: Db>(
    db: &D,
    card: &Target,
    after: &After,
    op: CardOperation,
    code: ReasonCode,
    operation_id: &str,
    now: i64,
) -> StoreResult<()> {
    db.exec(
        &sql::APPLY,
        params![
            after.state.as_str(),
            after.state_reason.as_ref(),
            &after.expiry,
            after.renewed_expiry.as_ref(),
            after.ongoing.as_ref(),
            after.sealed.as_ref(),
            after.replaced_by.as_ref(),
            op.as_str(),
            code.as_str(),
            operation_id,
            now,
            card.id,
        ],
    )
    .await?;
    Ok(())
}
