//! The v1 API (contract section 7), with v1 error bodies.

use serde_json::{json, Value};

use crate::harness::{encrypt_for, spawn_app, TestApp, ISSUER};
use d1_domain::card::{Pan, Scheme};

fn exp() -> String {
    let today = time::OffsetDateTime::now_utc();
    format!(
        "{:02}{:02}",
        u8::from(today.month()),
        (today.year() + 2) % 100
    )
}

fn v1(app: &TestApp, path: &str) -> String {
    app.url(&format!("/banking/v1/issuers/{ISSUER}{path}"))
}

/// A distinct Luhn-valid PAN per index.
fn pan(i: u32) -> String {
    let mut n = i;
    let mut digits = || {
        let d = u8::try_from(n % 10).unwrap();
        n /= 10;
        d
    };
    Pan::allocate(&format!("4{:07}", i % 10_000_000), 16, &mut digits)
        .digits()
        .to_owned()
}

async fn card(app: &TestApp, id: &str, pan: &str) -> Value {
    let jwe = encrypt_for(app, &json!({"pan": pan, "exp": exp()}), "A256GCM").await;
    json!({"cardId": id, "cardProductId": "visa", "encryptedData": jwe, "state": "ACTIVE"})
}

async fn assert_v1_error(response: reqwest::Response, status: u16, mentions: &str) {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert!(body.get("errorCode").is_none(), "{body}");
    assert!(
        body["error"].as_str().unwrap().contains(mentions),
        "{body} should mention {mentions}"
    );
}

#[tokio::test]
async fn v1_register_ignores_the_deprecated_state_and_stores_no_pi() {
    let app = spawn_app().await;
    let token = app.token().await;
    let response = app
        .put_json(
            &v1(&app, "/consumers/c1"),
            &token,
            &json!({"state": "ACTIVE"}),
        )
        .await;
    assert_eq!(response.status(), 204);
    let body: Value = app
        .get(&app.consumer_url("c1"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["personalInformationSource"], "ISSUER");
    let response = app
        .put_json(
            &v1(&app, "/consumers/c1"),
            &token,
            &json!({"personalInformation": {}}),
        )
        .await;
    assert_v1_error(response, 400, "FIELD_INVALID_FORMAT").await;
}

#[tokio::test]
async fn v1_cards_are_registered_all_or_nothing() {
    let app = spawn_app().await;
    app.add_product("visa", Scheme::Visa, "411111").await;
    let token = app.token().await;
    let url = v1(&app, "/consumers/c1/cards");
    let body = json!({"cards": [card(&app, "k1", &pan(1)).await, card(&app, "k2", &pan(2)).await]});
    assert_eq!(app.put_json(&url, &token, &body).await.status(), 204);
    let list: Value = app
        .get(&(app.consumer_url("c1") + "/cards"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["cards"].as_array().unwrap().len(), 2);
    // One clashing card (k4 reuses k1's PAN) and nothing of the call is stored.
    let body = json!({"cards": [card(&app, "k3", &pan(3)).await, card(&app, "k4", &pan(1)).await]});
    assert_v1_error(
        app.put_json(&url, &token, &body).await,
        409,
        "CARD_CONFLICT",
    )
    .await;
    assert_eq!(app.get(&app.card_url("k3"), &token).await.status(), 404);
    let body = json!({"cards": [card(&app, "k5", &pan(5)).await, card(&app, "k5", &pan(6)).await]});
    assert_v1_error(
        app.put_json(&url, &token, &body).await,
        400,
        "FIELD_INVALID_VALUE",
    )
    .await;
    let card: Value = app
        .get(&v1(&app, "/cards/k1"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(card["last4"], pan(1)[12..]);
}

#[tokio::test]
async fn v1_batches_over_the_limit_are_refused_cleanly() {
    let app = spawn_app().await;
    app.add_product("visa", Scheme::Visa, "411111").await;
    let token = app.token().await;
    let url = v1(&app, "/consumers/c1/cards");
    let one = card(&app, "k0", &pan(0)).await;
    let many: Vec<Value> = (0..101)
        .map(|i| {
            let mut c = one.clone();
            c["cardId"] = json!(format!("k{i}"));
            c
        })
        .collect();
    assert_v1_error(
        app.put_json(&url, &token, &json!({"cards": many})).await,
        400,
        "cards",
    )
    .await;
    let thousand: Vec<Value> = (0..1000)
        .map(|i| {
            let mut c = one.clone();
            c["cardId"] = json!(format!("k{i}"));
            c
        })
        .collect();
    assert_v1_error(
        app.put_json(&url, &token, &json!({"cards": thousand}))
            .await,
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
    assert_eq!(app.get(&app.consumer_url("c1"), &token).await.status(), 404);
}

#[tokio::test]
async fn v1_delete_cascades_and_a_deleted_consumer_starts_fresh_with_cards() {
    let app = spawn_app().await;
    app.add_product("visa", Scheme::Visa, "411111").await;
    let token = app.token().await;
    let url = v1(&app, "/consumers/c1/cards");
    assert_eq!(
        app.put_json(
            &url,
            &token,
            &json!({"cards": [card(&app, "k1", &pan(1)).await]})
        )
        .await
        .status(),
        204
    );
    let response = app
        .client
        .post(v1(&app, "/consumers/c1/operations/delete"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let card_view: Value = app
        .get(&v1(&app, "/cards/k1"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(card_view["state"], "DELETED");
    assert_eq!(
        app.put_json(
            &url,
            &token,
            &json!({"cards": [card(&app, "k2", &pan(2)).await]})
        )
        .await
        .status(),
        204
    );
    let consumer: Value = app
        .get(&app.consumer_url("c1"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(consumer["state"], "ACTIVE");
    let response = app
        .client
        .post(v1(&app, "/consumers/ghost/operations/delete"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_v1_error(response, 404, "CONSUMER_NOT_FOUND").await;
}
