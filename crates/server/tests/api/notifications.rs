//! Notifications of every card operation (contract section 9a), received by a real loopback
//! issuer backend: one item per operation with its trail entry's operationId, batches of at
//! most the issuer's batch size, a card's items in order, the `x-correlation-id` of the
//! request behind a call's first item, retries after a 500, and the `card_notifications`
//! setting.

use std::collections::HashMap;
use std::time::Duration;

use d1_domain::card::Scheme;
use d1_store::CardNotifications;
use serde_json::{json, Value};

use crate::fake_backend::{set_backend, set_backend_notifying, Answer, FakeBackend};
use crate::harness::{
    boot_tweaked, boot_with, encrypt_for, full_pi, future_exp, spawn_with, test_pan,
    IssuerSettings, TestApp, ISSUER,
};

async fn setup(click_to_pay: bool) -> (TestApp, String, FakeBackend) {
    let app = spawn_with(IssuerSettings {
        click_to_pay,
        ..IssuerSettings::default()
    })
    .await;
    app.add_product("visa-classic", Scheme::Visa, "411111")
        .await;
    let token = app.token().await;
    let fake = FakeBackend::start(Answer::Status(404)).await;
    (app, token, fake)
}

/// Sends `body` with `correlation` as its `x-correlation-id`, if any.
async fn send(
    app: &TestApp,
    method: reqwest::Method,
    url: &str,
    token: &str,
    body: Option<&Value>,
    correlation: Option<&str>,
) -> reqwest::Response {
    let mut request = app.client.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    if let Some(id) = correlation {
        request = request.header("x-correlation-id", id);
    }
    request.send().await.unwrap()
}

async fn card_body(app: &TestApp, consumer: &str, n: u64, state: Option<&str>) -> Value {
    let jwe = encrypt_for(
        app,
        &json!({"pan": test_pan(n), "exp": future_exp()}),
        "A256GCM",
    )
    .await;
    let mut body =
        json!({"consumerId": consumer, "cardProductId": "visa-classic", "encryptedData": jwe});
    if let Some(state) = state {
        body["state"] = json!(state);
    }
    body
}

/// Register card, expecting `status`.
async fn register_card(
    app: &TestApp,
    token: &str,
    (consumer, card, n): (&str, &str, u64),
    state: Option<&str>,
    correlation: Option<&str>,
    status: u16,
) {
    let body = card_body(app, consumer, n, state).await;
    let response = send(
        app,
        reqwest::Method::PUT,
        &app.card_url(card),
        token,
        Some(&body),
        correlation,
    )
    .await;
    assert_eq!(
        response.status(),
        status,
        "{}",
        response.text().await.unwrap()
    );
}

async fn delete_consumer(app: &TestApp, token: &str, consumer: &str, correlation: Option<&str>) {
    let url = app.consumer_url(consumer) + "/operations/delete";
    let response = send(app, reqwest::Method::POST, &url, token, None, correlation).await;
    assert_eq!(response.status(), 204);
}

/// A consumer's trail entries by operationId.
async fn trail(app: &TestApp, token: &str, consumer: &str) -> HashMap<String, Value> {
    let body: Value = app
        .get(&(app.consumer_url(consumer) + "/operations"), token)
        .await
        .json()
        .await
        .unwrap();
    body["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["operationId"].as_str().unwrap().to_owned(), o.clone()))
        .collect()
}

/// The trail kind each notified operation is recorded as.
fn trail_kind(operation: &str) -> &'static str {
    match operation {
        "REGISTER" => "CARD_REGISTER",
        "CREATE" => "CARD_CREATE",
        "DELETE" => "CARD_DELETE",
        "CLICK_TO_PAY_ENROLMENT" => "CLICK_TO_PAY_ENROLMENT",
        other => panic!("unexpected operation {other}"),
    }
}

/// The (operation, cardId) of each item, in arrival order.
fn summary(items: &[Value]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|i| {
            (
                i["operation"].as_str().unwrap().to_owned(),
                i["cardId"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn position(items: &[(String, String)], operation: &str, card: &str) -> usize {
    items
        .iter()
        .position(|(o, c)| o == operation && c == card)
        .unwrap_or_else(|| panic!("no {operation} of {card} in {items:?}"))
}

#[tokio::test]
async fn each_card_operation_is_notified_once_as_its_trail_entry_says() {
    let (app, token, fake) = setup(false).await;
    set_backend(&app, &fake.url, false, 0).await;
    // Register card, with an implicit consumer registration; its identical retry and a
    // refused registration are not notified.
    register_card(&app, &token, ("c1", "card-1", 1), None, Some("corr-1"), 204).await;
    register_card(
        &app,
        &token,
        ("c1", "card-1", 1),
        None,
        Some("corr-1b"),
        204,
    )
    .await;
    register_card(&app, &token, ("c1", "card-x", 1), None, None, 409).await;
    // Register card for a registered consumer, and Create card.
    app.register(&token, "c2", Value::Null).await;
    register_card(&app, &token, ("c2", "card-2", 2), None, None, 204).await;
    let created = app
        .post_json(
            &app.url(&format!("/banking/v2/issuers/{ISSUER}/cards")),
            &token,
            &json!({"consumerId": "c2", "cardProductId": "visa-classic"}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let created = created["cardId"].as_str().unwrap().to_owned();
    // v1 Register consumer with cards: one item per card; the delete cascade likewise.
    let mut cards = Vec::new();
    for (id, n) in [("v1-a", 3), ("v1-b", 4)] {
        let mut body = card_body(&app, "c3", n, None).await;
        body.as_object_mut().unwrap().remove("consumerId");
        body["cardId"] = json!(id);
        cards.push(body);
    }
    let v1 = app.url(&format!("/banking/v1/issuers/{ISSUER}/consumers/c3/cards"));
    let response = app.put_json(&v1, &token, &json!({"cards": cards})).await;
    assert_eq!(response.status(), 204, "{}", response.text().await.unwrap());
    delete_consumer(&app, &token, "c3", Some("corr-del")).await;

    fake.wait_for_items(None, 7).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let items = fake.items(None);
    let mut seen = summary(&items);
    let order = seen.clone();
    seen.sort();
    let mut expected: Vec<(String, String)> = [
        ("REGISTER", "card-1"),
        ("REGISTER", "card-2"),
        ("CREATE", created.as_str()),
        ("REGISTER", "v1-a"),
        ("REGISTER", "v1-b"),
        ("DELETE", "v1-a"),
        ("DELETE", "v1-b"),
    ]
    .iter()
    .map(|(o, c)| ((*o).to_owned(), (*c).to_owned()))
    .collect();
    expected.sort();
    assert_eq!(seen, expected, "one item per operation, no more");
    for card in ["v1-a", "v1-b"] {
        assert!(position(&order, "REGISTER", card) < position(&order, "DELETE", card));
    }

    let mut trails = HashMap::new();
    for consumer in ["c1", "c2", "c3"] {
        trails.insert(consumer, trail(&app, &token, consumer).await);
    }
    for item in &items {
        let consumer = item["consumerId"].as_str().unwrap();
        let entry = &trails[consumer][item["operationId"].as_str().unwrap()];
        assert_eq!(
            entry["operation"],
            trail_kind(item["operation"].as_str().unwrap())
        );
        assert_eq!(entry["cardId"], item["cardId"]);
        assert_eq!(item["status"], "SUCCESSFUL");
        assert_eq!(item["startTime"], item["endTime"], "{item}");
        assert!(item["startTime"].as_str().unwrap().ends_with('Z'));
        assert!(item.get("reasonCode").is_none());
    }
    let consumers: Vec<&str> = items
        .iter()
        .map(|i| i["consumerId"].as_str().unwrap())
        .collect();
    assert!(consumers.contains(&"c1") && consumers.contains(&"c2") && consumers.contains(&"c3"));

    // One item per call (batch size 1), each with the correlation id of its request, or a
    // generated one.
    let calls = fake.notifications();
    let ids = fake.notification_correlation_ids();
    for (call, id) in calls.iter().zip(&ids) {
        assert_eq!(call["operations"].as_array().unwrap().len(), 1);
        let item = &call["operations"][0];
        let id = id.as_deref().expect("every call has an x-correlation-id");
        match (
            item["operation"].as_str().unwrap(),
            item["cardId"].as_str().unwrap(),
        ) {
            ("REGISTER", "card-1") => assert_eq!(id, "corr-1"),
            ("DELETE", _) => assert_eq!(id, "corr-del"),
            _ => assert!(!id.is_empty() && !id.starts_with("corr")),
        }
    }
}

#[tokio::test]
async fn calls_carry_at_most_the_batch_size_and_each_cards_items_keep_their_order() {
    let (app, token, fake) = setup(false).await;
    set_backend_notifying(&app, &fake.url, false, 0, CardNotifications::All, 3).await;
    // Without its outbox the node only queues, so that delivery finds every item waiting.
    let (place, issuer, other) = app.stop().await;
    let settings = IssuerSettings::default();
    let app = boot_with(place, issuer, other, false, settings, false).await;
    for n in 1..=4u64 {
        let (card, corr) = (format!("card-{n}"), format!("corr-{n}"));
        register_card(&app, &token, ("c1", &card, n), None, Some(&corr), 204).await;
    }
    register_card(
        &app,
        &token,
        ("c1", "card-1", 1),
        Some("INACTIVE"),
        Some("corr-refresh"),
        204,
    )
    .await;
    delete_consumer(&app, &token, "c1", Some("corr-del")).await;
    let entries = trail(&app, &token, "c1").await;
    let (place, issuer, other) = app.stop().await;
    assert!(fake.notifications().is_empty(), "nothing was sent yet");

    let _app = boot_with(place, issuer, other, false, settings, true).await;
    let items = fake.wait_for_items(None, 9).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.items(None).len(), 9, "{items:?}");
    let calls = fake.notifications();
    let sizes: Vec<usize> = calls
        .iter()
        .map(|c| c["operations"].as_array().unwrap().len())
        .collect();
    assert!(sizes.iter().all(|&n| (1..=3).contains(&n)), "{sizes:?}");
    assert!(
        sizes.contains(&3),
        "items waiting together share a call: {sizes:?}"
    );
    let order = summary(&items);
    let card_1: Vec<&str> = order
        .iter()
        .filter(|(_, c)| c == "card-1")
        .map(|(o, _)| o.as_str())
        .collect();
    assert_eq!(card_1, ["REGISTER", "REGISTER", "DELETE"]);
    let refreshed = items
        .iter()
        .filter(|i| i["cardId"] == "card-1")
        .nth(1)
        .unwrap();
    assert_eq!(
        entries[refreshed["operationId"].as_str().unwrap()]["correlationId"],
        "corr-refresh"
    );
    for n in 2..=4 {
        let card = format!("card-{n}");
        assert!(position(&order, "REGISTER", &card) < position(&order, "DELETE", &card));
    }
    // Each call's x-correlation-id is that of the request behind its first item.
    for (call, id) in calls.iter().zip(fake.notification_correlation_ids()) {
        let first = call["operations"][0]["operationId"].as_str().unwrap();
        assert_eq!(
            Some(entries[first]["correlationId"].as_str().unwrap()),
            id.as_deref(),
            "{call}"
        );
    }
}

#[tokio::test]
async fn a_cards_backlog_drains_at_the_pace_of_its_calls_not_of_the_poll() {
    let (app, token, fake) = setup(false).await;
    set_backend_notifying(&app, &fake.url, false, 0, CardNotifications::All, 5).await;
    let (place, issuer, other) = app.stop().await;
    let settings = IssuerSettings::default();
    let app = boot_with(place, issuer, other, false, settings, false).await;
    register_card(&app, &token, ("c1", "card-1", 1), None, None, 204).await;
    for state in ["INACTIVE", "ACTIVE", "INACTIVE", "ACTIVE", "INACTIVE"] {
        register_card(&app, &token, ("c1", "card-1", 1), Some(state), None, 204).await;
    }
    let (place, issuer, other) = app.stop().await;
    // One card's six items go out one a round; with a poll of a minute, only rounds that
    // follow each other at once deliver them all within the test's wait.
    let _app = boot_tweaked(place, issuer, other, false, settings, true, |c| {
        c.jobs.poll_interval_ms = 60_000;
    })
    .await;
    let items = fake.wait_for_items(None, 6).await;
    assert_eq!(items.len(), 6, "{items:?}");
    assert!(items.iter().all(|i| i["cardId"] == "card-1"));
}

#[tokio::test]
async fn items_refused_with_a_500_are_sent_again_until_taken() {
    let (app, token, fake) = setup(false).await;
    fake.fail_notifications(2);
    set_backend_notifying(&app, &fake.url, false, 0, CardNotifications::All, 10).await;
    register_card(&app, &token, ("c1", "card-1", 1), None, None, 204).await;
    register_card(&app, &token, ("c2", "card-2", 2), None, None, 204).await;
    let items = fake.wait_for_items(None, 2).await;
    let mut cards: Vec<&str> = items
        .iter()
        .map(|i| i["cardId"].as_str().unwrap())
        .collect();
    cards.sort_unstable();
    cards.dedup();
    assert_eq!(cards, ["card-1", "card-2"]);
    assert_eq!(
        fake.state
            .notification_failures
            .load(std::sync::atomic::Ordering::SeqCst),
        0,
        "both 500s were met before the items went through"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        fake.items(None).len(),
        2,
        "a delivered item is not sent again"
    );
}

#[tokio::test]
async fn off_notifies_nothing_and_click_to_pay_only_enrolments() {
    let (app, token, fake) = setup(true).await;
    set_backend_notifying(&app, &fake.url, false, 0, CardNotifications::Off, 1).await;
    app.register(&token, "c1", full_pi()).await;
    register_card(&app, &token, ("c1", "card-1", 1), None, None, 204).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(fake.notifications().is_empty(), "off: nothing");

    set_backend_notifying(&app, &fake.url, false, 0, CardNotifications::ClickToPay, 1).await;
    register_card(&app, &token, ("c1", "card-2", 2), None, None, 204).await;
    let url = app.url(&format!(
        "/banking/v1/issuers/{ISSUER}/cards/card-2/operations:clickToPayEnrolment"
    ));
    let response = send(
        &app,
        reqwest::Method::POST,
        &url,
        &token,
        None,
        Some("corr-enrol"),
    )
    .await;
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.unwrap();
    let items = fake.wait_for_items(None, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        fake.items(None).len(),
        1,
        "click-to-pay: only the enrolment"
    );
    let item = &items[0];
    assert_eq!(item["operation"], "CLICK_TO_PAY_ENROLMENT");
    assert_eq!(item["operationId"], accepted["operationId"]);
    assert_eq!(item["status"], "SUCCESSFUL");
    assert_eq!(item["cardId"], "card-2");
    assert_eq!(item["consumerId"], "c1");
    let (start, end) = (
        item["startTime"].as_str().unwrap(),
        item["endTime"].as_str().unwrap(),
    );
    assert!(start <= end, "accepted at {start}, ended at {end}");
    assert_eq!(
        fake.notification_correlation_ids(),
        [Some("corr-enrol".to_owned())]
    );
    let entry = &trail(&app, &token, "c1").await[item["operationId"].as_str().unwrap()];
    assert_eq!(
        entry["startTime"], item["startTime"],
        "startTime is the acceptance"
    );
    assert_eq!(entry["endTime"], item["endTime"]);
}

#[tokio::test]
async fn an_idle_node_writes_nothing_and_still_sends_a_retry_once_it_is_due() {
    let (app, token, fake) = setup(false).await;
    set_backend_notifying(&app, &fake.url, false, 0, CardNotifications::All, 10).await;
    let writes = || {
        let activity = app.state.store.write_activity();
        (activity.transactions, activity.syncs)
    };
    // Forty poll intervals of 50 ms with nothing due.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle = writes();
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    assert_eq!(writes(), idle, "an idle node commits and syncs nothing");

    // A retry is work that nothing wakes the outbox for: only the poll finds it due.
    fake.fail_notifications(1);
    let started = std::time::Instant::now();
    register_card(&app, &token, ("c1", "card-1", 1), None, None, 204).await;
    let items = fake.wait_for_items(None, 1).await;
    assert_eq!(items[0]["cardId"], "card-1");
    // The first retry waits at most one second, and the poll comes within 50 ms of it.
    assert!(
        started.elapsed() < Duration::from_millis(2_000),
        "delivered after {:?}",
        started.elapsed()
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = writes();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(writes(), idle, "idle again once the item is delivered");
}
