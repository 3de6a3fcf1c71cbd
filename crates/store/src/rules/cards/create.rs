//! Create card: a free PAN allocated in the product's range, the card sealed and stored for
//! its consumer, and the answer kept under the request's Idempotency-Key.

use d1_domain::card::{CardId, Pan};
use d1_domain::{ConsumerState, IssuerId, OperationKind};
use futures_util::future::try_join;

use super::{insert_card, pan_known};
use crate::db::{params, Db};
use crate::rows::CreatedCard;
use crate::rules::trail::Entry;
use crate::rules::{consumers, notify};
use crate::sql::cards as sql;
use crate::vault::Vault;
use crate::{CreateCard, CreateOutcome, ProductRecord, StoreResult};

/// Create card: allocate a free PAN in the product's range, seal it, store the card, and
/// keep the Idempotency-Key's answer.
pub(crate) async fn create<D: Db>(
    db: &D,
    vault: &Vault,
    cmd: &CreateCard,
    today: time::Date,
    now: i64,
) -> StoreResult<CreateOutcome> {
    if let Some((key, hash)) = &cmd.idempotency {
        let seen = db
            .query_opt(&sql::IDEMPOTENCY_KEY, params![cmd.issuer_id.as_str(), key])
            .await?;
        if let Some(mut seen) = seen {
            if &seen.blob(0)? != hash {
                return Ok(CreateOutcome::KeyReused);
            }
            return Ok(CreateOutcome::Created(seen.parsed(1, CardId::parse)?));
        }
    }
    let Some(consumer) = consumers::lock(db, &cmd.issuer_id, &cmd.consumer_id).await? else {
        return Ok(CreateOutcome::ConsumerNotFound);
    };
    if consumer.state == ConsumerState::Deleted {
        return Ok(CreateOutcome::ConsumerDeleted);
    }
    let Some((pan, pan_mac)) = free_pan(db, vault, &cmd.issuer_id, &cmd.product).await? else {
        return Ok(CreateOutcome::RangeExhausted);
    };
    let card = CreatedCard::new(vault, cmd, &consumer, pan, today)?;
    let row = card.row(cmd, &consumer, &pan_mac);
    let entry = Entry::card(OperationKind::CardCreate, card.card_id.as_str());
    let owner = (consumer.id, &cmd.consumer_id);
    try_join(
        insert_card(db, &row, now),
        notify::record_card_operation(db, &cmd.issuer_id, owner, &entry, &cmd.trail, now),
    )
    .await?;
    let card_id = card.card_id;
    if let Some((key, hash)) = &cmd.idempotency {
        db.exec(
            &sql::INSERT_IDEMPOTENCY_KEY,
            params![cmd.issuer_id.as_str(), key, hash, card_id.as_str(), now],
        )
        .await?;
    }
    Ok(CreateOutcome::Created(card_id))
}

/// A free PAN in the product's range and its MAC, or `None` after 64 tries.
pub(crate) async fn free_pan<D: Db>(
    db: &D,
    vault: &Vault,
    issuer: &IssuerId,
    product: &ProductRecord,
) -> StoreResult<Option<(Pan, Vec<u8>)>> {
    let length = crate::card::allocated_length(product.scheme);
    for _ in 0..64 {
        let pan = crate::card::allocate_pan(&product.bin, length)?;
        let mac = vault.pan_mac(issuer, &pan);
        if !pan_known(db, issuer, &mac).await? {
            return Ok(Some((pan, mac)));
        }
    }
    Ok(None)
}
