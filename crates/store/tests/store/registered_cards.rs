//! Cards of registered consumers, the path PostgreSQL writes many to a statement: racing
//! writers, a consumer deleted meanwhile, and the entry and notification of each card.

use super::*;
use d1_domain::OperationKind;
use d1_store::{CardNotifications, CardOutcome, CardState};

const PANS: [&str; 4] = [
    "4111111111111111",
    "4111111111111129",
    "4111111111111137",
    "4111111111111145",
];

/// The CARD_REGISTER entries of a consumer's trail, by cardId.
async fn registered_entries(store: &dyn Store, id: &str) -> Vec<String> {
    super::trail::everything(store, id)
        .await
        .into_iter()
        .filter(|o| o.operation == OperationKind::CardRegister)
        .filter_map(|o| o.card_id)
        .collect()
}

/// Every notification item queued, as (operation, cardId, consumerId).
async fn queued(store: &dyn Store) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    loop {
        let claim = store.claim_notifications(60_000, 100).await.unwrap();
        if claim.items.is_empty() {
            return found;
        }
        for n in &claim.items {
            let item: serde_json::Value = serde_json::from_str(&n.item).unwrap();
            let text = |k: &str| item[k].as_str().unwrap_or_default().to_owned();
            found.push((text("operation"), text("cardId"), text("consumerId")));
        }
        store
            .settle_notifications(claim.settlement())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn racing_cards_of_registered_consumers_are_written_once_each_with_entry_and_item() {
    let f = fresh().await;
    super::click_to_pay::onboard(f.store.as_ref(), CardNotifications::All).await;
    for i in 0..16 {
        let cmd = register(&format!("c{i}"), Some(pi("Ann")));
        f.store.register_consumer(cmd).await.unwrap();
    }
    // 16 registered consumers race for 4 cardIds and 4 PANs, mixed so that both indexes
    // clash, within a batch and across batches.
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = Arc::clone(&f.store);
            let cmd = super::cards::card(&format!("k{}", i % 4), &format!("c{i}"), PANS[i / 4]);
            tokio::spawn(async move { store.register_card(cmd).await.unwrap() })
        })
        .collect();
    let mut registered = 0;
    for task in tasks {
        match task.await.unwrap() {
            CardOutcome::Registered { implicit_consumer } => {
                assert!(!implicit_consumer, "every consumer was registered");
                registered += 1;
            }
            CardOutcome::Conflict(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!((1..=4).contains(&registered), "{registered} registered");
    let (mut live, mut entries) = (Vec::new(), Vec::new());
    for i in 0..16 {
        let id = format!("c{i}");
        let cards = f.store.cards(&issuer(), &consumer(&id)).await.unwrap();
        for card in cards.unwrap() {
            assert_eq!(card.state, CardState::Active);
            live.push((card.card_id.as_str().to_owned(), id.clone()));
        }
        for card in registered_entries(f.store.as_ref(), &id).await {
            entries.push((card, id.clone()));
        }
    }
    live.sort();
    entries.sort();
    assert_eq!(
        live.len(),
        registered,
        "one live card per answer Registered"
    );
    assert_eq!(
        entries, live,
        "one CARD_REGISTER entry per card, on its consumer"
    );
    let mut items: Vec<(String, String)> = queued(f.store.as_ref())
        .await
        .into_iter()
        .map(|(operation, card, consumer)| {
            assert_eq!(operation, "REGISTER", "as D1 names a card registration");
            (card, consumer)
        })
        .collect();
    items.sort();
    assert_eq!(items, live, "one notification item per card");
}

#[tokio::test]
async fn a_card_of_a_registered_consumer_again_is_a_retry_and_another_pan_a_conflict() {
    let f = fresh().await;
    f.store
        .register_consumer(register("c1", Some(pi("Ann"))))
        .await
        .unwrap();
    let first = super::cards::card("k1", "c1", PANS[0]);
    assert_eq!(
        f.store.register_card(first.clone()).await.unwrap(),
        CardOutcome::Registered {
            implicit_consumer: false
        }
    );
    assert_eq!(
        f.store.register_card(first).await.unwrap(),
        CardOutcome::Retried
    );
    assert!(matches!(
        f.store
            .register_card(super::cards::card("k2", "c1", PANS[0]))
            .await
            .unwrap(),
        CardOutcome::Conflict(why) if why.contains("PAN")
    ));
    assert!(matches!(
        f.store
            .register_card(super::cards::card("k1", "c1", PANS[1]))
            .await
            .unwrap(),
        CardOutcome::Conflict(why) if why.contains("cardId")
    ));
    assert_eq!(registered_entries(f.store.as_ref(), "c1").await, ["k1"]);
}

#[tokio::test]
async fn cards_racing_the_delete_of_their_consumer_are_refused_or_deleted_with_it() {
    let f = fresh().await;
    f.store
        .register_consumer(register("c1", Some(pi("Ann"))))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let store = Arc::clone(&f.store);
            let cmd = super::cards::card(&format!("k{i}"), "c1", PANS[i]);
            tokio::spawn(async move { store.register_card(cmd).await.unwrap() })
        })
        .collect();
    f.store.delete_consumer(delete("c1")).await.unwrap();
    for task in tasks {
        let outcome = task.await.unwrap();
        assert!(
            matches!(
                outcome,
                CardOutcome::Registered { .. } | CardOutcome::ConsumerDeleted
            ),
            "{outcome:?}"
        );
    }
    // Whichever came first, no card of the consumer outlives its delete.
    for i in 0..4 {
        let card = d1_domain::card::CardId::parse(&format!("k{i}")).unwrap();
        if let Some(view) = f.store.card(&issuer(), &card).await.unwrap() {
            assert_eq!(view.state, CardState::Deleted, "k{i}");
        }
    }
}
