//! The enrolment body and reply of contract section 9: `cardholderName` (which wins over the
//! card's and the consumer's names in the directory), `reason` and `reasonCode` on the trail
//! entry, and the 202's `status`. A child of the Click to Pay suite, whose helpers it uses.

use std::time::Duration;

use d1_domain::{ConsumerId, IssuerId};
use d1_store::Sealed;
use serde_json::{json, Value};

use super::{billing, enrol, finished, register_card, setup, start, trail};
use crate::harness::{assert_error, boot_with, full_pi, logs, IssuerSettings, TestApp, ISSUER};

/// The directory's record of `card`, opened as the network's directory would read it.
async fn directory_card(app: &TestApp, consumer: &str, card: &str) -> Value {
    let column = |name: &str| {
        format!("SELECT {name} FROM directory_cards WHERE consumer_id = '{consumer}' AND card_id = '{card}'")
    };
    let sealed = Sealed {
        wrapped_key: app.place.bytes(&column("wrapped_key")).await,
        sealed: app.place.bytes(&column("sealed")).await,
    };
    let issuer = IssuerId::parse(ISSUER).unwrap();
    let consumer = ConsumerId::parse(consumer).unwrap().0;
    let context = d1_registry::clicktopay::directory::context(&issuer, &consumer, Some(card));
    let plain = app
        .state
        .store
        .vault()
        .open_alone(&context, &sealed)
        .unwrap();
    serde_json::from_slice(&plain).unwrap()
}

/// Creates a card with `name` on it for `consumer`; its cardId.
async fn create_card(app: &TestApp, token: &str, consumer: &str, name: &str) -> String {
    let url = app.url(&format!("/banking/v2/issuers/{ISSUER}/cards"));
    let body =
        json!({"consumerId": consumer, "cardProductId": "visa-classic", "cardholderName": name});
    let response = app.post_json(&url, token, &body).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    created["cardId"].as_str().unwrap().to_owned()
}

/// Enrols `card` with `body` and waits for it to succeed; the 202's body.
async fn enrolled(app: &TestApp, token: &str, card: &str, body: Option<Value>) -> Value {
    let response = enrol(app, token, card, body).await;
    assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
    let accepted: Value = response.json().await.unwrap();
    let id = accepted["operationId"].as_str().unwrap();
    assert_eq!(finished(app, token, id).await["status"], "SUCCESSFUL");
    accepted
}

fn named(name: &str) -> Value {
    let mut body = billing();
    body["cardholderName"] = json!(name);
    body
}

#[tokio::test]
async fn a_given_cardholder_name_wins_over_the_cards_and_the_consumers_in_the_directory() {
    let (app, token) = setup(true).await;
    app.register(&token, "c1", full_pi()).await;
    register_card(&app, &token, "c1", "card-1", 1).await;
    register_card(&app, &token, "c1", "card-2", 2).await;
    let created = create_card(&app, &token, "c1", "J L ONEIL").await;
    let created_too = create_card(&app, &token, "c1", "J L ONEIL").await;

    let accepted = enrolled(&app, &token, "card-1", Some(named("Zoë Ünal-Çelik"))).await;
    assert_eq!(accepted.as_object().unwrap().len(), 2, "{accepted}");
    assert_eq!(accepted["status"], "PENDING");
    enrolled(&app, &token, "card-2", None).await;
    enrolled(&app, &token, &created, Some(named("Jean-Luc O'Neil"))).await;
    enrolled(&app, &token, &created_too, None).await;

    let holder = |card: String| {
        let app = &app;
        async move { directory_card(app, "c1", &card).await["cardholderName"].clone() }
    };
    assert_eq!(
        holder("card-1".into()).await,
        "Zoë Ünal-Çelik",
        "over the consumer's"
    );
    assert_eq!(
        holder("card-2".into()).await,
        "Jean-Luc O'Neil",
        "the consumer's"
    );
    assert_eq!(
        holder(created.clone()).await,
        "Jean-Luc O'Neil",
        "over the card's"
    );
    assert_eq!(holder(created_too).await, "J L ONEIL", "the card's");
    let card = directory_card(&app, "c1", "card-1").await;
    assert_eq!(
        card["billingAddress"]["line1"], "15 rue Lepic",
        "sealed beside it"
    );

    // A repeat of a finished enrolment answers it, SUCCESSFUL, and changes nothing.
    let again = enrol(&app, &token, "card-1", Some(named("Someone Else"))).await;
    assert_eq!(again.status(), 202);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["operationId"], accepted["operationId"]);
    assert_eq!(again["status"], "SUCCESSFUL");
    assert_eq!(holder("card-1".into()).await, "Zoë Ünal-Çelik");
}

#[tokio::test]
async fn the_reason_and_its_code_are_on_the_enrolments_trail_entry() {
    let (app, token) = setup(true).await;
    app.register(&token, "c1", full_pi()).await;
    register_card(&app, &token, "c1", "card-1", 1).await;
    register_card(&app, &token, "c1", "card-2", 2).await;
    let mut body = billing();
    body["reason"] = json!("asked in branch 42");
    body["reasonCode"] = json!("USER_DECISION");
    let given = enrolled(&app, &token, "card-1", Some(body)).await;
    let default = enrolled(&app, &token, "card-2", None).await;

    let entries = trail(&app, &token, "c1").await;
    let entry = |accepted: &Value| {
        entries
            .iter()
            .find(|e| e["operationId"] == accepted["operationId"])
            .unwrap()
            .clone()
    };
    let given = entry(&given);
    assert_eq!(given["operation"], "CLICK_TO_PAY_ENROLMENT");
    assert_eq!(given["status"], "SUCCESSFUL", "{given}");
    assert_eq!(
        given["reason"], "asked in branch 42",
        "kept once it succeeded"
    );
    assert_eq!(given["reasonCode"], "USER_DECISION");
    let default = entry(&default);
    assert!(default.get("reason").is_none(), "{default}");
    assert_eq!(default["reasonCode"], "ISSUER_DECISION");
}

#[tokio::test]
async fn a_repeat_of_a_pending_enrolment_answers_it_pending() {
    let (app, token) = setup(true).await;
    app.register(&token, "c1", full_pi()).await;
    register_card(&app, &token, "c1", "card-1", 1).await;
    let (place, issuer, other) = app.stop().await;
    // A node whose worker does not run, so the enrolment stays PENDING.
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
    tokio::time::sleep(Duration::from_millis(100)).await;
    let again = enrol(&idle, &token, "card-1", Some(named("Ann"))).await;
    assert_eq!(again.status(), 202);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, json!({"operationId": id, "status": "PENDING"}));
}

#[tokio::test]
async fn bad_enrolment_bodies_are_refused_naming_the_field_in_the_v2_body() {
    let (app, token) = setup(true).await;
    app.register(&token, "c1", full_pi()).await;
    register_card(&app, &token, "c1", "card-1", 1).await;
    let secret = "Qwyzzle Xantippe";
    let cases = [
        (
            json!({"cardholderName": "A".repeat(27)}),
            "FIELD_INVALID_FORMAT",
            "cardholderName",
        ),
        (
            json!({"cardholderName": ""}),
            "FIELD_INVALID_FORMAT",
            "cardholderName",
        ),
        (
            json!({"cardholderName": format!("{secret}$")}),
            "FIELD_INVALID_FORMAT",
            "cardholderName",
        ),
        (
            json!({"cardholderName": 7}),
            "FIELD_INVALID_FORMAT",
            "cardholderName",
        ),
        (
            json!({"reason": "not $ this"}),
            "FIELD_INVALID_FORMAT",
            "reason",
        ),
        (
            json!({"reason": "x".repeat(65)}),
            "FIELD_INVALID_FORMAT",
            "reason",
        ),
        (
            json!({"reasonCode": "SOMETIMES"}),
            "FIELD_INVALID_VALUE",
            "reasonCode",
        ),
        (
            json!({"reasonCode": "CARD_LOST"}),
            "FIELD_INVALID_VALUE",
            "reasonCode",
        ),
        (
            json!({"reasonCode": 1}),
            "FIELD_INVALID_FORMAT",
            "reasonCode",
        ),
        // Every format check comes before any value check, and fields go in their order.
        (
            json!({"reasonCode": "NO", "cardholderName": "Ann!"}),
            "FIELD_INVALID_FORMAT",
            "cardholderName",
        ),
        (
            json!({"billingAddress": {"line1": "x", "countryCode": "ZZ"}, "reasonCode": "NO"}),
            "FIELD_INVALID_VALUE",
            "billingAddress.countryCode",
        ),
    ];
    for (body, code, field) in cases {
        let response = enrol(&app, &token, "card-1", Some(body.clone())).await;
        let refused = assert_error(response, 400, code, field).await;
        assert!(
            !refused.to_string().contains(secret),
            "{refused} echoes the name"
        );
    }
    // None of those started anything: the first valid one is new.
    let response = enrol(&app, &token, "card-1", Some(named(secret))).await;
    let accepted: Value = response.json().await.unwrap();
    assert_eq!(accepted["status"], "PENDING");
    assert_eq!(
        finished(&app, &token, accepted["operationId"].as_str().unwrap()).await["status"],
        "SUCCESSFUL"
    );
    assert!(
        !logs().contains("Qwyzzle"),
        "the cardholder name reached a log line"
    );
    assert!(
        app.place.holding(b"Qwyzzle").await.is_empty(),
        "the cardholder name rests in clear"
    );
}
