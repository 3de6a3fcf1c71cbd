//! Click to Pay enrolment (contract section 9) and the issuer backend it calls for PI we do not
//! store (section 8), against a fake issuer backend on loopback.

use std::time::Duration;

use d1_domain::card::Scheme;
use d1_domain::{ConsumerId, IssuerId};
use serde_json::{json, Value};

use crate::fake_backend::{set_backend, Answer, FakeBackend};
use crate::harness::{
    assert_error, boot_with, encrypt_for, full_pi, future_exp, logs, on_postgres, spawn_with,
    test_pan, IssuerSettings, TestApp, ISSUER, OTHER_ISSUER,
};

#[path = "clicktopay_body.rs"]
mod body;

/// PI as the issuer backend serves it: the Click to Pay fields, no residency address.
fn served_pi() -> Value {
    json!({
        "language": "fr-FR",
        "firstName": "Amelie",
        "lastName": "Poulain",
        "email": "amelie@example.com",
        "mobilePhoneNumber": {"countryCode": "+33", "phoneNumber": "611223344"}
    })
}

fn billing() -> Value {
    json!({"billingAddress": {"line1": "15 rue Lepic", "city": "Paris", "zipCode": "75018", "countryCode": "FR"}})
}

async fn setup(click_to_pay: bool) -> (TestApp, String) {
    let app = spawn_with(IssuerSettings {
        click_to_pay,
        ..IssuerSettings::default()
    })
    .await;
    app.add_product("visa-classic", Scheme::Visa, "411111")
        .await;
    let token = app.token().await;
    (app, token)
}

async fn register_card(app: &TestApp, token: &str, consumer: &str, card: &str, n: u64) {
    let jwe = encrypt_for(
        app,
        &json!({"pan": test_pan(n), "exp": future_exp()}),
        "A256GCM",
    )
    .await;
    let body =
        json!({"consumerId": consumer, "cardProductId": "visa-classic", "encryptedData": jwe});
    let response = app.put_json(&app.card_url(card), token, &body).await;
    assert_eq!(response.status(), 204, "{}", response.text().await.unwrap());
}

fn enrol_url(app: &TestApp, card: &str) -> String {
    app.url(&format!(
        "/banking/v1/issuers/{ISSUER}/cards/{card}/operations:clickToPayEnrolment"
    ))
}

fn operation_url(app: &TestApp, id: &str) -> String {
    app.url(&format!("/banking/v1/issuers/{ISSUER}/operations/{id}"))
}

async fn enrol(app: &TestApp, token: &str, card: &str, body: Option<Value>) -> reqwest::Response {
    let mut request = app
        .client
        .post(enrol_url(app, card))
        .bearer_auth(token)
        .header("x-correlation-id", format!("corr-{card}"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// Asserts that enrolling `card` is refused with 403 `INVALID_STATE`, saying `why`.
async fn assert_not_enrollable(app: &TestApp, token: &str, card: &str, why: &str) {
    assert_error(
        enrol(app, token, card, None).await,
        403,
        "INVALID_STATE",
        why,
    )
    .await;
}

/// Enrols `card` and returns its operation id.
async fn start(app: &TestApp, token: &str, card: &str, body: Option<Value>) -> String {
    let response = enrol(app, token, card, body).await;
    assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
    let body: Value = response.json().await.unwrap();
    body["operationId"].as_str().unwrap().to_owned()
}

/// Polls the operation until it is no longer PENDING.
async fn finished(app: &TestApp, token: &str, id: &str) -> Value {
    for _ in 0..300 {
        let response = app.get(&operation_url(app, id), token).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        if body["status"] != "PENDING" {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("operation {id} is still PENDING");
}

/// Waits for `count` enrolment items; the cards' REGISTER items, notified too, are left out.
async fn wait_for_notifications(fake: &FakeBackend, count: usize) -> Vec<Value> {
    fake.wait_for_items(Some(ENROLMENT), count).await
}

const ENROLMENT: &str = "CLICK_TO_PAY_ENROLMENT";

async fn trail(app: &TestApp, token: &str, consumer: &str) -> Vec<Value> {
    let body: Value = app
        .get(&(app.consumer_url(consumer) + "/operations"), token)
        .await
        .json()
        .await
        .unwrap();
    body["operations"].as_array().unwrap().clone()
}

async fn directory_cards(app: &TestApp, consumer: &str) -> Option<Vec<String>> {
    app.state
        .store
        .directory_profile(
            &IssuerId::parse(ISSUER).unwrap(),
            &ConsumerId::parse(consumer).unwrap().0,
        )
        .await
        .unwrap()
        .map(|p| p.card_ids)
}

#[tokio::test]
async fn stored_pi_is_enrolled_without_any_call_to_the_issuer_backend() {
    let (app, token) = setup(true).await;
    let fake = FakeBackend::start(Answer::Pi(served_pi())).await;
    set_backend(&app, &fake.url, false, 0).await;
    app.register(&token, "c1", full_pi()).await;
    register_card(&app, &token, "c1", "card-1", 1).await;

    let id = start(&app, &token, "card-1", None).await;
    let done = finished(&app, &token, &id).await;
    assert_eq!(done["status"], "SUCCESSFUL", "{done}");
    assert_eq!(done["operation"], "CLICK_TO_PAY_ENROLMENT");
    assert_eq!(done["cardId"], "card-1");
    assert!(done["endTime"].is_string());
    assert_eq!(fake.consumer_calls(), 0, "stored PI needs no outbound call");
    assert_eq!(
        directory_cards(&app, "c1").await,
        Some(vec!["card-1".to_owned()])
    );

    let notes = wait_for_notifications(&fake, 1).await;
    let op = &notes[0];
    assert_eq!(op["operationId"], id.as_str());
    assert_eq!(op["operation"], "CLICK_TO_PAY_ENROLMENT");
    assert_eq!(op["status"], "SUCCESSFUL");
    assert_eq!(op["cardId"], "card-1");
    assert!(op["startTime"].as_str().unwrap().ends_with('Z'));
    assert_eq!(fake.consumer_calls(), 0);
}

#[tokio::test]
async fn issuer_sourced_pi_is_fetched_with_the_issuers_token_card_and_correlation_id() {
    let (app, token) = setup(true).await;
    let fake = FakeBackend::start(Answer::Pi(served_pi())).await;
    set_backend(&app, &fake.url, true, 0).await;
    register_card(&app, &token, "c1", "card-1", 1).await;

    let id = start(&app, &token, "card-1", Some(billing())).await;
    let done = finished(&app, &token, &id).await;
    assert_eq!(done["status"], "SUCCESSFUL", "{done}");
    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].path,
        format!("/banking/d1/v1/issuers/{ISSUER}/consumers/c1")
    );
    assert_eq!(seen[0].query.as_deref(), Some("cardId=card-1"));
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer fake-token"));
    assert_eq!(seen[0].correlation_id.as_deref(), Some("corr-card-1"));

    // Without an x-correlation-id, the one the 202 answered with is passed on.
    register_card(&app, &token, "c2", "card-3", 3).await;
    let response = app
        .client
        .post(enrol_url(&app, "card-3"))
        .bearer_auth(&token)
        .json(&billing())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let echoed = response.headers()["x-correlation-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    let third = body["operationId"].as_str().unwrap();
    assert_eq!(finished(&app, &token, third).await["status"], "SUCCESSFUL");
    assert_eq!(
        fake.seen()[1].correlation_id.as_deref(),
        Some(echoed.as_str())
    );

    let entries = trail(&app, &token, "c1").await;
    let kinds: Vec<(&str, &str)> = entries
        .iter()
        .map(|o| {
            (
                o["operation"].as_str().unwrap(),
                o["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(kinds.contains(&("PI_FETCH", "SUCCESSFUL")), "{kinds:?}");
    assert!(
        kinds.contains(&("CLICK_TO_PAY_ENROLMENT", "SUCCESSFUL")),
        "{kinds:?}"
    );
    let consumer: Value = app
        .get(&app.consumer_url("c1"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(consumer["personalInformationSource"], "ISSUER");
    assert!(
        consumer.get("personalInformation").is_none(),
        "fetched PI is not stored"
    );

    // A second card of the same consumer adds a card to the existing profile.
    register_card(&app, &token, "c1", "card-2", 2).await;
    let second = start(&app, &token, "card-2", Some(billing())).await;
    assert_eq!(
        finished(&app, &token, &second).await["status"],
        "SUCCESSFUL"
    );
    assert_eq!(
        directory_cards(&app, "c1").await.map(|mut c| {
            c.sort();
            c
        }),
        Some(vec!["card-1".to_owned(), "card-2".to_owned()])
    );
    wait_for_notifications(&fake, 3).await;
}

/// Runs one enrolment of an issuer-sourced consumer against a fake answering `answer`, and
/// returns the finished operation.
async fn failure_reason(
    answer: Answer,
    tweak: impl FnOnce(&FakeBackend),
) -> (Value, FakeBackend, TestApp) {
    let (app, token) = setup(true).await;
    let fake = FakeBackend::start(answer).await;
    tweak(&fake);
    set_backend(&app, &fake.url, false, 0).await;
    register_card(&app, &token, "c1", "card-1", 1).await;
    let id = start(&app, &token, "card-1", Some(billing())).await;
    let done = finished(&app, &token, &id).await;
    assert_eq!(done["status"], "FAILED", "{done}");
    (done, fake, app)
}

#[tokio::test]
async fn each_issuer_backend_fault_fails_the_enrolment_with_its_reason() {
    let mut bad_pi = served_pi();
    bad_pi["email"] = json!("not an email");
    let cases = [
        (Answer::Status(404), "CONSUMER_NOT_FOUND_AT_ISSUER"),
        (Answer::Status(403), "CONSUMER_INVALID_STATE_AT_ISSUER"),
        (Answer::Status(500), "ISSUER_BACKEND_ERROR"),
        (Answer::Garbage, "INVALID_ISSUER_RESPONSE"),
        (Answer::Pi(bad_pi), "INVALID_ISSUER_RESPONSE"),
        (
            Answer::Pi(json!({"unexpected": true})),
            "INVALID_ISSUER_RESPONSE",
        ),
        (
            Answer::Slow(Duration::from_secs(3), Box::new(Answer::Pi(served_pi()))),
            "ISSUER_BACKEND_TIMEOUT",
        ),
    ];
    for (answer, reason) in cases {
        let (done, fake, _app) = failure_reason(answer, |_| {}).await;
        assert_eq!(done["reason"], reason, "{done}");
        let notes = wait_for_notifications(&fake, 1).await;
        assert_eq!(notes[0]["status"], "FAILED", "failures are notified too");
    }
}

#[tokio::test]
async fn a_replace_moves_the_enrolment_with_the_billing_address_it_was_given() {
    let (app, token) = setup(true).await;
    // The PI the backend serves has no residency address: only the enrolment's body gives one.
    let fake = FakeBackend::start(Answer::Pi(served_pi())).await;
    set_backend(&app, &fake.url, false, 0).await;
    register_card(&app, &token, "c1", "card-1", 1).await;
    let id = start(&app, &token, "card-1", Some(billing())).await;
    assert_eq!(finished(&app, &token, &id).await["status"], "SUCCESSFUL");
    let jwe = encrypt_for(
        &app,
        &json!({"pan": test_pan(2), "exp": future_exp()}),
        "A256GCM",
    )
    .await;
    let replace = json!({"reasonCode": "CARD_LOST", "newCardId": "card-2", "encryptedData": jwe});
    let url = app.url(&format!(
        "/banking/v2/issuers/{ISSUER}/cards/card-1/operations:replace"
    ));
    assert_eq!(app.post_json(&url, &token, &replace).await.status(), 200);
    let moved = trail(&app, &token, "c1")
        .await
        .into_iter()
        .find(|o| o["operation"] == ENROLMENT && o["cardId"] == "card-2")
        .expect("the replace starts the new card's enrolment");
    let moved = moved["operationId"].as_str().unwrap().to_owned();
    let done = finished(&app, &token, &moved).await;
    assert_eq!(done["status"], "SUCCESSFUL", "{done}");
    assert_eq!(
        directory_cards(&app, "c1").await,
        Some(vec!["card-2".to_owned()])
    );
    // Enrolling the new card again answers the moved enrolment.
    let response = enrol(&app, &token, "card-2", None).await;
    assert_eq!(response.status(), 202);
    let again: Value = response.json().await.unwrap();
    assert_eq!(
        (again["operationId"].as_str(), again["status"].as_str()),
        (Some(moved.as_str()), Some("SUCCESSFUL"))
    );
}

#[tokio::test]
async fn a_refused_token_and_a_backend_that_is_down_fail_with_issuer_backend_error() {
    let (done, _fake, _app) = failure_reason(Answer::Pi(served_pi()), |fake| {
        *fake.state.refuse_tokens.lock().unwrap() = true;
    })
    .await;
    assert_eq!(done["reason"], "ISSUER_BACKEND_ERROR");

    let (app, token) = setup(true).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    set_backend(&app, &url, false, 0).await;
    register_card(&app, &token, "c1", "card-1", 1).await;
    let id = start(&app, &token, "card-1", Some(billing())).await;
    let done = finished(&app, &token, &id).await;
    assert_eq!(done["reason"], "ISSUER_BACKEND_ERROR", "{done}");
}

#[tokio::test]
async fn missing_profile_data_fails_with_the_field_or_the_billing_address() {
    let mut no_email = served_pi();
    no_email.as_object_mut().unwrap().remove("email");
    let (done, _fake, _app) = failure_reason(Answer::Pi(no_email), |_| {}).await;
    assert_eq!(done["reason"], "MISSING_FIELD:email");

    let (app, token) = setup(true).await;
    let fake = FakeBackend::start(Answer::Pi(served_pi())).await;
    set_backend(&app, &fake.url, false, 0).await;
    register_card(&app, &token, "c1", "card-1", 1).await;
    let id = start(&app, &token, "card-1", None).await;
    assert_eq!(
        finished(&app, &token, &id).await["reason"],
        "MISSING_BILLING_ADDRESS"
    );
}

#[tokio::test]
async fn the_circuit_breaker_opens_after_repeated_failures_and_closes_again() {
    let (app, token) = setup(true).await;
    let fake = FakeBackend::start(Answer::Status(503)).await;
    set_backend(&app, &fake.url, false, 0).await;
    // Every card first, so that the circuit's 2 s open window only has enrolments in it.
    for n in [0, 1, 2, 9, 10] {
        register_card(&app, &token, &format!("c{n}"), &format!("card-{n}"), n).await;
    }
    // Three failed calls (each a first try and one retry) open the circuit.
    for n in 0..3 {
        let id = start(&app, &token, &format!("card-{n}"), Some(billing())).await;
        assert_eq!(
            finished(&app, &token, &id).await["reason"],
            "ISSUER_BACKEND_ERROR"
        );
    }
    let calls = fake.consumer_calls();
    fake.set(Answer::Pi(served_pi()));
    let refused = start(&app, &token, "card-9", Some(billing())).await;
    assert_eq!(
        finished(&app, &token, &refused).await["reason"],
        "ISSUER_BACKEND_ERROR"
    );
    assert_eq!(
        fake.consumer_calls(),
        calls,
        "an open circuit makes no call"
    );

    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let probe = start(&app, &token, "card-10", Some(billing())).await;
    assert_eq!(finished(&app, &token, &probe).await["status"], "SUCCESSFUL");
    assert_eq!(fake.consumer_calls(), calls + 1);
}

#[tokio::test]
async fn concurrent_enrolments_of_one_consumers_cards_make_one_call() {
    let (app, token) = setup(true).await;
    let fake = FakeBackend::start(Answer::Slow(
        Duration::from_millis(300),
        Box::new(Answer::Pi(served_pi())),
    ))
    .await;
    set_backend(&app, &fake.url, false, 0).await;
    for n in 0..5 {
        register_card(&app, &token, "c1", &format!("card-{n}"), n).await;
    }
    let ids = futures_util::future::join_all((0..5).map(|n| {
        let (app, token) = (&app, &token);
        async move { start(app, token, &format!("card-{n}"), Some(billing())).await }
    }))
    .await;
    for id in &ids {
        assert_eq!(finished(&app, &token, id).await["status"], "SUCCESSFUL");
    }
    assert_eq!(
        fake.consumer_calls(),
        1,
        "one Get Consumer Information for five enrolments"
    );
}

#[tokio::test]
async fn a_cache_ttl_serves_later_enrolments_from_memory() {
    let (app, token) = setup(true).await;
    let fake = FakeBackend::start(Answer::Pi(served_pi())).await;
    set_backend(&app, &fake.url, false, 60).await;
    for n in 0..3 {
        let card = format!("card-{n}");
        register_card(&app, &token, "c1", &card, n).await;
        let id = start(&app, &token, &card, Some(billing())).await;
        assert_eq!(finished(&app, &token, &id).await["status"], "SUCCESSFUL");
    }
    assert_eq!(fake.consumer_calls(), 1);
}

#[tokio::test]
async fn enrolment_refusals_have_their_d1_errors() {
    let (app, token) = setup(false).await;
    app.register(&token, "c1", full_pi()).await;
    register_card(&app, &token, "c1", "card-1", 1).await;
    assert_not_enrollable(&app, &token, "card-1", "Click to Pay").await;

    let (app, token) = setup(true).await;
    app.register(&token, "c1", full_pi()).await;
    register_card(&app, &token, "c1", "card-1", 1).await;
    assert_error(
        enrol(&app, &token, "nope", None).await,
        404,
        "CARD_NOT_FOUND",
        "Card not found.",
    )
    .await;
    assert_error(
        enrol(&app, &token, "bad card!", None).await,
        400,
        "FIELD_INVALID_FORMAT",
        "cardId",
    )
    .await;
    assert_error(
        enrol(
            &app,
            &token,
            "card-1",
            Some(json!({"billingAddress": {"line1": "x", "countryCode": "ZZ"}})),
        )
        .await,
        400,
        "FIELD_INVALID_VALUE",
        "billingAddress.countryCode",
    )
    .await;
    assert_error(
        enrol(&app, &token, "card-1", Some(json!({"extra": 1}))).await,
        400,
        "FIELD_INVALID_FORMAT",
        "extra",
    )
    .await;
    let unauthorised = app
        .client
        .post(enrol_url(&app, "card-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorised.status(), 401);

    let first = start(&app, &token, "card-1", None).await;
    let again = start(&app, &token, "card-1", None).await;
    assert_eq!(
        first, again,
        "a card with a PENDING or SUCCESSFUL enrolment returns it"
    );

    assert_error(
        app.get(
            &operation_url(&app, "0190a8f2-0000-7000-8000-000000000000"),
            &token,
        )
        .await,
        404,
        "OPERATION_NOT_FOUND",
        "operation",
    )
    .await;
    let other_token = app.token_for(&app.other).await;
    let foreign = app
        .get(
            &app.url(&format!(
                "/banking/v1/issuers/{OTHER_ISSUER}/operations/{first}"
            )),
            &other_token,
        )
        .await;
    assert_eq!(
        foreign.status(),
        404,
        "another issuer's operation is not found"
    );

    // Any trail entry reads by its id.
    let entries = trail(&app, &token, "c1").await;
    let register = entries
        .iter()
        .find(|o| o["operation"] == "REGISTER")
        .unwrap();
    let read: Value = app
        .get(
            &operation_url(&app, register["operationId"].as_str().unwrap()),
            &token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["status"], "SUCCESSFUL");

    let inactive_jwe = encrypt_for(
        &app,
        &json!({"pan": test_pan(2), "exp": future_exp()}),
        "A256GCM",
    )
    .await;
    let body = json!({"consumerId": "c1", "cardProductId": "visa-classic", "encryptedData": inactive_jwe, "state": "INACTIVE"});
    assert_eq!(
        app.put_json(&app.card_url("card-2"), &token, &body)
            .await
            .status(),
        204
    );
    assert_not_enrollable(&app, &token, "card-2", "ACTIVE").await;

    let response = app.delete_consumer(&token, "c1").await;
    assert_eq!(response.status(), 204);
    assert_not_enrollable(&app, &token, "card-1", "ACTIVE").await;
}

#[tokio::test]
async fn stored_pi_updates_reach_the_directory_and_a_delete_removes_the_profile() {
    let (app, token) = setup(true).await;
    app.register(&token, "c1", full_pi()).await;
    register_card(&app, &token, "c1", "card-1", 1).await;
    let id = start(&app, &token, "card-1", None).await;
    assert_eq!(finished(&app, &token, &id).await["status"], "SUCCESSFUL");

    let issuer = IssuerId::parse(ISSUER).unwrap();
    let consumer = ConsumerId::parse("c1").unwrap().0;
    let profile_email = |app: &TestApp| {
        let (store, issuer, consumer) = (app.state.store.clone(), issuer.clone(), consumer.clone());
        async move {
            let record = store.directory_profile(&issuer, &consumer).await.unwrap()?;
            let context = d1_registry::clicktopay::directory::context(&issuer, &consumer, None);
            let plain = store.vault().open_alone(&context, &record.profile).unwrap();
            let profile: Value = serde_json::from_slice(&plain).unwrap();
            Some(profile["email"].as_str().unwrap().to_owned())
        }
    };
    assert_eq!(
        profile_email(&app).await.as_deref(),
        Some("jean-luc@example.com")
    );

    let mut changed = full_pi();
    changed["email"] = json!("new-address@example.com");
    let response = app
        .post_json(
            &(app.consumer_url("c1") + "/operations/update"),
            &token,
            &json!({"personalInformation": changed}),
        )
        .await;
    assert_eq!(response.status(), 204);
    for _ in 0..100 {
        if profile_email(&app).await.as_deref() == Some("new-address@example.com") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        profile_email(&app).await.as_deref(),
        Some("new-address@example.com")
    );

    let response = app.delete_consumer(&token, "c1").await;
    assert_eq!(response.status(), 204);
    for _ in 0..100 {
        if directory_cards(&app, "c1").await.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        directory_cards(&app, "c1").await,
        None,
        "the profile is gone"
    );
}

#[tokio::test]
async fn pi_served_by_the_issuer_backend_rests_neither_on_disk_in_clear_nor_in_logs() {
    let (app, token) = setup(true).await;
    let mut canary = served_pi();
    canary["email"] = json!("canary.q7v3x@example.com");
    canary["lastName"] = json!("Zqxcanaryk");
    let fake = FakeBackend::start(Answer::Pi(canary)).await;
    set_backend(&app, &fake.url, false, 0).await;
    register_card(&app, &token, "c1", "card-1", 1).await;
    let id = start(&app, &token, "card-1", Some(billing())).await;
    assert_eq!(finished(&app, &token, &id).await["status"], "SUCCESSFUL");
    wait_for_notifications(&fake, 1).await;
    assert!(
        directory_cards(&app, "c1").await.is_some(),
        "the directory holds it, sealed"
    );
    for needle in [
        "canary.q7v3x",
        "Zqxcanaryk",
        "Zqxcanaryk Amelie",
        "15 rue Lepic",
        &test_pan(1),
    ] {
        assert!(
            app.place.holding(needle.as_bytes()).await.is_empty(),
            "{needle} rests in clear"
        );
        assert!(!logs().contains(needle), "{needle} reached a log line");
    }
    assert!(
        !logs().contains("secret-1"),
        "the client secret reached a log line"
    );
    assert!(
        app.place.holding(b"secret-1").await.is_empty(),
        "the client secret rests in clear"
    );
}

#[tokio::test]
async fn pending_enrolments_survive_a_restart_and_are_notified_once() {
    let (app, token) = setup(true).await;
    let fake = FakeBackend::start(Answer::Pi(served_pi())).await;
    set_backend(&app, &fake.url, false, 0).await;
    app.register(&token, "c1", full_pi()).await;
    register_card(&app, &token, "c1", "card-1", 1).await;
    let (place, issuer, other) = app.stop().await;

    // A node that accepts enrolments but dies before running them.
    let idle = boot_with(
        place,
        issuer,
        other,
        false,
        IssuerSettings::default(),
        false,
    )
    .await;
    let id = start(&idle, &token, "card-1", None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(finished_or_pending(&idle, &token, &id).await, "PENDING");
    let (place, issuer, other) = idle.stop().await;

    let again = boot_with(place, issuer, other, false, IssuerSettings::default(), true).await;
    assert_eq!(finished(&again, &token, &id).await["status"], "SUCCESSFUL");
    wait_for_notifications(&fake, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        fake.items(Some(ENROLMENT)).len(),
        1,
        "notified exactly once"
    );
}

async fn finished_or_pending(app: &TestApp, token: &str, id: &str) -> String {
    let body: Value = app
        .get(&operation_url(app, id), token)
        .await
        .json()
        .await
        .unwrap();
    body["status"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn notifications_are_retried_until_the_issuer_backend_takes_them() {
    let (app, token) = setup(true).await;
    let fake = FakeBackend::start(Answer::Pi(served_pi())).await;
    fake.state
        .notification_failures
        .store(2, std::sync::atomic::Ordering::SeqCst);
    set_backend(&app, &fake.url, false, 0).await;
    app.register(&token, "c1", full_pi()).await;
    register_card(&app, &token, "c1", "card-1", 1).await;
    let id = start(&app, &token, "card-1", None).await;
    assert_eq!(finished(&app, &token, &id).await["status"], "SUCCESSFUL");
    let notes = wait_for_notifications(&fake, 1).await;
    assert_eq!(notes[0]["operationId"], id.as_str());
    assert_eq!(
        fake.state
            .notification_failures
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}

#[tokio::test]
async fn a_notification_pending_at_a_restart_is_delivered_after_it_once() {
    let (app, token) = setup(true).await;
    let fake = FakeBackend::start(Answer::Pi(served_pi())).await;
    fake.state
        .notification_failures
        .store(u32::MAX, std::sync::atomic::Ordering::SeqCst);
    set_backend(&app, &fake.url, false, 0).await;
    app.register(&token, "c1", full_pi()).await;
    register_card(&app, &token, "c1", "card-1", 1).await;
    let id = start(&app, &token, "card-1", None).await;
    assert_eq!(finished(&app, &token, &id).await["status"], "SUCCESSFUL");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        fake.notifications().is_empty(),
        "the issuer backend refuses every call so far"
    );
    let (place, issuer, other) = app.stop().await;

    fake.state
        .notification_failures
        .store(0, std::sync::atomic::Ordering::SeqCst);
    let _again = boot_with(place, issuer, other, false, IssuerSettings::default(), true).await;
    let notes = wait_for_notifications(&fake, 1).await;
    assert_eq!(notes[0]["operationId"], id.as_str());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fake.items(Some(ENROLMENT)).len(), 1, "delivered once");
}

#[tokio::test]
async fn sealed_data_that_does_not_open_fails_its_enrolment_and_holds_back_no_other() {
    let (app, token) = setup(true).await;
    let fake = FakeBackend::start(Answer::Pi(served_pi())).await;
    set_backend(&app, &fake.url, false, 0).await;
    app.register(&token, "c1", full_pi()).await;
    register_card(&app, &token, "c1", "card-1", 1).await;
    app.register(&token, "c2", full_pi()).await;
    register_card(&app, &token, "c2", "card-2", 2).await;
    let garbage = if on_postgres() {
        "decode('00112233', 'hex')"
    } else {
        "X'00112233'"
    };
    app.place
        .execute(&format!(
            "UPDATE consumers SET pi = {garbage} WHERE consumer_id = 'c1'"
        ))
        .await;
    let broken = start(&app, &token, "card-1", None).await;
    let fine = start(&app, &token, "card-2", None).await;
    assert_eq!(
        finished(&app, &token, &broken).await["reason"],
        "STORED_DATA_UNREADABLE"
    );
    assert_eq!(finished(&app, &token, &fine).await["status"], "SUCCESSFUL");
}

#[tokio::test]
async fn settings_changed_a_moment_ago_apply_to_the_next_enrolment() {
    let (app, token) = setup(false).await;
    register_card(&app, &token, "c1", "card-1", 1).await;
    assert_not_enrollable(&app, &token, "card-1", "Click to Pay").await;
    app.state
        .store
        .change_issuer(
            IssuerId::parse(ISSUER).unwrap(),
            d1_store::IssuerChange {
                click_to_pay: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // No backend yet: the enrolment of an issuer-sourced consumer cannot fetch its PI.
    let id = start(&app, &token, "card-1", Some(billing())).await;
    assert_eq!(
        finished(&app, &token, &id).await["reason"],
        "ISSUER_BACKEND_ERROR"
    );

    let fake = FakeBackend::start(Answer::Pi(served_pi())).await;
    set_backend(&app, &fake.url, false, 0).await;
    register_card(&app, &token, "c1", "card-2", 2).await;
    let id = start(&app, &token, "card-2", Some(billing())).await;
    assert_eq!(finished(&app, &token, &id).await["status"], "SUCCESSFUL");
}
