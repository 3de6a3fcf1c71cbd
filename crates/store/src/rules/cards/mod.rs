//! Card use cases: products, Register card (with an implicit consumer registration), the v1
//! Register consumer with cards, Create card with its idempotency key ([`create`]), and the
//! reads. Every card write locks its consumer first, so a card and its consumer's delete never
//! interleave.

mod create;

use d1_domain::card::{CardId, CardProductId, Scheme};
use d1_domain::{ConsumerId, ConsumerState, IssuerId, OperationKind, PiSource};
use futures_util::future::{try_join, try_join3};

use super::consumers;
use super::notify;
use super::trail::{self, Entry};
use crate::db::{known, params, Db, Row};
use crate::rows::{CardRetry, ConsumerRow, LiveCard, NewCard};
use crate::sql::cards as sql;
use crate::vault::{FreshConsumer, Vault};
use crate::{
    CardOutcome, CardState, CardView, ProductRecord, RegisterCard, RegisterCards, StoreError,
    StoreResult, TrailContext,
};
pub(crate) use create::{create, free_pan};

/// Onboards a product; `Conflict` if it exists.
pub(crate) async fn add_product<D: Db>(db: &D, p: &ProductRecord, now: i64) -> StoreResult<()> {
    let inserted = db
        .exec(
            &sql::INSERT_PRODUCT,
            params![
                p.issuer_id.as_str(),
                p.card_product_id.as_str(),
                p.scheme.as_str(),
                &p.bin,
                p.validity_months,
                now,
            ],
        )
        .await?;
    if inserted == 0 {
        return Err(StoreError::Conflict("the product exists"));
    }
    Ok(())
}

/// An issuer's product.
pub(crate) async fn product<D: Db>(
    db: &D,
    issuer: &IssuerId,
    id: &CardProductId,
) -> StoreResult<Option<ProductRecord>> {
    let Some(mut r) = db
        .query_opt(&sql::PRODUCT, params![issuer.as_str(), id.as_str()])
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(ProductRecord {
        issuer_id: issuer.clone(),
        card_product_id: id.clone(),
        scheme: r.parsed(0, |s| known(Scheme::parse(s)))?,
        bin: r.text(1)?,
        validity_months: r.int_as(2)?,
    }))
}

/// The live card under a cardId, if any.
pub(crate) async fn live_card<D: Db>(
    db: &D,
    issuer: &IssuerId,
    card: &CardId,
) -> StoreResult<Option<LiveCard>> {
    let Some(mut r) = db
        .query_opt(&sql::LIVE, params![issuer.as_str(), card.as_str()])
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(LiveCard {
        id: r.int(0)?,
        consumer_ref: r.int(1)?,
        product: r.text(2)?,
        state: r.parsed(3, |s| known(CardState::parse(s)))?,
        pan_mac: r.blob(4)?,
        expiry: r.text(5)?,
    }))
}

/// Whether a PAN (by its MAC) was ever registered with the issuer, deleted ones included.
pub(crate) async fn pan_known<D: Db>(db: &D, issuer: &IssuerId, mac: &[u8]) -> StoreResult<bool> {
    match db
        .query_opt(&sql::PAN_KNOWN, params![issuer.as_str(), mac])
        .await?
    {
        Some(mut r) => r.bool(0),
        None => Ok(false),
    }
}

/// Inserts a card row.
pub(crate) async fn insert_card<D: Db>(db: &D, c: &NewCard<'_>, now: i64) -> StoreResult<()> {
    db.exec(
        &sql::INSERT,
        params![
            c.issuer.as_str(),
            c.card_id.as_str(),
            c.consumer_ref,
            c.generation,
            c.product,
            c.state.as_str(),
            c.pan_mac,
            c.sealed,
            c.pan.last4(),
            &*c.expiry.mmyy(),
            c.scheme.as_str(),
            now,
            c.model.as_str(),
            c.replaces,
        ],
    )
    .await?;
    Ok(())
}

/// Registers an unknown consumer for a card call: ACTIVE, PI source ISSUER, a REGISTER
/// entry; its row id. Another node may have registered it since this use case looked.
async fn register_implicitly<D: Db>(
    db: &D,
    issuer: &IssuerId,
    consumer: &ConsumerId,
    fresh: &FreshConsumer,
    trail: &TrailContext,
    now: i64,
) -> StoreResult<i64> {
    let id = consumers::insert_new(db, issuer, consumer, fresh, PiSource::Issuer, now)
        .await?
        .ok_or_else(|| db.lost_race())?;
    trail::record(db, id, &Entry::of(OperationKind::Register), trail, now).await?;
    Ok(id)
}

/// Register card. Every check runs before the first write, so a refusal writes nothing.
pub(crate) async fn register<D: Db>(
    db: &D,
    vault: &Vault,
    cmd: &RegisterCard,
    pan_mac: &[u8],
    now: i64,
) -> StoreResult<CardOutcome> {
    // The checks go out with the lock and run after it ([`Db`]).
    let (consumer, live, pan_known) = try_join3(
        consumers::lock(db, &cmd.issuer_id, &cmd.consumer_id),
        live_card(db, &cmd.issuer_id, &cmd.card_id),
        pan_known(db, &cmd.issuer_id, pan_mac),
    )
    .await?;
    if consumer
        .as_ref()
        .is_some_and(|c| c.state == ConsumerState::Deleted)
    {
        return Ok(CardOutcome::ConsumerDeleted);
    }
    let entry = Entry::card(OperationKind::CardRegister, cmd.card_id.as_str());
    if let Some(card) = live {
        return match card.retry(consumer.as_ref(), cmd, pan_mac) {
            CardRetry::Conflict => Ok(CardOutcome::Conflict("the cardId belongs to another card")),
            CardRetry::Unchanged => Ok(CardOutcome::Retried),
            CardRetry::Refresh { state, expiry } => {
                let consumer = consumer
                    .as_ref()
                    .ok_or_else(|| StoreError::Other(anyhow::anyhow!("card without consumer")))?;
                let sealed = seal_for(vault, consumer, cmd)?;
                db.exec(
                    &sql::REFRESH,
                    params![state.as_str(), &expiry, &sealed, now, card.id],
                )
                .await?;
                let owner = (consumer.id, &cmd.consumer_id);
                notify::record_card_operation(db, &cmd.issuer_id, owner, &entry, &cmd.trail, now)
                    .await?;
                Ok(CardOutcome::Retried)
            }
        };
    }
    if pan_known {
        return Ok(CardOutcome::Conflict(
            "the PAN is registered to another card, or was deleted, and cannot be registered again",
        ));
    }
    let (consumer_ref, generation, sealed, implicit) = match consumer {
        Some(row) => (row.id, row.generation, seal_for(vault, &row, cmd)?, false),
        None => {
            let (fresh, sealed) = vault.implicit_consumer(cmd)?;
            let id = register_implicitly(
                db,
                &cmd.issuer_id,
                &cmd.consumer_id,
                &fresh,
                &cmd.trail,
                now,
            )
            .await?;
            (id, 1, sealed, true)
        }
    };
    let row = NewCard::registered(cmd, consumer_ref, generation, pan_mac, &sealed);
    let owner = (consumer_ref, &cmd.consumer_id);
    try_join(
        insert_card(db, &row, now),
        notify::record_card_operation(db, &cmd.issuer_id, owner, &entry, &cmd.trail, now),
    )
    .await?;
    Ok(CardOutcome::Registered {
        implicit_consumer: implicit,
    })
}

/// Whose new card a group commit writes: a registered consumer's, or that of an unknown
/// consumerId registered with it, under the data key made for it.
pub(crate) enum Owner {
    Registered(ConsumerRow),
    Implicit(FreshConsumer),
}

/// Register card `cmd` prepared outside a transaction for a group commit of new cards, from
/// its consumer `found`: the owner and the card sealed under the owner's key, as [`register`]
/// seals it. `None` for a DELETED consumer, which only [`register`] answers. What is written
/// from them is [`NewCard::registered`], for the life of the consumer read, and for an
/// implicit owner the consumer [`register_implicitly`] writes.
pub(crate) fn for_group_commit(
    vault: &Vault,
    found: Option<ConsumerRow>,
    cmd: &RegisterCard,
) -> StoreResult<Option<(Owner, Vec<u8>)>> {
    match found {
        Some(row) if row.state == ConsumerState::Deleted => Ok(None),
        Some(row) => {
            let sealed = seal_for(vault, &row, cmd)?;
            Ok(Some((Owner::Registered(row), sealed)))
        }
        None => {
            let (fresh, sealed) = vault.implicit_consumer(cmd)?;
            Ok(Some((Owner::Implicit(fresh), sealed)))
        }
    }
}

fn seal_for(vault: &Vault, consumer: &ConsumerRow, cmd: &RegisterCard) -> StoreResult<Vec<u8>> {
    let key = consumer.data_key(vault, &cmd.issuer_id, &cmd.consumer_id)?;
    vault.seal_card(&key, &cmd.issuer_id, &cmd.card_id, &cmd.data)
}

/// The v1 Register consumer with cards: all or nothing. The consumer is registered (or, if
/// DELETED, started afresh) and every card placed inside one savepoint. A refused card is an
/// answer, not an error, so the transaction commits; the savepoint takes back what was
/// placed before it.
pub(crate) async fn register_batch<D: Db>(
    db: &D,
    vault: &Vault,
    cmd: &RegisterCards,
    fresh: &FreshConsumer,
    macs: &[Vec<u8>],
    now: i64,
) -> StoreResult<CardOutcome> {
    db.batch(sql::SAVEPOINT).await?;
    let outcome = place_all(db, vault, cmd, fresh, macs, now).await;
    let keep = matches!(
        outcome,
        Ok(CardOutcome::Registered { .. } | CardOutcome::Retried)
    );
    let end = db
        .batch(if keep { sql::RELEASE } else { sql::ROLLBACK })
        .await;
    // After an error the use case fails whatever the savepoint's end did.
    match outcome {
        Ok(outcome) => end.map(|()| outcome),
        Err(e) => Err(e),
    }
}

async fn place_all<D: Db>(
    db: &D,
    vault: &Vault,
    cmd: &RegisterCards,
    fresh: &FreshConsumer,
    macs: &[Vec<u8>],
    now: i64,
) -> StoreResult<CardOutcome> {
    let (issuer, consumer) = (&cmd.issuer_id, &cmd.consumer_id);
    match consumers::lock(db, issuer, consumer).await? {
        None => {
            register_implicitly(db, issuer, consumer, fresh, &cmd.trail, now).await?;
        }
        Some(row) if row.state == ConsumerState::Deleted => {
            consumers::restart(db, row.id, fresh, PiSource::Issuer, now).await?;
            let entry = Entry::of(OperationKind::Register);
            trail::record(db, row.id, &entry, &cmd.trail, now).await?;
        }
        Some(_) => {}
    }
    for (card, mac) in cmd.cards.iter().zip(macs) {
        let one = RegisterCard {
            issuer_id: cmd.issuer_id.clone(),
            card_id: card.card_id.clone(),
            consumer_id: cmd.consumer_id.clone(),
            card_product_id: card.card_product_id.clone(),
            data: card.data.clone(),
            state: card.state,
            trail: cmd.trail.clone(),
        };
        match Box::pin(register(db, vault, &one, mac, now)).await? {
            CardOutcome::Registered { .. } | CardOutcome::Retried => {}
            refused => return Ok(refused),
        }
    }
    Ok(CardOutcome::Registered {
        implicit_consumer: false,
    })
}

/// A card as read back. A card of a deleted consumer, or of a consumerId's earlier life,
/// reads as DELETED whatever its row says.
fn card_view(mut r: Row) -> StoreResult<CardView> {
    let consumer_state = r.parsed(9, |s| known(ConsumerState::parse(s)))?;
    let current = r.int(10)? == r.int(11)?;
    let stored = r.parsed(3, |s| known(CardState::parse(s)))?;
    let forced = consumer_state == ConsumerState::Deleted || !current;
    let state = if forced { CardState::Deleted } else { stored };
    let state_reason = r.opt_text(12)?.filter(|_| !forced);
    Ok(CardView {
        consumer_id: r.parsed(0, |s| ConsumerId::parse(s).map(|(c, _)| c))?,
        card_id: r.parsed(1, CardId::parse)?,
        card_product_id: r.text(2)?,
        state,
        state_reason,
        ongoing_operation: r.opt_text(13)?,
        renewed_expiry: r.opt_text(14)?,
        replaces: r.opt_text(15)?,
        replaced_by: r.opt_text(16)?,
        scheme: r.text(4)?,
        last4: r.text(5)?,
        expiry: r.text(6)?,
        created_at: r.int(7)?,
        updated_at: r.int(8)?,
    })
}

/// A card by id: the live one, else the most recent deleted one.
pub(crate) async fn get<D: Db>(
    db: &D,
    issuer: &IssuerId,
    card: &CardId,
) -> StoreResult<Option<CardView>> {
    db.query_opt(&sql::BY_ID, params![issuer.as_str(), card.as_str()])
        .await?
        .map(card_view)
        .transpose()
}

/// The cards of a consumer's current life; `None` for an unknown consumer.
pub(crate) async fn list<D: Db>(
    db: &D,
    issuer: &IssuerId,
    consumer: &ConsumerId,
) -> StoreResult<Option<Vec<CardView>>> {
    let Some(row) = consumers::find(db, issuer, consumer).await? else {
        return Ok(None);
    };
    db.query(&sql::OF_CONSUMER, params![row.id, row.generation])
        .await?
        .into_iter()
        .map(card_view)
        .collect::<StoreResult<Vec<_>>>()
        .map(Some)
}
