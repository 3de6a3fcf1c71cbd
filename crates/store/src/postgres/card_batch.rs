//! Group commit for new cards of registered consumers ([`super::group`]). A card is eight
//! statements when it runs alone, and PostgreSQL's cost is in the statements, not in what
//! they do; here a batch of cards is one statement: the consumers locked against a delete,
//! the cards inserted, and their trail entries and notifications with them.
//!
//! The batch takes only what Register card would write without a question: the card row
//! sealed under its consumer's key, for a consumer still in the life it was read in
//! ([`crate::rules::cards::sealed_for_registered`]). Everything the use case checks, the batch either
//! checks the same way or leaves to the database's unique indexes: a live card under the
//! cardId, or any card of the PAN, makes its row a conflict that is not written. A job that
//! is not written answers "not written", and its caller runs the use case alone, which
//! gives the exact answer (a retry, a conflict, a DELETED consumer).

use d1_domain::{OperationKind, OperationStatus};
use deadpool_postgres::{Object, Pool};

use super::group::{distinct, query, Group, Job};
use crate::rows::NewCard;
use crate::rules::notify::CardEvent;
use crate::rules::trail::{self, Entry};
use crate::{CardNotifications, RegisterCard};

/// A new card with its trail entry and notification, as the batch statement takes them.
struct Card {
    issuer_id: String,
    card_id: String,
    consumer_ref: i64,
    generation: i64,
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

/// The queue of new cards and its dispatcher.
pub(super) struct Cards {
    group: Group<Card>,
}

impl Cards {
    /// Starts the dispatcher on the runtime the store was opened on.
    pub(super) fn start(pool: Pool) -> Self {
        Self {
            group: Group::start(
                pool,
                |client, batch| async move { write(&client, batch).await },
            ),
        }
    }

    /// Writes `card` of Register card `cmd` with its CARD_REGISTER entry and notification,
    /// at `at`; false when it did not (the caller then runs Register card alone).
    pub(super) async fn register(&self, card: &NewCard<'_>, cmd: &RegisterCard, at: i64) -> bool {
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
                consumer_ref: card.consumer_ref,
                generation: card.generation,
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

/// The consumers are locked in id order, so that a batch and a use case that locks one of
/// them wait for each other in one direction only. The notification goes where the issuer's
/// backend takes it, as [`crate::rules::notify::queue`] decides with `$22` for `all`.
const INSERT: &str = "WITH input AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[],
                              $6::text[], $7::bytea[], $8::bytea[], $9::text[], $10::text[],
                              $11::text[], $12::text[], $13::bigint[], $14::uuid[],
                              $15::text[], $16::text[], $17::text[], $18::text[],
                              $19::text[], $20::text[], $21::text[])
             AS t(issuer_id, card_id, consumer_ref, generation, product, state, pan_mac,
                  sealed, last4, expiry, scheme, model, at, operation_id, operation, status,
                  correlation_id, user_id, aggregator_id, item, taken_by)
     ), owners AS MATERIALIZED (
         SELECT c.id FROM consumers c JOIN input i ON i.consumer_ref = c.id
         WHERE c.generation = i.generation AND c.state <> 'DELETED'
         ORDER BY c.id FOR SHARE OF c
     ), new AS (
         INSERT INTO cards (issuer_id, card_id, consumer_ref, consumer_generation,
                            card_product_id, state, pan_mac, sealed, last4, expiry, scheme,
                            created_at, updated_at, model)
         SELECT issuer_id, card_id, consumer_ref, generation, product, state, pan_mac, sealed,
                last4, expiry, scheme, at, at, model
         FROM input WHERE consumer_ref IN (SELECT id FROM owners)
         ORDER BY issuer_id, pan_mac
         ON CONFLICT DO NOTHING
         RETURNING issuer_id, card_id
     ), trail AS (
         INSERT INTO operations (consumer_ref, operation_id, operation, status, start_time,
                                 end_time, card_id, correlation_id, user_id, aggregator_id)
         SELECT i.consumer_ref, i.operation_id, i.operation, i.status, i.at, i.at, i.card_id,
                i.correlation_id, i.user_id, i.aggregator_id
         FROM new JOIN input i USING (issuer_id, card_id)
         RETURNING operation_id
     ), queued AS (
         INSERT INTO notifications (issuer_id, card_id, operation_id, item, correlation_id,
                                    state, next_attempt_at, created_at)
         SELECT i.issuer_id, i.card_id, i.operation_id, i.item, i.correlation_id, 'PENDING',
                i.at, i.at
         FROM new JOIN input i USING (issuer_id, card_id)
         JOIN issuer_backends b ON b.issuer_id = i.issuer_id
         WHERE i.item IS NOT NULL AND b.card_notifications IN ($22, i.taken_by)
     )
     SELECT operation_id FROM trail";

/// Writes one batch and answers each of its jobs.
async fn write(client: &Object, batch: Vec<Job<Card>>) {
    // One job per cardId and per PAN: the rest are conflicts (or retries) for the use case.
    let unique = distinct(batch, |a, b| {
        a.issuer_id == b.issuer_id && (a.card_id == b.card_id || a.pan_mac == b.pan_mac)
    });
    if unique.is_empty() {
        return;
    }
    let cards: Vec<&Card> = unique.iter().map(|j| &j.payload).collect();
    let text = |f: fn(&Card) -> &str| cards.iter().map(|c| f(c)).collect::<Vec<&str>>();
    let optional =
        |f: fn(&Card) -> Option<&str>| cards.iter().map(|c| f(c)).collect::<Vec<Option<&str>>>();
    let int = |f: fn(&Card) -> i64| cards.iter().map(|c| f(c)).collect::<Vec<i64>>();
    let bytes = |f: fn(&Card) -> &[u8]| cards.iter().map(|c| f(c)).collect::<Vec<&[u8]>>();
    let columns = (
        text(|c| &c.issuer_id),
        text(|c| &c.card_id),
        int(|c| c.consumer_ref),
        int(|c| c.generation),
        text(|c| &c.product),
        text(|c| c.state),
        bytes(|c| &c.pan_mac),
        bytes(|c| &c.sealed),
        text(|c| &c.last4),
        text(|c| &c.expiry),
        text(|c| c.scheme),
        text(|c| c.model),
        int(|c| c.at),
    );
    let operations: Vec<uuid::Uuid> = cards.iter().map(|c| c.operation_id).collect();
    let trail = (
        text(|c| c.operation),
        text(|c| c.status),
        optional(|c| c.correlation_id.as_deref()),
        optional(|c| c.user_id.as_deref()),
        optional(|c| c.aggregator_id.as_deref()),
        optional(|c| c.item.as_ref().map(|(item, _)| item.as_str())),
        optional(|c| c.item.as_ref().map(|(_, by)| *by)),
    );
    let all = CardNotifications::All.as_str();
    let written = query(
        client,
        INSERT,
        &[
            &columns.0,
            &columns.1,
            &columns.2,
            &columns.3,
            &columns.4,
            &columns.5,
            &columns.6,
            &columns.7,
            &columns.8,
            &columns.9,
            &columns.10,
            &columns.11,
            &columns.12,
            &operations,
            &trail.0,
            &trail.1,
            &trail.2,
            &trail.3,
            &trail.4,
            &trail.5,
            &trail.6,
            &all,
        ],
    )
    .await;
    let registered: std::collections::HashSet<uuid::Uuid> = match written {
        Ok(rows) => rows
            .iter()
            .filter_map(|r| r.try_get::<_, uuid::Uuid>(0).ok())
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "a batch of cards failed; each is tried alone");
            std::collections::HashSet::new()
        }
    };
    for job in unique {
        let id = job.payload.operation_id;
        job.answer(registered.contains(&id));
    }
}

#[cfg(all(test, pg_suite))]
mod tests {
    use d1_domain::card::{CardId, CardProductId, Expiry, Pan};
    use d1_domain::{ConsumerId, IssuerId};

    use crate::{CardData, RegisterConsumer, TrailContext};

    #[tokio::test]
    async fn a_card_of_a_registered_consumer_is_written_in_a_batch_once() {
        let base = std::env::var("D1_TEST_DATABASE_URL").unwrap();
        let url = d1_scratch::fresh(&base, "d1t_cards_").await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let options = crate::StoreOptions {
            database_url: url.clone(),
            kek_file: dir.path().join("kek.key"),
            durability: crate::Durability::Full,
            read_connections: 1,
            pool: super::super::PoolOptions::default(),
        };
        let store = super::super::Postgres::open(&url, &options).await.unwrap();
        let issuer = IssuerId::parse("BANK000001").unwrap();
        let (consumer, _) = ConsumerId::parse("c1").unwrap();
        let registration = RegisterConsumer {
            issuer_id: issuer.clone(),
            consumer_id: consumer.clone(),
            pi: None,
            trail: TrailContext::default(),
        };
        let fresh = store
            .vault
            .fresh_consumer(&issuer, &consumer, None)
            .unwrap();
        assert!(store.create_in_batch(&registration, &fresh).await);
        let pan = Pan::parse("4111111111111111", "pan").unwrap();
        let mac = store.vault.pan_mac(&issuer, &pan);
        let card = crate::RegisterCard {
            issuer_id: issuer,
            card_id: CardId::parse("k1").unwrap(),
            consumer_id: consumer,
            card_product_id: CardProductId::parse("p1").unwrap(),
            data: CardData {
                pan,
                expiry: Expiry::months_after(time::OffsetDateTime::now_utc().date(), 12),
                holder: None,
            },
            state: None,
            trail: TrailContext::default(),
        };
        assert!(store.register_card_in_batch(&card, &mac).await);
        assert!(
            !store.register_card_in_batch(&card, &mac).await,
            "again, the card is the use case's to answer"
        );
        let client = store.pool.get().await.unwrap();
        let count = |sql: &'static str| {
            let client = &client;
            async move {
                let n: i64 = client
                    .query_one(sql, &[])
                    .await
                    .unwrap()
                    .try_get(0)
                    .unwrap();
                n
            }
        };
        assert_eq!(count("SELECT count(*) FROM cards").await, 1);
        assert_eq!(
            count("SELECT count(*) FROM operations WHERE operation = 'CARD_REGISTER'").await,
            1
        );
    }
}
