//! The card calls (contract section 6) and the consumers they register implicitly.

use serde_json::{json, Value};

use crate::harness::{
    assert_consumer_deleted, assert_error, encrypt_for, full_pi, future_exp, logs, spawn_app,
    TestApp, ISSUER,
};
use d1_domain::card::Scheme;

const PAN: &str = "4111111111111111";

async fn setup() -> (TestApp, String) {
    let app = spawn_app().await;
    app.add_product("visa-classic", Scheme::Visa, "411111")
        .await;
    let token = app.token().await;
    (app, token)
}

async fn card_body(app: &TestApp, consumer: &str, pan: &str) -> Value {
    let jwe = encrypt_for(app, &json!({"pan": pan, "exp": future_exp()}), "A256GCM").await;
    json!({"consumerId": consumer, "cardProductId": "visa-classic", "encryptedData": jwe})
}

async fn trail(app: &TestApp, token: &str, consumer: &str) -> Vec<String> {
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
        .map(|o| o["operation"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn register_card_registers_an_unknown_consumer_implicitly() {
    let (app, token) = setup().await;
    let response = app
        .put_json(
            &app.card_url("card-1"),
            &token,
            &card_body(&app, "c1", PAN).await,
        )
        .await;
    assert_eq!(response.status(), 204, "{}", response.text().await.unwrap());
    let consumer: Value = app
        .get(&app.consumer_url("c1"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(consumer["state"], "ACTIVE");
    assert_eq!(consumer["personalInformationSource"], "ISSUER");
    assert_eq!(
        trail(&app, &token, "c1").await,
        ["CARD_REGISTER", "REGISTER"]
    );
    let card = app
        .get(&app.card_url("card-1"), &token)
        .await
        .text()
        .await
        .unwrap();
    let card: Value = serde_json::from_str(&card).unwrap();
    assert_eq!(card["consumerId"], "c1");
    assert_eq!(card["last4"], "1111");
    assert_eq!(card["scheme"], "VISA");
    assert_eq!(card["expiry"], future_exp());
    assert_eq!(card["state"], "ACTIVE");
    assert!(!card.to_string().contains(PAN));
    let list: Value = app
        .get(&(app.consumer_url("c1") + "/cards"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["cards"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_identical_retry_is_204_and_any_other_clash_is_409() {
    let (app, token) = setup().await;
    app.register(&token, "c1", full_pi()).await;
    let body = card_body(&app, "c1", PAN).await;
    assert_eq!(
        app.put_json(&app.card_url("card-1"), &token, &body)
            .await
            .status(),
        204
    );
    assert_eq!(
        app.put_json(&app.card_url("card-1"), &token, &body)
            .await
            .status(),
        204
    );
    assert_eq!(
        trail(&app, &token, "c1").await,
        ["CARD_REGISTER", "REGISTER"]
    );
    let mut inactive = body.clone();
    inactive["state"] = json!("INACTIVE");
    assert_eq!(
        app.put_json(&app.card_url("card-1"), &token, &inactive)
            .await
            .status(),
        204
    );
    let card: Value = app
        .get(&app.card_url("card-1"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(card["state"], "INACTIVE");
    let other_pan = card_body(&app, "c1", "4111111111111129").await;
    assert_error(
        app.put_json(&app.card_url("card-1"), &token, &other_pan)
            .await,
        409,
        "CARD_CONFLICT",
        "",
    )
    .await;
    assert_error(
        app.put_json(&app.card_url("card-2"), &token, &body).await,
        409,
        "CARD_CONFLICT",
        "",
    )
    .await;
    let other_consumer = card_body(&app, "c2", PAN).await;
    assert_error(
        app.put_json(&app.card_url("card-1"), &token, &other_consumer)
            .await,
        409,
        "CARD_CONFLICT",
        "",
    )
    .await;
    assert_eq!(
        app.get(&app.consumer_url("c2"), &token).await.status(),
        404,
        "a refused card registers no consumer"
    );
}

#[tokio::test]
async fn delete_cascades_and_a_deleted_pan_never_returns() {
    let (app, token) = setup().await;
    app.put_json(
        &app.card_url("card-1"),
        &token,
        &card_body(&app, "c1", PAN).await,
    )
    .await;
    app.put_json(
        &app.card_url("card-2"),
        &token,
        &card_body(&app, "c1", "4111111111111129").await,
    )
    .await;
    let response = app.delete_consumer(&token, "c1").await;
    assert_eq!(response.status(), 204);
    let card: Value = app
        .get(&app.card_url("card-1"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(card["state"], "DELETED");
    assert_eq!(card["last4"], "1111");
    let kinds = trail(&app, &token, "c1").await;
    assert_eq!(kinds.iter().filter(|k| *k == "CARD_DELETE").count(), 2);
    assert!(kinds.contains(&"DELETE".to_owned()));
    // A DELETED consumer takes no new card.
    let response = app
        .put_json(
            &app.card_url("card-3"),
            &token,
            &card_body(&app, "c1", "4111111111111137").await,
        )
        .await;
    assert_consumer_deleted(response).await;
    // Registered again, it starts fresh; the deleted PAN is refused under any cardId, and a
    // deleted cardId may carry another PAN.
    app.register(&token, "c1", serde_json::Value::Null).await;
    let response = app
        .put_json(
            &app.card_url("card-9"),
            &token,
            &card_body(&app, "c1", PAN).await,
        )
        .await;
    assert_error(
        response,
        409,
        "CARD_CONFLICT",
        "the PAN is registered to another card, or was deleted",
    )
    .await;
    let response = app
        .put_json(
            &app.card_url("card-1"),
            &token,
            &card_body(&app, "c1", "4111111111111137").await,
        )
        .await;
    assert_eq!(response.status(), 204);
    let list: Value = app
        .get(&(app.consumer_url("c1") + "/cards"), &token)
        .await
        .json()
        .await
        .unwrap();
    let cards = list["cards"].as_array().unwrap();
    assert_eq!(cards.len(), 1, "{list}");
    assert_eq!(cards[0]["last4"], "1137");
}

#[tokio::test]
async fn bad_card_input_gets_d1_errors() {
    let (app, token) = setup().await;
    let url = app.card_url("card-1");
    let jwe = |payload: Value, enc: &'static str| {
        let app = &app;
        async move { encrypt_for(app, &payload, enc).await }
    };
    let body = |data: String| json!({"consumerId": "c1", "cardProductId": "visa-classic", "encryptedData": data});
    let good = jwe(json!({"pan": PAN, "exp": future_exp()}), "A256GCM").await;
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            body(jwe(json!({"pan": PAN, "exp": future_exp()}), "A128GCM").await),
            "FIELD_INVALID_VALUE",
            "encryptedData",
        ),
        (
            body(
                jwe(
                    json!({"pan": "4111111111111112", "exp": future_exp()}),
                    "A256GCM",
                )
                .await,
            ),
            "FIELD_INVALID_VALUE",
            "encryptedData",
        ),
        (
            body(jwe(json!({"pan": PAN, "exp": "1399"}), "A256GCM").await),
            "FIELD_INVALID_VALUE",
            "encryptedData",
        ),
        (
            body(jwe(json!({"pan": PAN}), "A256GCM").await),
            "FIELD_INVALID_VALUE",
            "encryptedData",
        ),
        (
            body(
                jwe(
                    json!({"pan": PAN, "exp": future_exp(), "cvv": "123"}),
                    "A256GCM",
                )
                .await,
            ),
            "FIELD_INVALID_VALUE",
            "encryptedData",
        ),
        (
            body(good[..good.len() - 4].to_owned()),
            "FIELD_INVALID_VALUE",
            "encryptedData",
        ),
        (
            body(json!({"pan": PAN, "exp": "1230"}).to_string()),
            "FIELD_INVALID_FORMAT",
            "encryptedData",
        ),
        // Five parts, but not base64url, or a header that is not JSON: not a compact JWE.
        (
            body("a!.b.c.d.e".to_owned()),
            "FIELD_INVALID_FORMAT",
            "encryptedData: is not a compact JWE",
        ),
        (
            body(format!("bm90IGpzb24{}", &good[good.find('.').unwrap()..])),
            "FIELD_INVALID_FORMAT",
            "encryptedData: is not a compact JWE",
        ),
        (
            json!({"consumerId": "c1", "cardProductId": "nope", "encryptedData": good}),
            "FIELD_INVALID_VALUE",
            "cardProductId",
        ),
        (
            json!({"consumerId": "c1", "cardProductId": "visa-classic"}),
            "FIELD_INVALID_FORMAT",
            "encryptedData",
        ),
        (
            json!({"consumerId": "c1", "cardProductId": "visa-classic", "encryptedData": good, "state": "LOST"}),
            "FIELD_INVALID_VALUE",
            "state",
        ),
    ];
    for (request, code, field) in cases {
        let response = app.put_json(&url, &token, &request).await;
        assert_error(response, 400, code, field).await;
    }
    // A flipped tag byte.
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let tag = parts[4].clone();
    parts[4] = format!(
        "{}{}",
        if tag.starts_with('A') { "B" } else { "A" },
        &tag[1..]
    );
    let response = app.put_json(&url, &token, &body(parts.join("."))).await;
    assert_error(response, 400, "FIELD_INVALID_VALUE", "encryptedData").await;
    // An unknown kid.
    let other = d1_crypto::ec::AgreementKey::generate().unwrap();
    let jwk = serde_json::to_value(other.public_key().to_jwk(Some("nobody"), None, None)).unwrap();
    let unknown =
        crate::harness::encrypt_to(&jwk, &json!({"pan": PAN, "exp": future_exp()}), "A256GCM");
    assert_error(
        app.put_json(&url, &token, &body(unknown)).await,
        400,
        "FIELD_INVALID_VALUE",
        "encryptedData",
    )
    .await;
    // Card ids.
    let response = app
        .put_json(&app.card_url(&"c".repeat(49)), &token, &body(good.clone()))
        .await;
    assert_error(response, 400, "FIELD_INVALID_FORMAT", "cardId").await;
    let response = app.put_json(&app.card_url(PAN), &token, &body(good)).await;
    assert_error(response, 400, "FIELD_INVALID_VALUE", "cardId").await;
    assert_eq!(
        app.get(&app.consumer_url("c1"), &token).await.status(),
        404,
        "no refusal registered the consumer"
    );
}

#[tokio::test]
async fn create_card_allocates_a_pan_in_the_bin_and_replays_by_idempotency_key() {
    let (app, token) = setup().await;
    app.add_product("amex-gold", Scheme::Amex, "378282").await;
    let url = app.url(&format!("/banking/v2/issuers/{ISSUER}/cards"));
    let body =
        json!({"consumerId": "c1", "cardProductId": "amex-gold", "cardholderName": "ADA LOVELACE"});
    let response = app.post_json(&url, &token, &body).await;
    assert_error(response, 404, "CONSUMER_NOT_FOUND", "consumer not found").await;
    app.register(&token, "c1", serde_json::Value::Null).await;
    let send = |body: Value, key: &'static str| {
        let app = &app;
        let (url, token) = (url.clone(), token.clone());
        async move {
            app.client
                .post(url)
                .bearer_auth(token)
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let first = send(body.clone(), "idem-1").await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let card_id = first["cardId"].as_str().unwrap().to_owned();
    assert!(
        card_id.starts_with("crd_") && card_id.len() == 30,
        "{card_id}"
    );
    let again: Value = send(body.clone(), "idem-1").await.json().await.unwrap();
    assert_eq!(again["cardId"], card_id.as_str());
    let mut other = body.clone();
    other["cardholderName"] = json!("CHARLES BABBAGE");
    assert_error(
        send(other, "idem-1").await,
        409,
        "CARD_CONFLICT",
        "Idempotency-Key was used with another request",
    )
    .await;
    let card: Value = app
        .get(&app.card_url(&card_id), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(card["scheme"], "AMEX");
    assert_eq!(card["cardProductId"], "amex-gold");
    assert_eq!(trail(&app, &token, "c1").await, ["CARD_CREATE", "REGISTER"]);
    let bad = json!({"consumerId": "c1", "cardProductId": "amex-gold", "cardholderName": "Ada 1"});
    assert_error(
        app.post_json(&url, &token, &bad).await,
        400,
        "FIELD_INVALID_FORMAT",
        "cardholderName",
    )
    .await;
}

#[tokio::test]
async fn a_rotated_key_keeps_the_old_kid_working_until_it_is_retired() {
    let (app, token) = setup().await;
    let old_jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let old_key = old_jwks["keys"][0].clone();
    let new_kid = app
        .state
        .keyring
        .rotate(app.state.store.as_ref())
        .await
        .unwrap();
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        jwks["keys"][0]["kid"],
        new_kid.as_str(),
        "issuers encrypt to the newest key"
    );
    let with_old = crate::harness::encrypt_to(
        &old_key,
        &json!({"pan": PAN, "exp": future_exp()}),
        "A256GCM",
    );
    let body =
        json!({"consumerId": "c1", "cardProductId": "visa-classic", "encryptedData": with_old});
    assert_eq!(
        app.put_json(&app.card_url("card-1"), &token, &body)
            .await
            .status(),
        204
    );
    app.state
        .store
        .retire_service_key(old_key["kid"].as_str().unwrap())
        .await
        .unwrap();
    app.state
        .keyring
        .reload(app.state.store.as_ref())
        .await
        .unwrap();
    let with_old = crate::harness::encrypt_to(
        &old_key,
        &json!({"pan": "4111111111111129", "exp": future_exp()}),
        "A256GCM",
    );
    let body =
        json!({"consumerId": "c1", "cardProductId": "visa-classic", "encryptedData": with_old});
    assert_error(
        app.put_json(&app.card_url("card-2"), &token, &body).await,
        400,
        "FIELD_INVALID_VALUE",
        "encryptedData",
    )
    .await;
    assert!(
        app.state.store.retire_service_key(&new_kid).await.is_err(),
        "the last key cannot be retired"
    );
}

#[tokio::test]
async fn no_pan_in_any_form_reaches_the_disk_or_the_logs() {
    let (app, token) = setup().await;
    let canary = "4111111111119999";
    assert!(d1_domain::guard::luhn_valid(canary));
    let response = app
        .put_json(
            &app.card_url("canary-card"),
            &token,
            &card_body(&app, "canary-c", canary).await,
        )
        .await;
    assert_eq!(response.status(), 204);
    let logs = logs();
    let spaced = "4111 1111 1111 9999";
    let json_form = format!("\"pan\":\"{canary}\"");
    for form in [canary, spaced, json_form.as_str()] {
        assert!(!logs.contains(form), "{form} in the logs");
        let found = app.place.holding(form.as_bytes()).await;
        assert!(found.is_empty(), "{form} at rest in {found:?}");
    }
}
