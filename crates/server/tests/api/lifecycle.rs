//! The card life cycle (contract section 6) over HTTP: every row of the reason table allowed
//! and refused, both separators, the v1 and v2 bodies, retries, replace in both models,
//! delete, and each operation's trail entry and notification, received by a loopback issuer
//! backend.

use std::time::Duration;

use d1_domain::card::Scheme;
use serde_json::{json, Value};

use crate::fake_backend::{set_backend, Answer, FakeBackend};
use crate::harness::{
    assert_error, encrypt_for, on_postgres, spawn_app, test_pan, TestApp, CONSUMER_DELETED, ISSUER,
    OTHER_ISSUER,
};

async fn setup() -> (TestApp, String) {
    let app = spawn_app().await;
    app.add_product("visa-classic", Scheme::Visa, "411111")
        .await;
    let token = app.token().await;
    (app, token)
}

/// `MMYY`, `years` from now.
fn exp_in(years: i32) -> String {
    let today = time::OffsetDateTime::now_utc();
    format!(
        "{:02}{:02}",
        u8::from(today.month()),
        (today.year() + years) % 100
    )
}

async fn jwe(app: &TestApp, n: u64, years: i32) -> String {
    let plain = json!({"pan": test_pan(n), "exp": exp_in(years)});
    encrypt_for(app, &plain, "A256GCM").await
}

/// Registers `card` for `consumer` with PAN number `n`, expiring in three years.
async fn register(app: &TestApp, token: &str, consumer: &str, card: &str, n: u64) {
    let body = json!({"consumerId": consumer, "cardProductId": "visa-classic",
                      "encryptedData": jwe(app, n, 3).await});
    let response = app.put_json(&app.card_url(card), token, &body).await;
    assert_eq!(response.status(), 204, "{}", response.text().await.unwrap());
}

/// Creates a card for `consumer` (registered first) and answers its cardId.
async fn create(app: &TestApp, token: &str, consumer: &str, state: &str) -> String {
    app.register(token, consumer, Value::Null).await;
    let body = json!({"consumerId": consumer, "cardProductId": "visa-classic", "state": state});
    let response = app
        .post_json(
            &app.url(&format!("/banking/v2/issuers/{ISSUER}/cards")),
            token,
            &body,
        )
        .await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let body: Value = response.json().await.unwrap();
    body["cardId"].as_str().unwrap().to_owned()
}

fn op_url(app: &TestApp, version: &str, card: &str, op: &str, sep: char) -> String {
    app.url(&format!(
        "/banking/{version}/issuers/{ISSUER}/cards/{card}/operations{sep}{op}"
    ))
}

async fn operate(
    app: &TestApp,
    token: &str,
    card: &str,
    op: &str,
    body: Value,
) -> reqwest::Response {
    app.post_json(&op_url(app, "v2", card, op, ':'), token, &body)
        .await
}

/// Runs an operation that must succeed; its reply.
async fn ok(app: &TestApp, token: &str, card: &str, op: &str, body: Value) -> Value {
    let response = operate(app, token, card, op, body).await;
    assert_eq!(
        response.status(),
        200,
        "{op}: {}",
        response.text().await.unwrap()
    );
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["status"], "SUCCESSFUL");
    reply
}

async fn card(app: &TestApp, token: &str, card: &str) -> Value {
    app.get(&app.card_url(card), token)
        .await
        .json()
        .await
        .unwrap()
}

async fn trail(app: &TestApp, token: &str, consumer: &str) -> Vec<Value> {
    let body: Value = app
        .get(&(app.consumer_url(consumer) + "/operations"), token)
        .await
        .json()
        .await
        .unwrap();
    body["operations"].as_array().unwrap().clone()
}

fn code(c: &str) -> Value {
    json!({"reasonCode": c})
}

#[tokio::test]
async fn every_suspension_reason_allows_exactly_its_resume_codes() {
    let (app, token) = setup().await;
    let table: [(&str, &[&str]); 6] = [
        ("CARD_LOST", &["CARD_FOUND"]),
        ("CARD_STOLEN", &[]),
        ("CARD_BROKEN", &[]),
        ("FRAUD", &[]),
        ("USER_DECISION", &["USER_DECISION", "ISSUER_DECISION"]),
        ("ISSUER_DECISION", &["ISSUER_DECISION"]),
    ];
    let mut n = 0;
    for (suspension, allowed) in table {
        for resume in ["CARD_FOUND", "ISSUER_DECISION", "USER_DECISION"] {
            n += 1;
            let id = format!("card-{n}");
            register(&app, &token, "c1", &id, n).await;
            ok(&app, &token, &id, "suspend", code(suspension)).await;
            let read = card(&app, &token, &id).await;
            assert_eq!(
                (read["state"].as_str(), read["stateReason"].as_str()),
                (Some("SUSPENDED"), Some(suspension))
            );
            let response = operate(&app, &token, &id, "resume", code(resume)).await;
            if allowed.contains(&resume) {
                assert_eq!(response.status(), 200, "{resume} after {suspension}");
                let read = card(&app, &token, &id).await;
                assert_eq!(
                    (read["state"].as_str(), read["stateReason"].as_str()),
                    (Some("ACTIVE"), Some(resume))
                );
            } else {
                let body = assert_error(response, 403, "INVALID_STATE", "SUSPENDED").await;
                assert!(
                    body["error"].as_str().unwrap().contains(suspension),
                    "{body}"
                );
            }
        }
    }
    // Resume of an ACTIVE card, suspend of a SUSPENDED card with another reason.
    // (A resume with the code that made it ACTIVE is a retry, answered 200.)
    let retry = operate(&app, &token, "card-1", "resume", code("CARD_FOUND")).await;
    assert_eq!(retry.status(), 200);
    let response = operate(&app, &token, "card-1", "resume", code("ISSUER_DECISION")).await;
    assert_error(response, 403, "INVALID_STATE", "ACTIVE").await;
    let response = operate(&app, &token, "card-2", "suspend", code("FRAUD")).await;
    assert_error(response, 403, "INVALID_STATE", "CARD_LOST").await;
}

#[tokio::test]
async fn each_operation_takes_its_codes_and_refuses_the_others_as_values() {
    let (app, token) = setup().await;
    let refused = [
        ("suspend", "CARD_FOUND"),
        ("resume", "FRAUD"),
        ("delete", "EXPIRY"),
        ("replace", "CLOSED_CARD"),
        ("renew", "CARD_LOST"),
        ("activate", "CARD_STOLEN"),
        ("suspend", "LOST"),
    ];
    register(&app, &token, "c1", "k0", 0).await;
    for (op, c) in refused {
        let response = operate(&app, &token, "k0", op, code(c)).await;
        assert_error(response, 400, "FIELD_INVALID_VALUE", "reasonCode").await;
    }
    for op in ["suspend", "resume", "delete", "replace"] {
        let response = operate(&app, &token, "k0", op, json!({})).await;
        assert_error(response, 400, "FIELD_INVALID_FORMAT", "reasonCode").await;
    }
    let dollar = json!({"reasonCode": "CARD_LOST", "reason": "lost $5"});
    let response = operate(&app, &token, "k0", "suspend", dollar).await;
    let body = assert_error(response, 400, "FIELD_INVALID_FORMAT", "reason").await;
    assert!(
        !body.to_string().contains("$5"),
        "a refused value is never echoed"
    );
    let unknown = json!({"reasonCode": "CARD_LOST", "encryptedData": "a.b.c.d.e"});
    let response = operate(&app, &token, "k0", "suspend", unknown).await;
    assert_error(response, 400, "FIELD_INVALID_FORMAT", "encryptedData").await;
    let deletions = [
        "CLOSED_ACCOUNT",
        "CLOSED_CARD",
        "CARD_LOST",
        "CARD_STOLEN",
        "FRAUD",
        "USER_DECISION",
        "ISSUER_DECISION",
    ];
    for (i, c) in (1..).zip(deletions) {
        register(&app, &token, "c1", &format!("d{i}"), i).await;
        ok(&app, &token, &format!("d{i}"), "delete", code(c)).await;
    }
    let replacements = [
        "CARD_LOST",
        "CARD_STOLEN",
        "CARD_BROKEN",
        "FRAUD",
        "ISSUER_DECISION",
        "USER_DECISION",
    ];
    for (i, c) in (20..).zip(replacements) {
        register(&app, &token, "c1", &format!("r{i}"), i).await;
        let body = json!({"reasonCode": c, "newCardId": format!("n{i}"), "encryptedData": jwe(&app, i + 100, 3).await});
        ok(&app, &token, &format!("r{i}"), "replace", body).await;
    }
    for (i, c) in [(40, "EXPIRY"), (41, "ISSUER_DECISION")] {
        register(&app, &token, "c1", &format!("w{i}"), i).await;
        let body = json!({"reasonCode": c, "encryptedData": jwe(&app, i, 4).await});
        ok(&app, &token, &format!("w{i}"), "renew", body).await;
    }
    for c in ["ISSUER_DECISION", "USER_DECISION"] {
        let id = create(&app, &token, "c2", "INACTIVE").await;
        ok(&app, &token, &id, "activate", code(c)).await;
        assert_eq!(card(&app, &token, &id).await["state"], "ACTIVE");
        let response = operate(
            &app,
            &token,
            &id,
            "activate",
            code(if c == "USER_DECISION" {
                "ISSUER_DECISION"
            } else {
                "USER_DECISION"
            }),
        )
        .await;
        assert_error(response, 403, "INVALID_STATE", "ACTIVE").await;
    }
}

#[tokio::test]
async fn both_separators_and_both_api_versions_answer_in_their_own_bodies() {
    let (app, token) = setup().await;
    register(&app, &token, "c1", "k1", 1).await;
    let slash = op_url(&app, "v2", "k1", "suspend", '/');
    let reply: Value = app
        .post_json(&slash, &token, &code("USER_DECISION"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reply["cardId"], "k1");
    let v1 = op_url(&app, "v1", "k1", "resume", '/');
    let response = app.post_json(&v1, &token, &code("CARD_FOUND")).await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert!(body.get("errorCode").is_none(), "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("INVALID_STATE: "),
        "{body}"
    );
    let v1 = op_url(&app, "v1", "k1", "resume", ':');
    let response = app.post_json(&v1, &token, &code("USER_DECISION")).await;
    assert_eq!(response.status(), 200);
    let v1_reply: Value = response.json().await.unwrap();
    let v1 = op_url(&app, "v1", "k1", "suspend", ':');
    let missing = app.post_json(&v1, &token, &json!({})).await;
    let text: Value = missing.json().await.unwrap();
    assert!(text["error"]
        .as_str()
        .unwrap()
        .starts_with("FIELD_INVALID_FORMAT: reasonCode"));
    let renew = json!({"encryptedData": jwe(&app, 1, 5).await});
    let response = app
        .post_json(&op_url(&app, "v1", "k1", "renew", '/'), &token, &renew)
        .await;
    assert_eq!(response.status(), 200, "v1 renew takes EXPIRY by default");
    assert_eq!(card(&app, &token, "k1").await["expiry"], exp_in(5));
    let response = app
        .post_json(
            &op_url(&app, "v1", "k1", "delete", '/'),
            &token,
            &code("CLOSED_CARD"),
        )
        .await;
    assert_eq!(response.status(), 200);
    // An operation that does not exist: 404 in the route's body.
    for (version, op) in [("v1", "replace"), ("v1", "bogus"), ("v2", "bogus")] {
        for sep in [':', '/'] {
            let response = app
                .post_json(&op_url(&app, version, "k1", op, sep), &token, &json!({}))
                .await;
            assert_eq!(response.status(), 404, "{version} {op}");
            let body: Value = response.json().await.unwrap();
            if version == "v1" {
                assert!(body.get("errorCode").is_none(), "{body}");
                assert!(body["error"].as_str().unwrap().starts_with("NOT_FOUND"));
            } else {
                assert_eq!(body["errorCode"], "NOT_FOUND", "{body}");
            }
        }
    }
    let entries = trail(&app, &token, "c1").await;
    let names: Vec<&str> = entries
        .iter()
        .map(|o| o["operation"].as_str().unwrap())
        .collect();
    assert_eq!(
        names[..4],
        ["CARD_DELETE", "CARD_RENEW", "CARD_RESUME", "CARD_SUSPEND"]
    );
    assert_eq!(entries[2]["operationId"], v1_reply["operationId"]);
    assert_eq!(entries[2]["reasonCode"], "USER_DECISION");
}

#[tokio::test]
async fn an_identical_retry_answers_the_first_operation_and_changes_nothing() {
    let (app, token) = setup().await;
    register(&app, &token, "c1", "k1", 1).await;
    let first = ok(&app, &token, "k1", "suspend", code("CARD_LOST")).await;
    let before = card(&app, &token, "k1").await;
    let again = ok(&app, &token, "k1", "suspend", code("CARD_LOST")).await;
    assert_eq!(again["operationId"], first["operationId"]);
    assert_eq!(
        card(&app, &token, "k1").await["updatedAt"],
        before["updatedAt"]
    );
    assert_eq!(
        trail(&app, &token, "c1").await.len(),
        3,
        "REGISTER, CARD_REGISTER, one CARD_SUSPEND"
    );
    let deleted = ok(&app, &token, "k1", "delete", code("CARD_LOST")).await;
    let again = ok(&app, &token, "k1", "delete", code("CARD_LOST")).await;
    assert_eq!(again["operationId"], deleted["operationId"]);
    let response = operate(&app, &token, "k1", "delete", code("FRAUD")).await;
    assert_error(response, 403, "INVALID_STATE", "DELETED").await;
    let entry: Value = app
        .get(
            &app.url(&format!(
                "/banking/v1/issuers/{ISSUER}/operations/{}",
                deleted["operationId"].as_str().unwrap()
            )),
            &token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (entry["operation"].as_str(), entry["cardId"].as_str()),
        (Some("CARD_DELETE"), Some("k1"))
    );
}

#[tokio::test]
async fn delete_shreds_the_card_and_its_pan_is_never_registered_again() {
    let (app, token) = setup().await;
    register(&app, &token, "c1", "k1", 1).await;
    ok(&app, &token, "k1", "delete", code("CLOSED_ACCOUNT")).await;
    let empty = if on_postgres() { "''::bytea" } else { "X''" };
    let sealed = app
        .place
        .bytes(&format!(
            "SELECT COALESCE(sealed, {empty}) FROM cards WHERE card_id = 'k1'"
        ))
        .await;
    assert!(sealed.is_empty(), "the sealed PAN is shredded");
    let read = card(&app, &token, "k1").await;
    assert_eq!(
        (read["state"].as_str(), read["stateReason"].as_str()),
        (Some("DELETED"), Some("CLOSED_ACCOUNT"))
    );
    assert_eq!(read["last4"], test_pan(1)[12..]);
    let body = json!({"consumerId": "c1", "cardProductId": "visa-classic", "encryptedData": jwe(&app, 1, 3).await});
    let response = app.put_json(&app.card_url("k2"), &token, &body).await;
    assert_error(response, 409, "CARD_CONFLICT", "PAN").await;
    // A renew of a DELETED card is refused for its state, before its PAN is compared.
    let renew = json!({"encryptedData": jwe(&app, 7, 4).await});
    let response = operate(&app, &token, "k1", "renew", renew).await;
    assert_error(response, 403, "INVALID_STATE", "DELETED").await;
}

#[tokio::test]
async fn renew_a_registered_card_with_its_pan_and_a_created_one_until_activate() {
    let (app, token) = setup().await;
    register(&app, &token, "c1", "k1", 1).await;
    let other = json!({"encryptedData": jwe(&app, 2, 4).await});
    let response = operate(&app, &token, "k1", "renew", other).await;
    assert_error(response, 400, "FIELD_INVALID_VALUE", "encryptedData").await;
    let earlier = json!({"encryptedData": jwe(&app, 1, 2).await});
    let response = operate(&app, &token, "k1", "renew", earlier).await;
    assert_error(response, 400, "FIELD_INVALID_VALUE", "encryptedData").await;
    let response = operate(&app, &token, "k1", "renew", json!({})).await;
    assert_error(response, 400, "FIELD_INVALID_FORMAT", "encryptedData").await;
    ok(
        &app,
        &token,
        "k1",
        "renew",
        json!({"encryptedData": jwe(&app, 1, 4).await}),
    )
    .await;
    let read = card(&app, &token, "k1").await;
    assert_eq!(read["expiry"], exp_in(4));
    assert!(read.get("ongoingOperation").is_none() && read.get("renewedExpiry").is_none());

    let created = create(&app, &token, "c2", "ACTIVE").await;
    let before = card(&app, &token, &created).await;
    ok(&app, &token, &created, "renew", json!({})).await;
    let renewing = card(&app, &token, &created).await;
    assert_eq!(renewing["ongoingOperation"], "RENEWAL");
    assert_eq!(renewing["expiry"], before["expiry"]);
    assert_eq!(renewing["renewedExpiry"], exp_in(3));
    let list: Value = app
        .get(&(app.consumer_url("c2") + "/cards"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["cards"][0]["ongoingOperation"], "RENEWAL");
    let v1: Value = app
        .get(
            &app.url(&format!("/banking/v1/issuers/{ISSUER}/cards/{created}")),
            &token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v1["renewedExpiry"], exp_in(3));
    ok(&app, &token, &created, "activate", json!({})).await;
    let active = card(&app, &token, &created).await;
    assert_eq!(active["expiry"], exp_in(3));
    assert!(active.get("ongoingOperation").is_none(), "{active}");
}

#[tokio::test]
async fn replace_makes_a_new_active_card_in_both_models() {
    let (app, token) = setup().await;
    register(&app, &token, "c1", "k1", 1).await;
    register(&app, &token, "c1", "k2", 2).await;
    let body = |id: Option<&str>, pan: String| {
        let mut b = json!({"reasonCode": "CARD_STOLEN", "encryptedData": pan});
        if let Some(id) = id {
            b["newCardId"] = id.into();
        }
        b
    };
    let response = operate(
        &app,
        &token,
        "k1",
        "replace",
        body(None, jwe(&app, 3, 3).await),
    )
    .await;
    assert_error(response, 400, "FIELD_INVALID_FORMAT", "newCardId").await;
    let response = operate(
        &app,
        &token,
        "k1",
        "replace",
        body(Some("k2"), jwe(&app, 3, 3).await),
    )
    .await;
    assert_error(response, 409, "CARD_CONFLICT", "newCardId").await;
    let response = operate(
        &app,
        &token,
        "k1",
        "replace",
        body(Some("k1"), jwe(&app, 3, 3).await),
    )
    .await;
    assert_error(response, 409, "CARD_CONFLICT", "the card being replaced").await;
    assert_eq!(card(&app, &token, "k1").await["state"], "ACTIVE");
    let reply = ok(
        &app,
        &token,
        "k1",
        "replace",
        body(Some("k3"), jwe(&app, 3, 3).await),
    )
    .await;
    assert_eq!(reply["cardId"], "k3");
    let (old, new) = (
        card(&app, &token, "k1").await,
        card(&app, &token, "k3").await,
    );
    assert_eq!(
        (
            old["state"].as_str(),
            old["replacedBy"].as_str(),
            old["stateReason"].as_str()
        ),
        (Some("REPLACED"), Some("k3"), Some("CARD_STOLEN"))
    );
    assert_eq!(
        (new["state"].as_str(), new["replaces"].as_str()),
        (Some("ACTIVE"), Some("k1"))
    );
    assert_eq!(new["last4"], test_pan(3)[12..]);
    let names: Vec<String> = trail(&app, &token, "c1")
        .await
        .iter()
        .map(|o| o["operation"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names[..2], ["CARD_REGISTER", "CARD_REPLACE"]);
    // The REPLACED card's id may be reused; its PAN never.
    let reuse = json!({"consumerId": "c1", "cardProductId": "visa-classic", "encryptedData": jwe(&app, 1, 3).await});
    let response = app.put_json(&app.card_url("k1"), &token, &reuse).await;
    assert_error(response, 409, "CARD_CONFLICT", "PAN").await;
    register(&app, &token, "c1", "k1", 4).await;
    assert_eq!(card(&app, &token, "k1").await["state"], "ACTIVE");

    let created = create(&app, &token, "c2", "ACTIVE").await;
    let reply = ok(&app, &token, &created, "replace", code("CARD_LOST")).await;
    let new_id = reply["cardId"].as_str().unwrap();
    assert!(new_id.starts_with("crd_") && new_id != created);
    let new = card(&app, &token, new_id).await;
    assert_eq!(
        (
            new["replaces"].as_str(),
            new["cardProductId"].as_str(),
            new["consumerId"].as_str()
        ),
        (Some(created.as_str()), Some("visa-classic"), Some("c2"))
    );
    let named = ok(
        &app,
        &token,
        new_id,
        "replace",
        json!({"reasonCode": "FRAUD", "newCardId": "mine-1"}),
    )
    .await;
    assert_eq!(named["cardId"], "mine-1");
}

#[tokio::test]
async fn another_issuers_card_is_not_found_and_a_deleted_consumers_card_is_refused() {
    let (app, token) = setup().await;
    register(&app, &token, "c1", "k1", 1).await;
    let other = app.token_for(&app.other).await;
    let url = app.url(&format!(
        "/banking/v2/issuers/{OTHER_ISSUER}/cards/k1/operations:suspend"
    ));
    let response = app.post_json(&url, &other, &code("CARD_LOST")).await;
    assert_error(response, 404, "CARD_NOT_FOUND", "Card not found.").await;
    let response = operate(&app, &token, "nope", "suspend", code("CARD_LOST")).await;
    assert_error(response, 404, "CARD_NOT_FOUND", "Card not found.").await;
    // v1 answers in the texts D1 publishes for these two refusals (contract section 7).
    let v1 = |card: &str| op_url(&app, "v1", card, "suspend", ':');
    let response = app.post_json(&v1("nope"), &token, &code("CARD_LOST")).await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"error": "CARD_NOT_FOUND: Card not found."}));
    assert_eq!(app.delete_consumer(&token, "c1").await.status(), 204);
    let response = operate(&app, &token, "k1", "suspend", code("CARD_LOST")).await;
    assert_error(response, 403, "INVALID_STATE", "consumer").await;
    let response = app.post_json(&v1("k1"), &token, &code("CARD_LOST")).await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": format!("INVALID_STATE: {CONSUMER_DELETED}")})
    );
}

async fn notifications(fake: &FakeBackend, count: usize) -> Vec<Value> {
    for _ in 0..200 {
        let items: Vec<Value> = fake
            .notifications()
            .iter()
            .flat_map(|n| n["operations"].as_array().cloned().unwrap_or_default())
            .collect();
        if items.len() >= count {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "expected {count} notifications, got {:?}",
        fake.notifications()
    );
}

#[tokio::test]
async fn each_operation_is_notified_to_the_issuer_backend_with_its_operation_id() {
    let (app, token) = setup().await;
    let fake = FakeBackend::start(Answer::Status(404)).await;
    set_backend(&app, &fake.url, false, 0).await;
    register(&app, &token, "c1", "k1", 1).await;
    let mut ids = vec![];
    for (op, body) in [
        ("suspend", code("USER_DECISION")),
        ("resume", code("USER_DECISION")),
        ("renew", json!({"encryptedData": jwe(&app, 1, 4).await})),
        (
            "replace",
            json!({"reasonCode": "CARD_LOST", "newCardId": "k2", "encryptedData": jwe(&app, 2, 3).await}),
        ),
        ("delete", code("CLOSED_CARD")),
    ] {
        let card = if op == "delete" { "k2" } else { "k1" };
        ids.push((
            op,
            ok(&app, &token, card, op, body).await["operationId"].clone(),
        ));
    }
    let created = create(&app, &token, "c2", "INACTIVE").await;
    ids.push((
        "activate",
        ok(&app, &token, &created, "activate", json!({})).await["operationId"].clone(),
    ));
    // REGISTER k1, five operations, REGISTER k2 for the replace, CREATE, ACTIVATE.
    let items = notifications(&fake, 9).await;
    for (op, id) in &ids {
        let item = items
            .iter()
            .find(|i| i["operationId"] == *id)
            .unwrap_or_else(|| panic!("{op} not notified: {items:?}"));
        assert_eq!(item["operation"], op.to_uppercase());
        assert_eq!(item["status"], "SUCCESSFUL");
        assert!(item["startTime"].is_string() && item["endTime"].is_string());
    }
    let replace = items.iter().find(|i| i["operation"] == "REPLACE").unwrap();
    assert_eq!(
        (replace["cardId"].as_str(), replace["reasonCode"].as_str()),
        (Some("k1"), Some("CARD_LOST"))
    );
    let registered: Vec<&str> = items
        .iter()
        .filter(|i| i["operation"] == "REGISTER")
        .map(|i| i["cardId"].as_str().unwrap())
        .collect();
    assert_eq!(registered, ["k1", "k2"]);
    assert!(items
        .iter()
        .any(|i| i["operation"] == "CREATE" && i["cardId"] == created.as_str()));
    let order: Vec<&str> = items
        .iter()
        .filter(|i| i["cardId"] == "k1")
        .map(|i| i["operation"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        ["REGISTER", "SUSPEND", "RESUME", "RENEW", "REPLACE"],
        "in order per card"
    );
}
