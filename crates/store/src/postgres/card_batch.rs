//! Group commit for new cards ([`super::group`]). A card is eight statements when it runs
//! alone, ten when it registers its consumer, and PostgreSQL's cost is in the statements, not
//! in what they do; here a batch of cards is one statement: the consumers of unknown
//! consumerIds registered, the known ones locked against a delete, the cards inserted, and
//! their trail entries and notifications with them.
//!
//! The batch takes only what Register card would write without a question
//! ([`crate::rules::cards::for_group_commit`]): the card row sealed under its consumer's key,
//! for a consumer still in the life it was read in, or for a consumerId still unknown, with
//! the consumer that registers implicitly. Everything the use case checks, the batch either
//! checks the same way or leaves to the database's unique indexes: a live card under the
//! cardId, or any card of the PAN, makes its row a conflict that is not written, and a
//! consumer registered meanwhile is not written again. A batch that would leave a consumer it
//! registered without its card is rolled back whole, as a refusal writes nothing. A job that
//! is not written answers "not written", and its caller runs the use case alone, which gives
//! the exact answer (a retry, a conflict, a DELETED consumer).

use d1_domain::{OperationKind, OperationStatus, PiSource};
use deadpool_postgres::{Object, Pool};

use super::error::pg;
use super::group::{answer_by_operation, distinct, query, Group, Job};
use crate::rows::NewCard;
use crate::rules::cards::Owner;
use crate::rules::notify::CardEvent;
use crate::rules::trail::{self, Entry};
use crate::{CardNotifications, RegisterCard, StoreResult};

/// The consumer of a new card as the batch statement takes it.
enum Of {
    /// A registered consumer, by row and life.
    Registered { id: i64, generation: i64 },
    /// An unknown consumerId, registered with its card: its wrapped data key and the
    /// operation id of its REGISTER entry.
    Implicit {
        wrapped_key: Vec<u8>,
        register_id: uuid::Uuid,
    },
}

/// A new card with its trail entries and notification, as the batch statement takes them.
struct Card {
    issuer_id: String,
    card_id: String,
    consumer_id: String,
    of: Of,
    product: String,
    state: &'static str,
    pan_mac: Vec<u8>,
    sealed: Vec<u8>,
    last4: String,
    expiry: String,
    scheme: &'static str,
    model: &'static str,
    at: i64,
    operation_id: uuid::Uuid,
    operation: &'static str,
    status: &'static str,
    correlation_id: Option<String>,
    user_id: Option<String>,
    aggregator_id: Option<String>,
    /// The notification's item and the setting other than `all` that takes it.
    item: Option<(String, &'static str)>,
}

impl Card {
    fn consumer_ref(&self) -> Option<i64> {
        match self.of {
            Of::Registered { id, .. } => Some(id),
            Of::Implicit { .. } => None,
        }
    }
}

/// The queue of new cards and its dispatcher.
pub(super) struct Cards {
    group: Group<Card>,
}

impl Cards {
    /// Starts the dispatcher on the runtime the store was opened on.
    pub(super) fn start(pool: Pool) -> Self {
        Self {
            group: Group::start(pool, write),
        }
    }

    /// Writes the card of Register card `cmd` for `owner`, sealed as `sealed`, with its
    /// CARD_REGISTER entry and notification (and for an implicit owner its consumer and
    /// REGISTER entry), at `at`; false when it did not (the caller then runs Register card
    /// alone).
    pub(super) async fn register(
        &self,
        cmd: &RegisterCard,
        owner: &Owner,
        pan_mac: &[u8],
        sealed: &[u8],
        at: i64,
    ) -> bool {
        let of = match owner {
            Owner::Registered(row) => Of::Registered {
                id: row.id,
                generation: row.generation,
            },
            Owner::Implicit(fresh) => Of::Implicit {
                wrapped_key: fresh.wrapped_key.clone(),
                register_id: trail::operation_uuid(),
            },
        };
        // The consumer's columns come from `of`; the row's other columns are Register card's.
        let card = NewCard::registered(cmd, 0, 0, pan_mac, sealed);
        let operation_id = trail::operation_uuid();
        let entry = Entry::card(OperationKind::CardRegister, card.card_id.as_str());
        let hyphenated = operation_id.hyphenated().to_string();
        let event = CardEvent::succeeded(card.issuer, &cmd.consumer_id, &entry, &hyphenated, at)
            .caused_by(&cmd.trail);
        let trail = &cmd.trail;
        self.group
            .submit(Card {
                issuer_id: card.issuer.as_str().to_owned(),
                card_id: card.card_id.as_str().to_owned(),
                consumer_id: cmd.consumer_id.as_str().to_owned(),
                of,
                product: card.product.to_owned(),
                state: card.state.as_str(),
                pan_mac: card.pan_mac.to_vec(),
                sealed: card.sealed.to_vec(),
                last4: card.pan.last4().to_owned(),
                expiry: card.expiry.mmyy().to_string(),
                scheme: card.scheme.as_str(),
                model: card.model.as_str(),
                at,
                operation_id,
                operation: entry.kind.as_str(),
                status: OperationStatus::Successful.as_str(),
                correlation_id: trail.correlation_id.as_ref().map(|c| c.as_str().to_owned()),
                user_id: trail.user_id.as_ref().map(|u| u.as_str().to_owned()),
                aggregator_id: trail.aggregator_id.as_ref().map(|a| a.as_str().to_owned()),
                item: event.queued().map(|(item, by)| (item, by.as_str())),
            })
            .await
            .unwrap_or(false)
    }
}

/// Consumers are inserted, and locked, in key order, so that a batch and a use case that
/// locks one of them wait for each other in one direction only. The trail entries go in as
/// one insert, each REGISTER before its consumer's CARD_REGISTER, as the use case records
/// them. Cards go in in PAN order, but two writers whose cards clash on both the cardId and
/// the PAN indexes can still wait on each other; PostgreSQL ends one of them after its
/// `deadlock_timeout`, and a failed batch's cards run alone, so only requests that conflict
/// anyway pay that wait. The notification goes where the issuer's backend takes it, as
/// [`crate::rules::notify::queue`] decides, with `$27` for `all`. A NULL row in the answer is
/// a consumer registered without its card.
const INSERT: &str = "WITH input AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[],
                              $6::bytea[], $7::uuid[], $8::text[], $9::text[], $10::text[],
                              $11::bytea[], $12::bytea[], $13::text[], $14::text[],
                              $15::text[], $16::text[], $17::bigint[], $18::uuid[],
                              $19::text[], $20::text[], $21::text[], $22::text[],
                              $23::text[], $24::text[], $25::text[])
             AS t(issuer_id, card_id, consumer_id, consumer_ref, generation, wrapped_key,
                  register_id, product, state, pi_source, pan_mac, sealed, last4, expiry,
                  scheme, model, at, operation_id, operation, status, correlation_id, user_id,
                  aggregator_id, item, taken_by)
     ), fresh AS (
         INSERT INTO consumers (issuer_id, consumer_id, state, pi_source, wrapped_key, pi,
                                created_at, updated_at)
         SELECT issuer_id, consumer_id, 'ACTIVE', pi_source, wrapped_key, NULL, at, at
         FROM input WHERE consumer_ref IS NULL ORDER BY issuer_id, consumer_id
         ON CONFLICT (issuer_id, consumer_id) DO NOTHING
         RETURNING id, generation, issuer_id, consumer_id
     ), owners AS MATERIALIZED (
         SELECT c.id, c.generation FROM consumers c JOIN input i ON i.consumer_ref = c.id
         WHERE c.generation = i.generation AND c.state <> 'DELETED'
         ORDER BY c.id FOR SHARE OF c
     ), placed AS (
         SELECT i.*, COALESCE(i.consumer_ref, f.id) AS owner,
                COALESCE(i.generation, f.generation) AS life, f.id AS fresh_id
         FROM input i
         LEFT JOIN fresh f ON i.consumer_ref IS NULL AND f.issuer_id = i.issuer_id
                          AND f.consumer_id = i.consumer_id
         WHERE (i.consumer_ref, i.generation) IN (SELECT id, generation FROM owners)
            OR f.id IS NOT NULL
     ), new AS (
         INSERT INTO cards (issuer_id, card_id, consumer_ref, consumer_generation,
                            card_product_id, state, pan_mac, sealed, last4, expiry, scheme,
                            created_at, updated_at, model)
         SELECT issuer_id, card_id, owner, life, product, state, pan_mac, sealed, last4, expiry,
                scheme, at, at, model
         FROM placed ORDER BY issuer_id, pan_mac
         ON CONFLICT DO NOTHING
         RETURNING issuer_id, card_id, consumer_ref
     ), trail AS (
         INSERT INTO operations (consumer_ref, operation_id, operation, status, start_time,
                                 end_time, card_id, correlation_id, user_id, aggregator_id)
         SELECT consumer_ref, operation_id, operation, status, at, at, card_id,
                correlation_id, user_id, aggregator_id
         FROM (SELECT p.fresh_id AS consumer_ref, p.register_id AS operation_id,
                      CAST($26 AS TEXT) AS operation, p.status, p.at, NULL AS card_id, p.correlation_id,
                      p.user_id, p.aggregator_id, p.issuer_id, p.consumer_id, 0 AS rank
               FROM placed p JOIN new n USING (issuer_id, card_id)
               WHERE p.fresh_id IS NOT NULL
               UNION ALL
               SELECT n.consumer_ref, p.operation_id, p.operation, p.status, p.at, p.card_id,
                      p.correlation_id, p.user_id, p.aggregator_id, p.issuer_id,
                      p.consumer_id, 1
               FROM placed p JOIN new n USING (issuer_id, card_id)) AS entries
         ORDER BY issuer_id, consumer_id, rank
         RETURNING operation_id
     ), queued AS (
         INSERT INTO notifications (issuer_id, card_id, operation_id, item, correlation_id,
                                    state, next_attempt_at, created_at)
         SELECT p.issuer_id, p.card_id, p.operation_id, p.item, p.correlation_id, 'PENDING',
                p.at, p.at
         FROM new JOIN placed p USING (issuer_id, card_id)
         JOIN issuer_backends b ON b.issuer_id = p.issuer_id
         WHERE p.item IS NOT NULL AND b.card_notifications IN ($27, p.taken_by)
     )
     SELECT operation_id FROM trail
     UNION ALL
     SELECT NULL FROM fresh f WHERE NOT EXISTS (SELECT 1 FROM new n WHERE n.consumer_ref = f.id)";

/// Writes one batch and answers each of its jobs.
async fn write(mut client: Object, batch: Vec<Job<Card>>) {
    // One job per cardId, per PAN and per new consumerId: the rest are conflicts (or
    // retries) for the use case.
    let unique = distinct(batch, |a, b| {
        a.issuer_id == b.issuer_id
            && (a.card_id == b.card_id
                || a.pan_mac == b.pan_mac
                || (a.consumer_id == b.consumer_id
                    && (a.consumer_ref().is_none() || b.consumer_ref().is_none())))
    });
    if unique.is_empty() {
        return;
    }
    let cards: Vec<&Card> = unique.iter().map(|j| &j.payload).collect();
    let text = |f: fn(&Card) -> &str| cards.iter().map(|c| f(c)).collect::<Vec<&str>>();
    let optional =
        |f: fn(&Card) -> Option<&str>| cards.iter().map(|c| f(c)).collect::<Vec<Option<&str>>>();
    let int = |f: fn(&Card) -> Option<i64>| cards.iter().map(|c| f(c)).collect::<Vec<_>>();
    let bytes = |f: fn(&Card) -> &[u8]| cards.iter().map(|c| f(c)).collect::<Vec<&[u8]>>();
    let uuid = |f: fn(&Card) -> Option<uuid::Uuid>| cards.iter().map(|c| f(c)).collect::<Vec<_>>();
    let consumer = (
        text(|c| &c.issuer_id),
        text(|c| &c.card_id),
        text(|c| &c.consumer_id),
        int(Card::consumer_ref),
        int(|c| match c.of {
            Of::Registered { generation, .. } => Some(generation),
            Of::Implicit { .. } => None,
        }),
        cards
            .iter()
            .map(|c| match &c.of {
                Of::Implicit { wrapped_key, .. } => Some(wrapped_key.as_slice()),
                Of::Registered { .. } => None,
            })
            .collect::<Vec<Option<&[u8]>>>(),
        uuid(|c| match c.of {
            Of::Implicit { register_id, .. } => Some(register_id),
            Of::Registered { .. } => None,
        }),
    );
    let card = (
        text(|c| &c.product),
        text(|c| c.state),
        text(|_| PiSource::Issuer.as_str()),
        bytes(|c| &c.pan_mac),
        bytes(|c| &c.sealed),
        text(|c| &c.last4),
        text(|c| &c.expiry),
        text(|c| c.scheme),
        text(|c| c.model),
        int(|c| Some(c.at)),
    );
    let trail = (
        uuid(|c| Some(c.operation_id)),
        text(|c| c.operation),
        text(|c| c.status),
        optional(|c| c.correlation_id.as_deref()),
        optional(|c| c.user_id.as_deref()),
        optional(|c| c.aggregator_id.as_deref()),
        optional(|c| c.item.as_ref().map(|(item, _)| item.as_str())),
        optional(|c| c.item.as_ref().map(|(_, by)| *by)),
    );
    let (register, all) = (
        OperationKind::Register.as_str(),
        CardNotifications::All.as_str(),
    );
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 27] = [
        &consumer.0,
        &consumer.1,
        &consumer.2,
        &consumer.3,
        &consumer.4,
        &consumer.5,
        &consumer.6,
        &card.0,
        &card.1,
        &card.2,
        &card.3,
        &card.4,
        &card.5,
        &card.6,
        &card.7,
        &card.8,
        &card.9,
        &trail.0,
        &trail.1,
        &trail.2,
        &trail.3,
        &trail.4,
        &trail.5,
        &trail.6,
        &trail.7,
        &register,
        &all,
    ];
    let registers = cards.iter().any(|c| c.consumer_ref().is_none());
    let written = if registers {
        all_or_nothing(&mut client, &params).await
    } else {
        query(&client, INSERT, &params).await
    };
    answer_by_operation(unique, written, |c| c.operation_id, "cards");
}

/// The batch in a transaction of its own, rolled back whole (answering no row) if it would
/// leave a consumer it registered without its card.
async fn all_or_nothing(
    client: &mut Object,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> StoreResult<Vec<tokio_postgres::Row>> {
    let tx = client.transaction().await.map_err(pg)?;
    let statement = tx.prepare_cached(INSERT).await.map_err(pg)?;
    let rows = tx.query(&statement, params).await.map_err(pg)?;
    let orphaned = rows
        .iter()
        .any(|r| !matches!(r.try_get::<_, Option<uuid::Uuid>>(0), Ok(Some(_))));
    if orphaned {
        tx.rollback().await.map_err(pg)?;
        return Ok(Vec::new());
    }
    tx.commit().await.map_err(pg)?;
    Ok(rows)
}

#[cfg(all(test, pg_suite))]
#[path = "card_batch_tests.rs"]
mod tests;
