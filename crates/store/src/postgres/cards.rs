//! Card use cases on PostgreSQL. Every card write locks its consumer's row first, so a card
//! registration and its consumer's delete cascade never interleave; the unique indexes on
//! live cardIds and on PAN MACs settle races between consumers.

use d1_domain::card::{CardId, CardProductId, Pan, Scheme};
use d1_domain::{ConsumerId, ConsumerState, IssuerId, OperationKind, PiSource};
use deadpool_postgres::GenericClient;

use super::consumers::{self, Entry};
use super::transaction::{exec, row, rows, Contended};
use crate::card::{allocated_length, random_digit, RawCard, CARD_COLUMNS};
use crate::rows::{CardRetry, CreatedCard, LiveCard, NewCard};
use crate::vault::{FreshConsumer, PreparedCard, Vault};
use crate::{
    CardOutcome, CardState, CardView, CreateCard, CreateOutcome, ProductRecord, RegisterCard,
    RegisterCards, StoreError, StoreResult, TrailContext,
};

pub(super) async fn add_product(
    c: &impl GenericClient,
    p: &ProductRecord,
    now: i64,
) -> StoreResult<()> {
    let months = i32::try_from(p.validity_months)
        .map_err(|_| StoreError::Other(anyhow::anyhow!("validity out of range")))?;
    let inserted = exec(
        c,
        "INSERT INTO card_products (issuer_id, card_product_id, scheme, bin, validity_months,
                                    created_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        &[
            &p.issuer_id.as_str(),
            &p.card_product_id.as_str(),
            &p.scheme.as_str(),
            &p.bin,
            &months,
            &now,
        ],
    )
    .await?;
    if inserted == 0 {
        return Err(StoreError::Conflict("the product exists"));
    }
    Ok(())
}

pub(super) async fn product(
    c: &impl GenericClient,
    issuer: &IssuerId,
    id: &CardProductId,
) -> StoreResult<Option<ProductRecord>> {
    let found = row(
        c,
        "SELECT scheme, bin, validity_months FROM card_products
         WHERE issuer_id = $1 AND card_product_id = $2",
        &[&issuer.as_str(), &id.as_str()],
    )
    .await?;
    Ok(found.map(|r| ProductRecord {
        issuer_id: issuer.clone(),
        card_product_id: id.clone(),
        scheme: Scheme::parse(r.get(0)).unwrap_or(Scheme::Other),
        bin: r.get(1),
        validity_months: u32::try_from(r.get::<_, i32>(2)).unwrap_or(0),
    }))
}

async fn live_card(
    c: &impl GenericClient,
    issuer: &IssuerId,
    card: &CardId,
) -> StoreResult<Option<LiveCard>> {
    let found = row(
        c,
        "SELECT id, consumer_ref, card_product_id, state, pan_mac, expiry FROM cards
         WHERE issuer_id = $1 AND card_id = $2 AND state <> 'DELETED'",
        &[&issuer.as_str(), &card.as_str()],
    )
    .await?;
    Ok(found.map(|r| LiveCard {
        id: r.get(0),
        consumer_ref: r.get(1),
        product: r.get(2),
        state: CardState::parse(r.get(3)).unwrap_or(CardState::Inactive),
        pan_mac: r.get(4),
        expiry: r.get(5),
    }))
}

async fn pan_known(c: &impl GenericClient, issuer: &IssuerId, mac: &[u8]) -> StoreResult<bool> {
    Ok(row(
        c,
        "SELECT EXISTS (SELECT 1 FROM cards WHERE issuer_id = $1 AND pan_mac = $2)",
        &[&issuer.as_str(), &mac],
    )
    .await?
    .is_some_and(|r| r.get(0)))
}

async fn insert_card(c: &impl GenericClient, card: &NewCard<'_>, now: i64) -> StoreResult<()> {
    exec(
        c,
        "INSERT INTO cards (issuer_id, card_id, consumer_ref, consumer_generation, card_product_id,
                            state, pan_mac, sealed, last4, expiry, scheme, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
        &[
            &card.issuer.as_str(),
            &card.card_id.as_str(),
            &card.consumer_ref,
            &card.generation,
            &card.product,
            &card.state.as_str(),
            &card.pan_mac,
            &card.sealed,
            &card.pan.last4(),
            &card.expiry.mmyy(),
            &card.scheme.as_str(),
            &now,
        ],
    )
    .await?;
    Ok(())
}

fn card_entry(kind: OperationKind, card_id: &CardId) -> Entry<'_> {
    Entry {
        kind,
        card_id: Some(card_id.as_str()),
        reason: None,
        reason_code: None,
    }
}

/// Registers an unknown consumer for a card call; returns its row id. Another node may have
/// registered it since this transaction looked: then the whole use case runs again.
async fn register_implicitly(
    c: &impl GenericClient,
    issuer: &IssuerId,
    consumer: &ConsumerId,
    fresh: &FreshConsumer,
    trail: &TrailContext,
    now: i64,
) -> StoreResult<i64> {
    let id = consumers::insert_new(c, issuer, consumer, fresh, PiSource::Issuer, now)
        .await?
        .ok_or_else(|| StoreError::Other(Contended.into()))?;
    consumers::record(c, id, &Entry::register(), trail, now).await?;
    Ok(id)
}

/// Register card. Every check runs before the first write, so a refusal writes nothing.
pub(super) async fn register(
    c: &impl GenericClient,
    vault: &Vault,
    cmd: &RegisterCard,
    prepared: &PreparedCard,
    now: i64,
) -> StoreResult<CardOutcome> {
    let consumer = consumers::lock(c, &cmd.issuer_id, &cmd.consumer_id).await?;
    if consumer
        .as_ref()
        .is_some_and(|c| c.state == ConsumerState::Deleted)
    {
        return Ok(CardOutcome::ConsumerDeleted);
    }
    if let Some(card) = live_card(c, &cmd.issuer_id, &cmd.card_id).await? {
        match card.retry(consumer.as_ref(), cmd, &prepared.pan_mac) {
            CardRetry::Conflict => {
                return Ok(CardOutcome::Conflict("the cardId belongs to another card"))
            }
            CardRetry::Unchanged => {}
            CardRetry::Refresh { state, expiry } => {
                let consumer = consumer
                    .as_ref()
                    .ok_or_else(|| StoreError::Other(anyhow::anyhow!("card without consumer")))?;
                let key = consumer.data_key(vault, &cmd.issuer_id, &cmd.consumer_id)?;
                let sealed = vault.seal_card(&key, &cmd.issuer_id, &cmd.card_id, &cmd.data)?;
                exec(
                    c,
                    "UPDATE cards SET state = $2, expiry = $3, sealed = $4, updated_at = $5
                     WHERE id = $1",
                    &[&card.id, &state.as_str(), &expiry, &sealed, &now],
                )
                .await?;
                let entry = card_entry(OperationKind::CardRegister, &cmd.card_id);
                consumers::record(c, consumer.id, &entry, &cmd.trail, now).await?;
            }
        }
        return Ok(CardOutcome::Retried);
    }
    if pan_known(c, &cmd.issuer_id, &prepared.pan_mac).await? {
        return Ok(CardOutcome::Conflict(
            "the PAN is registered, or was deleted, under another cardId",
        ));
    }
    let (consumer_ref, generation, sealed, implicit) = match consumer {
        Some(row) => {
            let key = row.data_key(vault, &cmd.issuer_id, &cmd.consumer_id)?;
            let sealed = vault.seal_card(&key, &cmd.issuer_id, &cmd.card_id, &cmd.data)?;
            (row.id, row.generation, sealed, false)
        }
        None => {
            let (fresh, sealed) = prepared.fresh.as_ref().ok_or_else(|| {
                StoreError::Other(anyhow::anyhow!(
                    "no key prepared for an implicit registration"
                ))
            })?;
            let id =
                register_implicitly(c, &cmd.issuer_id, &cmd.consumer_id, fresh, &cmd.trail, now)
                    .await?;
            (id, 1, sealed.clone(), true)
        }
    };
    insert_card(
        c,
        &NewCard::registered(cmd, consumer_ref, generation, &prepared.pan_mac, &sealed),
        now,
    )
    .await?;
    let entry = card_entry(OperationKind::CardRegister, &cmd.card_id);
    consumers::record(c, consumer_ref, &entry, &cmd.trail, now).await?;
    Ok(CardOutcome::Registered {
        implicit_consumer: implicit,
    })
}

/// Create card: allocate a free PAN in the product's range, seal it, store the card.
pub(super) async fn create(
    c: &impl GenericClient,
    vault: &Vault,
    cmd: &CreateCard,
    now: i64,
) -> StoreResult<CreateOutcome> {
    if let Some((key, hash)) = &cmd.idempotency {
        let seen = row(
            c,
            "SELECT request_hash, card_id FROM idempotency_keys WHERE issuer_id = $1 AND key = $2",
            &[&cmd.issuer_id.as_str(), key],
        )
        .await?;
        if let Some(seen) = seen {
            if seen.get::<_, &[u8]>(0) != hash.as_slice() {
                return Ok(CreateOutcome::KeyReused);
            }
            let card_id = CardId::parse(seen.get(1))
                .map_err(|_| StoreError::Other(anyhow::anyhow!("stored card id is malformed")))?;
            return Ok(CreateOutcome::Created(card_id));
        }
    }
    let Some(consumer) = consumers::lock(c, &cmd.issuer_id, &cmd.consumer_id).await? else {
        return Ok(CreateOutcome::ConsumerNotFound);
    };
    if consumer.state == ConsumerState::Deleted {
        return Ok(CreateOutcome::ConsumerDeleted);
    }
    let length = allocated_length(cmd.product.scheme);
    let mut found = None;
    for _ in 0..64 {
        let pan = Pan::allocate(&cmd.product.bin, length, &mut random_digit);
        let mac = vault.pan_mac(&cmd.issuer_id, &pan);
        if !pan_known(c, &cmd.issuer_id, &mac).await? {
            found = Some((pan, mac));
            break;
        }
    }
    let Some((pan, pan_mac)) = found else {
        return Ok(CreateOutcome::RangeExhausted);
    };
    let today = time::OffsetDateTime::now_utc().date();
    let card = CreatedCard::new(vault, cmd, &consumer, pan, today)?;
    insert_card(c, &card.row(cmd, &consumer, &pan_mac), now).await?;
    let card_id = card.card_id;
    let entry = card_entry(OperationKind::CardCreate, &card_id);
    consumers::record(c, consumer.id, &entry, &cmd.trail, now).await?;
    if let Some((key, hash)) = &cmd.idempotency {
        // A concurrent request with the same key makes this insert fail; run again, this
        // use case then answers with the winner's card.
        exec(
            c,
            "INSERT INTO idempotency_keys (issuer_id, key, request_hash, card_id, created_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[&cmd.issuer_id.as_str(), key, hash, &card_id.as_str(), &now],
        )
        .await?;
    }
    Ok(CreateOutcome::Created(card_id))
}

fn read_card(r: &tokio_postgres::Row) -> RawCard {
    RawCard {
        consumer_id: r.get(0),
        card_id: r.get(1),
        card_product_id: r.get(2),
        state: RawCard::shown_state(
            r.get(3),
            r.get(9),
            r.get::<_, i64>(10) == r.get::<_, i64>(11),
        ),
        scheme: r.get(4),
        last4: r.get(5),
        expiry: r.get(6),
        created_at: r.get(7),
        updated_at: r.get(8),
    }
}

pub(super) async fn get(
    c: &impl GenericClient,
    issuer: &IssuerId,
    card: &CardId,
) -> StoreResult<Option<CardView>> {
    row(
        c,
        &format!(
            "{CARD_COLUMNS} WHERE k.issuer_id = $1 AND k.card_id = $2
             ORDER BY k.state = 'DELETED', k.id DESC LIMIT 1"
        ),
        &[&issuer.as_str(), &card.as_str()],
    )
    .await?
    .map(|r| read_card(&r).into_view())
    .transpose()
}

pub(super) async fn list(
    c: &impl GenericClient,
    issuer: &IssuerId,
    consumer: &ConsumerId,
) -> StoreResult<Option<Vec<CardView>>> {
    let Some(row) = consumers::find(c, issuer, consumer).await? else {
        return Ok(None);
    };
    rows(
        c,
        &format!(
            "{CARD_COLUMNS} WHERE k.consumer_ref = $1 AND k.consumer_generation = $2 ORDER BY k.id"
        ),
        &[&row.id, &row.generation],
    )
    .await?
    .iter()
    .map(|r| read_card(r).into_view())
    .collect::<StoreResult<Vec<_>>>()
    .map(Some)
}

/// Deletes every live card of a consumer's current life (its row is locked by the caller),
/// shredding the sealed data, and records one CARD_DELETE per card.
pub(super) async fn delete_for_consumer(
    c: &impl GenericClient,
    consumer_ref: i64,
    generation: i64,
    trail: &TrailContext,
    now: i64,
) -> StoreResult<()> {
    let deleted = rows(
        c,
        "UPDATE cards SET state = 'DELETED', sealed = NULL, updated_at = $3
         WHERE consumer_ref = $1 AND consumer_generation = $2 AND state <> 'DELETED'
         RETURNING card_id",
        &[&consumer_ref, &generation, &now],
    )
    .await?;
    for r in deleted {
        let entry = Entry {
            kind: OperationKind::CardDelete,
            card_id: Some(r.get(0)),
            reason: None,
            reason_code: None,
        };
        consumers::record(c, consumer_ref, &entry, trail, now).await?;
    }
    Ok(())
}

/// The v1 Register consumer with cards: all or nothing. A refused card is an answer, not an
/// error, so the transaction commits; the savepoint takes back what was placed before it.
pub(super) async fn register_batch(
    c: &impl GenericClient,
    vault: &Vault,
    cmd: &RegisterCards,
    fresh: &FreshConsumer,
    macs: &[Vec<u8>],
    now: i64,
) -> StoreResult<CardOutcome> {
    c.batch_execute("SAVEPOINT v1_cards")
        .await
        .map_err(super::transaction::pg)?;
    let outcome = place_all(c, vault, cmd, fresh, macs, now).await;
    let end = if matches!(
        outcome,
        Ok(CardOutcome::Registered { .. } | CardOutcome::Retried)
    ) {
        "RELEASE SAVEPOINT v1_cards"
    } else {
        "ROLLBACK TO SAVEPOINT v1_cards"
    };
    if outcome.is_ok() {
        c.batch_execute(end).await.map_err(super::transaction::pg)?;
    }
    outcome
}

async fn place_all(
    c: &impl GenericClient,
    vault: &Vault,
    cmd: &RegisterCards,
    fresh: &FreshConsumer,
    macs: &[Vec<u8>],
    now: i64,
) -> StoreResult<CardOutcome> {
    match consumers::lock(c, &cmd.issuer_id, &cmd.consumer_id).await? {
        None => {
            register_implicitly(c, &cmd.issuer_id, &cmd.consumer_id, fresh, &cmd.trail, now)
                .await?;
        }
        Some(row) if row.state == ConsumerState::Deleted => {
            consumers::restart(c, row.id, fresh, PiSource::Issuer, now).await?;
            consumers::record(c, row.id, &Entry::register(), &cmd.trail, now).await?;
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
        let prepared = PreparedCard {
            pan_mac: mac.clone(),
            fresh: None,
        };
        match Box::pin(register(c, vault, &one, &prepared, now)).await? {
            CardOutcome::Registered { .. } | CardOutcome::Retried => {}
            refused => return Ok(refused),
        }
    }
    Ok(CardOutcome::Registered {
        implicit_consumer: false,
    })
}
