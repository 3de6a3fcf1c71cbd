//! Card use cases on SQLite: products, register card (with implicit consumer registration),
//! create card, reads, and the cascade of a consumer's delete.

use d1_domain::card::{CardId, CardProductId, Pan, Scheme};
use d1_domain::{ConsumerId, ConsumerState, IssuerId, OperationKind, PiSource};
use rusqlite::{params, Connection, OptionalExtension};

use super::consumers::{self, Entry};
use super::sql;
use crate::card::{RawCard, CARD_COLUMNS};
use crate::rows::{CardRetry, CreatedCard, LiveCard, NewCard};
use crate::vault::{FreshConsumer, PreparedCard, Vault};
use crate::{
    CardOutcome, CardState, CardView, CreateCard, CreateOutcome, ProductRecord, RegisterCard,
    RegisterCards, StoreError, StoreResult, TrailContext,
};

pub(super) fn add_product(conn: &Connection, p: &ProductRecord, now: i64) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO card_products (issuer_id, card_product_id, scheme, bin, validity_months, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![p.issuer_id.as_str(), p.card_product_id.as_str(), p.scheme.as_str(), p.bin, p.validity_months, now],
    )
    .map_err(|e| if super::issuers::is_unique_violation(&e) { StoreError::Conflict("the product exists") } else { sql(e) })?;
    Ok(())
}

pub(super) fn product(
    conn: &Connection,
    issuer: &IssuerId,
    id: &CardProductId,
) -> StoreResult<Option<ProductRecord>> {
    conn.prepare_cached("SELECT scheme, bin, validity_months FROM card_products WHERE issuer_id = ?1 AND card_product_id = ?2")
        .and_then(|mut s| {
            s.query_row(params![issuer.as_str(), id.as_str()], |r| {
                let scheme: String = r.get(0)?;
                Ok(ProductRecord {
                    issuer_id: issuer.clone(),
                    card_product_id: id.clone(),
                    scheme: Scheme::parse(&scheme).unwrap_or(Scheme::Other),
                    bin: r.get(1)?,
                    validity_months: r.get(2)?,
                })
            })
            .optional()
        })
        .map_err(sql)
}

fn live_card(conn: &Connection, issuer: &IssuerId, card: &CardId) -> StoreResult<Option<LiveCard>> {
    conn.prepare_cached(
        "SELECT id, consumer_ref, card_product_id, state, pan_mac, expiry FROM cards
         WHERE issuer_id = ?1 AND card_id = ?2 AND state <> 'DELETED'",
    )
    .and_then(|mut s| {
        s.query_row(params![issuer.as_str(), card.as_str()], |r| {
            let state: String = r.get(3)?;
            Ok(LiveCard {
                id: r.get(0)?,
                consumer_ref: r.get(1)?,
                product: r.get(2)?,
                state: CardState::parse(&state).unwrap_or(CardState::Inactive),
                pan_mac: r.get(4)?,
                expiry: r.get(5)?,
            })
        })
        .optional()
    })
    .map_err(sql)
}

fn pan_known(conn: &Connection, issuer: &IssuerId, mac: &[u8]) -> StoreResult<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM cards WHERE issuer_id = ?1 AND pan_mac = ?2)")
        .and_then(|mut s| s.query_row(params![issuer.as_str(), mac], |r| r.get(0)))
        .map_err(sql)
}

fn insert_card(conn: &Connection, c: &NewCard<'_>, now: i64) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO cards (issuer_id, card_id, consumer_ref, consumer_generation, card_product_id, state, pan_mac,
                            sealed, last4, expiry, scheme, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
    )
    .and_then(|mut s| {
        s.execute(params![
            c.issuer.as_str(),
            c.card_id.as_str(),
            c.consumer_ref,
            c.generation,
            c.product,
            c.state.as_str(),
            c.pan_mac,
            c.sealed,
            c.pan.last4(),
            c.expiry.mmyy(),
            c.scheme.as_str(),
            now
        ])
    })
    .map_err(sql)?;
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

/// Registers an unknown consumer for a card call: ACTIVE, PI source ISSUER, a REGISTER entry.
/// Returns its row id.
fn register_implicitly(
    conn: &Connection,
    issuer: &IssuerId,
    consumer: &ConsumerId,
    fresh: &FreshConsumer,
    trail: &TrailContext,
    now: i64,
) -> StoreResult<i64> {
    let id = consumers::insert_new(conn, issuer, consumer, fresh, PiSource::Issuer, now)?
        .ok_or_else(|| {
            StoreError::Other(anyhow::anyhow!("consumer appeared inside its transaction"))
        })?;
    consumers::record(conn, id, &consumers::register_entry(), trail, now)?;
    Ok(id)
}

/// Register card. Every check runs before the first write, so a refusal writes nothing.
pub(super) fn register(
    conn: &Connection,
    vault: &Vault,
    cmd: &RegisterCard,
    prepared: &PreparedCard,
    now: i64,
) -> StoreResult<CardOutcome> {
    let consumer = consumers::find(conn, &cmd.issuer_id, &cmd.consumer_id)?;
    if consumer
        .as_ref()
        .is_some_and(|c| c.state == ConsumerState::Deleted)
    {
        return Ok(CardOutcome::ConsumerDeleted);
    }
    if let Some(card) = live_card(conn, &cmd.issuer_id, &cmd.card_id)? {
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
                conn.prepare_cached("UPDATE cards SET state = ?2, expiry = ?3, sealed = ?4, updated_at = ?5 WHERE id = ?1")
                    .and_then(|mut s| s.execute(params![card.id, state.as_str(), expiry, sealed, now]))
                    .map_err(sql)?;
                consumers::record(
                    conn,
                    consumer.id,
                    &card_entry(OperationKind::CardRegister, &cmd.card_id),
                    &cmd.trail,
                    now,
                )?;
            }
        }
        return Ok(CardOutcome::Retried);
    }
    if pan_known(conn, &cmd.issuer_id, &prepared.pan_mac)? {
        return Ok(CardOutcome::Conflict(
            "the PAN is registered, or was deleted, under another cardId",
        ));
    }
    let (consumer_ref, generation, sealed, implicit) = match consumer {
        Some(c) => {
            let key = c.data_key(vault, &cmd.issuer_id, &cmd.consumer_id)?;
            (
                c.id,
                c.generation,
                vault.seal_card(&key, &cmd.issuer_id, &cmd.card_id, &cmd.data)?,
                false,
            )
        }
        None => {
            let (fresh, sealed_for_fresh) = prepared.fresh.as_ref().ok_or_else(|| {
                StoreError::Other(anyhow::anyhow!(
                    "no key prepared for an implicit registration"
                ))
            })?;
            let id = register_implicitly(
                conn,
                &cmd.issuer_id,
                &cmd.consumer_id,
                fresh,
                &cmd.trail,
                now,
            )?;
            (id, 1, sealed_for_fresh.clone(), true)
        }
    };
    insert_card(
        conn,
        &NewCard::registered(cmd, consumer_ref, generation, &prepared.pan_mac, &sealed),
        now,
    )?;
    consumers::record(
        conn,
        consumer_ref,
        &card_entry(OperationKind::CardRegister, &cmd.card_id),
        &cmd.trail,
        now,
    )?;
    Ok(CardOutcome::Registered {
        implicit_consumer: implicit,
    })
}

/// Create card: allocate a free PAN in the product's range, seal it, store the card.
pub(super) fn create(
    conn: &Connection,
    vault: &Vault,
    cmd: &CreateCard,
    today: time::Date,
    now: i64,
) -> StoreResult<CreateOutcome> {
    if let Some((key, hash)) = &cmd.idempotency {
        let seen: Option<(Vec<u8>, String)> = conn
            .prepare_cached("SELECT request_hash, card_id FROM idempotency_keys WHERE issuer_id = ?1 AND key = ?2")
            .and_then(|mut s| s.query_row(params![cmd.issuer_id.as_str(), key], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(sql)?;
        if let Some((seen_hash, card_id)) = seen {
            if &seen_hash != hash {
                return Ok(CreateOutcome::KeyReused);
            }
            let card_id = CardId::parse(&card_id)
                .map_err(|_| StoreError::Other(anyhow::anyhow!("stored card id is malformed")))?;
            return Ok(CreateOutcome::Created(card_id));
        }
    }
    let Some(consumer) = consumers::find(conn, &cmd.issuer_id, &cmd.consumer_id)? else {
        return Ok(CreateOutcome::ConsumerNotFound);
    };
    if consumer.state == ConsumerState::Deleted {
        return Ok(CreateOutcome::ConsumerDeleted);
    }
    let length = crate::card::allocated_length(cmd.product.scheme);
    let mut found = None;
    for _ in 0..64 {
        let pan = Pan::allocate(&cmd.product.bin, length, &mut crate::card::random_digit);
        let mac = vault.pan_mac(&cmd.issuer_id, &pan);
        if !pan_known(conn, &cmd.issuer_id, &mac)? {
            found = Some((pan, mac));
            break;
        }
    }
    let Some((pan, pan_mac)) = found else {
        return Ok(CreateOutcome::RangeExhausted);
    };
    let card = CreatedCard::new(vault, cmd, &consumer, pan, today)?;
    insert_card(conn, &card.row(cmd, &consumer, &pan_mac), now)?;
    let card_id = card.card_id;
    consumers::record(
        conn,
        consumer.id,
        &card_entry(OperationKind::CardCreate, &card_id),
        &cmd.trail,
        now,
    )?;
    if let Some((key, hash)) = &cmd.idempotency {
        conn.prepare_cached("INSERT INTO idempotency_keys (issuer_id, key, request_hash, card_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")
            .and_then(|mut s| s.execute(params![cmd.issuer_id.as_str(), key, hash, card_id.as_str(), now]))
            .map_err(sql)?;
    }
    Ok(CreateOutcome::Created(card_id))
}

fn read_card(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawCard> {
    let consumer_state: String = r.get(9)?;
    let state: String = r.get(3)?;
    Ok(RawCard {
        consumer_id: r.get(0)?,
        card_id: r.get(1)?,
        card_product_id: r.get(2)?,
        state: RawCard::shown_state(
            &state,
            &consumer_state,
            r.get::<_, i64>(10)? == r.get::<_, i64>(11)?,
        ),
        scheme: r.get(4)?,
        last4: r.get(5)?,
        expiry: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
    })
}

pub(super) fn get(
    conn: &Connection,
    issuer: &IssuerId,
    card: &CardId,
) -> StoreResult<Option<CardView>> {
    conn.prepare_cached(&format!(
        "{CARD_COLUMNS} WHERE k.issuer_id = ?1 AND k.card_id = ?2 ORDER BY k.state = 'DELETED', k.id DESC LIMIT 1"
    ))
    .and_then(|mut s| s.query_row(params![issuer.as_str(), card.as_str()], read_card).optional())
    .map_err(sql)?
    .map(RawCard::into_view)
    .transpose()
}

pub(super) fn list(
    conn: &Connection,
    issuer: &IssuerId,
    consumer: &ConsumerId,
) -> StoreResult<Option<Vec<CardView>>> {
    let Some(row) = consumers::find(conn, issuer, consumer)? else {
        return Ok(None);
    };
    let cards = conn
        .prepare_cached(&format!(
            "{CARD_COLUMNS} WHERE k.consumer_ref = ?1 AND k.consumer_generation = ?2 ORDER BY k.id"
        ))
        .and_then(|mut s| {
            s.query_map(params![row.id, row.generation], read_card)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        })
        .map_err(sql)?;
    cards
        .into_iter()
        .map(RawCard::into_view)
        .collect::<StoreResult<Vec<_>>>()
        .map(Some)
}

/// Deletes every live card of a consumer's current life, shredding its sealed data, and
/// records one CARD_DELETE per card.
pub(super) fn delete_for_consumer(
    conn: &Connection,
    consumer_ref: i64,
    generation: i64,
    trail: &TrailContext,
    now: i64,
) -> StoreResult<()> {
    let deleted: Vec<String> = conn
        .prepare_cached(
            "UPDATE cards SET state = 'DELETED', sealed = NULL, updated_at = ?3
             WHERE consumer_ref = ?1 AND consumer_generation = ?2 AND state <> 'DELETED' RETURNING card_id",
        )
        .and_then(|mut s| s.query_map(params![consumer_ref, generation, now], |r| r.get(0)).and_then(Iterator::collect))
        .map_err(sql)?;
    for card_id in deleted {
        let entry = Entry {
            kind: OperationKind::CardDelete,
            card_id: Some(&card_id),
            reason: None,
            reason_code: None,
        };
        consumers::record(conn, consumer_ref, &entry, trail, now)?;
    }
    Ok(())
}

/// The v1 Register consumer with cards: all or nothing. The consumer is registered (or, if
/// DELETED, started afresh) and every card placed inside one savepoint; the first card that
/// clashes rolls all of it back.
pub(super) fn register_batch(
    conn: &Connection,
    vault: &Vault,
    cmd: &RegisterCards,
    fresh: &FreshConsumer,
    macs: &[Vec<u8>],
    now: i64,
) -> StoreResult<CardOutcome> {
    conn.execute_batch("SAVEPOINT v1_cards").map_err(sql)?;
    let outcome = place_all(conn, vault, cmd, fresh, macs, now);
    let keep = matches!(
        outcome,
        Ok(CardOutcome::Registered { .. } | CardOutcome::Retried)
    );
    let end = if keep {
        "RELEASE v1_cards"
    } else {
        "ROLLBACK TO v1_cards; RELEASE v1_cards"
    };
    conn.execute_batch(end).map_err(sql)?;
    outcome
}

fn place_all(
    conn: &Connection,
    vault: &Vault,
    cmd: &RegisterCards,
    fresh: &FreshConsumer,
    macs: &[Vec<u8>],
    now: i64,
) -> StoreResult<CardOutcome> {
    match consumers::find(conn, &cmd.issuer_id, &cmd.consumer_id)? {
        None => {
            register_implicitly(
                conn,
                &cmd.issuer_id,
                &cmd.consumer_id,
                fresh,
                &cmd.trail,
                now,
            )?;
        }
        Some(row) if row.state == ConsumerState::Deleted => {
            consumers::restart(conn, row.id, fresh, PiSource::Issuer, now)?;
            consumers::record(conn, row.id, &consumers::register_entry(), &cmd.trail, now)?;
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
        match register(
            conn,
            vault,
            &one,
            &PreparedCard {
                pan_mac: mac.clone(),
                fresh: None,
            },
            now,
        )? {
            CardOutcome::Registered { .. } | CardOutcome::Retried => {}
            refused => return Ok(refused),
        }
    }
    Ok(CardOutcome::Registered {
        implicit_consumer: false,
    })
}
