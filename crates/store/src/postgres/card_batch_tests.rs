//! The group commit of new cards on PostgreSQL: what a batch writes, and what it leaves to
//! the use case.

use d1_domain::card::{CardId, CardProductId, Expiry, Pan};
use d1_domain::{ConsumerId, IssuerId};

use super::super::Postgres;
use crate::{CardData, CardOutcome, RegisterCard, RegisterConsumer, TrailContext};

async fn store() -> (Postgres, tempfile::TempDir) {
    super::super::scratch("d1t_cards_").await
}

fn card(card: &str, consumer: &str, pan: &str) -> RegisterCard {
    RegisterCard {
        issuer_id: IssuerId::parse("BANK000001").unwrap(),
        card_id: CardId::parse(card).unwrap(),
        consumer_id: ConsumerId::parse(consumer).unwrap().0,
        card_product_id: CardProductId::parse("p1").unwrap(),
        data: CardData {
            pan: Pan::parse(pan, "pan").unwrap(),
            expiry: Expiry::months_after(time::OffsetDateTime::now_utc().date(), 12),
            holder: None,
        },
        state: None,
        trail: TrailContext::default(),
    }
}

async fn in_batch(store: &Postgres, cmd: &RegisterCard) -> Option<CardOutcome> {
    let mac = store.vault.pan_mac(&cmd.issuer_id, &cmd.data.pan);
    store.register_card_in_batch(cmd, &mac).await
}

async fn column(store: &Postgres, sql: &str) -> Vec<String> {
    let client = store.pool.get().await.unwrap();
    let rows = client.query(sql, &[]).await.unwrap();
    rows.iter().map(|r| r.try_get(0).unwrap()).collect()
}

#[tokio::test]
async fn a_card_of_a_registered_consumer_is_written_in_a_batch_once() {
    let (store, _dir) = store().await;
    let cmd = card("k1", "c1", "4111111111111111");
    let registration = RegisterConsumer {
        issuer_id: cmd.issuer_id.clone(),
        consumer_id: cmd.consumer_id.clone(),
        pi: None,
        trail: TrailContext::default(),
    };
    let fresh = store
        .vault
        .fresh_consumer(&cmd.issuer_id, &cmd.consumer_id, None)
        .unwrap();
    assert!(store.create_in_batch(&registration, &fresh).await);
    assert_eq!(
        in_batch(&store, &cmd).await,
        Some(CardOutcome::Registered {
            implicit_consumer: false
        })
    );
    assert_eq!(
        in_batch(&store, &cmd).await,
        None,
        "again, the card is the use case's to answer"
    );
    assert_eq!(column(&store, "SELECT card_id FROM cards").await, ["k1"]);
    let trail = "SELECT operation FROM operations ORDER BY id";
    assert_eq!(column(&store, trail).await, ["REGISTER", "CARD_REGISTER"]);
}

#[tokio::test]
async fn a_card_of_an_unknown_consumer_registers_it_with_the_card_or_writes_nothing() {
    let (store, _dir) = store().await;
    assert_eq!(
        in_batch(&store, &card("k1", "c1", "4111111111111111")).await,
        Some(CardOutcome::Registered {
            implicit_consumer: true
        })
    );
    let trail = "SELECT operation || ' ' || coalesce(card_id, '-') FROM operations ORDER BY id";
    assert_eq!(
        column(&store, trail).await,
        ["REGISTER -", "CARD_REGISTER k1"],
        "the consumer's REGISTER entry comes first"
    );
    let consumers = "SELECT consumer_id || ' ' || pi_source FROM consumers";
    assert_eq!(column(&store, consumers).await, ["c1 ISSUER"]);
    // The PAN is taken: the consumer would be left without its card, so nothing is written.
    assert_eq!(
        in_batch(&store, &card("k2", "c2", "4111111111111111")).await,
        None
    );
    assert_eq!(column(&store, consumers).await, ["c1 ISSUER"]);
    assert_eq!(column(&store, trail).await.len(), 2);
}

/// Register card `cmd` in the group commit for the consumer as `row` read it.
async fn as_read(store: &Postgres, cmd: &RegisterCard, row: crate::rows::ConsumerRow) -> bool {
    let mac = store.vault.pan_mac(&cmd.issuer_id, &cmd.data.pan);
    let (owner, sealed) = crate::rules::cards::for_group_commit(&store.vault, Some(row), cmd)
        .unwrap()
        .unwrap();
    store
        .cards
        .register(cmd, &owner, &mac, &sealed, crate::now_ms())
        .await
}

#[tokio::test]
async fn a_card_read_in_its_consumers_earlier_life_is_not_written_beside_one_of_the_current() {
    let (store, _dir) = store().await;
    let first = card("k1", "c1", "4111111111111111");
    assert!(in_batch(&store, &first).await.is_some());
    let read = || store.consumers.find(&first.issuer_id, &first.consumer_id);
    let earlier = read().await.unwrap().unwrap();
    // The consumerId's next life begins, as a delete and a registration again begin it.
    let client = store.pool.get().await.unwrap();
    let sql = "UPDATE consumers SET generation = generation + 1";
    client.execute(sql, &[]).await.unwrap();
    let current = read().await.unwrap().unwrap();
    // Together, so that both are likely to share a batch.
    let (old, new) = (
        card("k2", "c1", "4111111111111129"),
        card("k3", "c1", "4111111111111137"),
    );
    let (stale, fresh) = tokio::join!(
        as_read(&store, &old, earlier),
        as_read(&store, &new, current)
    );
    assert!(
        !stale,
        "a card of an earlier life is the use case's to answer"
    );
    assert!(fresh);
    let cards = "SELECT card_id || ' ' || consumer_generation FROM cards ORDER BY card_id";
    assert_eq!(column(&store, cards).await, ["k1 1", "k3 2"]);
}
