//! Request bodies as a whole: a key given twice is refused in every body, the JWE plaintext
//! included; a refused value reaches neither the answer nor the logs; the body types are the
//! ones the OpenAPI document describes.

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{
    encrypt_bytes_to, encrypt_for, future_exp, jwe_key, logs, spawn_app, test_pan, TestApp, ISSUER,
};
use d1_domain::card::Scheme;

async fn setup() -> (TestApp, String) {
    let app = spawn_app().await;
    app.add_product("visa-classic", Scheme::Visa, "411111")
        .await;
    let token = app.token().await;
    (app, token)
}

fn v1(app: &TestApp, path: &str) -> String {
    app.url(&format!("/banking/v1/issuers/{ISSUER}{path}"))
}

/// Asserts a 400 `code` naming `field`, in either error body (v2 `errorCode`, v1 `CODE: …`).
async fn assert_refused(response: reqwest::Response, code: &str, field: &str) -> String {
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    let text = body["error"].as_str().unwrap().to_owned();
    match body.get("errorCode") {
        Some(given) => assert_eq!(given, code, "{body}"),
        None => assert!(text.starts_with(&format!("{code}: ")), "{body}"),
    }
    assert!(
        text.contains(&format!("{field}: ")),
        "{body} should name {field}"
    );
    text
}

#[tokio::test]
async fn a_key_given_twice_is_a_format_error_naming_it_in_every_body() {
    let (app, token) = setup().await;
    let jwe = encrypt_for(
        &app,
        &json!({"pan": test_pan(1), "exp": future_exp()}),
        "A256GCM",
    )
    .await;
    let consumer = app.consumer_url("c1");
    let cases = [
        (
            Method::PUT,
            consumer.clone(),
            r#"{"personalInformation": {"firstName": "Ada", "lastName": "First", "lastName": "Second"}}"#.to_owned(),
            "personalInformation.lastName",
        ),
        (
            Method::PUT,
            consumer.clone(),
            r#"{"personalInformation": {"firstName": "A"}, "personalInformation": {"firstName": "B"}}"#.to_owned(),
            "personalInformation",
        ),
        (
            Method::PUT,
            consumer.clone(),
            r#"{"personalInformation": {"mobilePhoneNumber": {"countryCode": "+33", "phoneNumber": "612345678", "phoneNumber": "612345679"}}}"#.to_owned(),
            "personalInformation.mobilePhoneNumber.phoneNumber",
        ),
        (
            Method::POST,
            consumer.clone() + "/operations/update",
            r#"{"personalInformation": {"residencyAddress": {"line1": "a", "line1": "b", "countryCode": "FR"}}}"#.to_owned(),
            "personalInformation.residencyAddress.line1",
        ),
        (
            Method::POST,
            consumer.clone() + "/operations/delete",
            r#"{"reason": "one", "reason": "two"}"#.to_owned(),
            "reason",
        ),
        (
            Method::PUT,
            app.card_url("card-1"),
            format!(r#"{{"consumerId": "c1", "consumerId": "c2", "cardProductId": "visa-classic", "encryptedData": "{jwe}"}}"#),
            "consumerId",
        ),
        (
            Method::POST,
            app.url(&format!("/banking/v2/issuers/{ISSUER}/cards")),
            r#"{"consumerId": "c1", "cardProductId": "visa-classic", "accounts": [{"number": "A1", "number": "A2", "currencyCode": "EUR"}]}"#.to_owned(),
            "accounts[0].number",
        ),
        (
            Method::PUT,
            v1(&app, "/consumers/c1"),
            r#"{"state": "ACTIVE", "state": "INACTIVE"}"#.to_owned(),
            "state",
        ),
        (
            Method::PUT,
            v1(&app, "/consumers/c1/cards"),
            format!(r#"{{"cards": [{{"cardId": "k1", "cardId": "k2", "cardProductId": "visa-classic", "encryptedData": "{jwe}"}}]}}"#),
            "cards[0].cardId",
        ),
        (
            Method::POST,
            v1(&app, "/cards/card-1/operations:clickToPayEnrolment"),
            r#"{"billingAddress": {"line1": "a", "countryCode": "FR", "countryCode": "DE"}}"#.to_owned(),
            "billingAddress.countryCode",
        ),
    ];
    for (method, url, body, field) in cases {
        let response = app.send_raw(method, &url, &token, body).await;
        assert_refused(response, "FIELD_INVALID_FORMAT", field).await;
    }
    assert_eq!(
        app.get(&consumer, &token).await.status(),
        404,
        "no refused body stored anything"
    );
    assert_eq!(app.get(&app.card_url("card-1"), &token).await.status(), 404);
    assert_eq!(app.get(&v1(&app, "/cards/k1"), &token).await.status(), 404);
}

#[tokio::test]
async fn a_jwe_plaintext_holding_a_key_twice_registers_nothing() {
    let (app, token) = setup().await;
    let key = jwe_key(&app).await;
    let exp = future_exp();
    let (first, second) = (test_pan(1), test_pan(2));
    let twice = |plain: String| encrypt_bytes_to(&key, plain.as_bytes(), "A256GCM");
    for plaintext in [
        format!(r#"{{"pan": "{first}", "pan": "{second}", "exp": "{exp}"}}"#),
        format!(r#"{{"pan": "{first}", "exp": "{exp}", "exp": "{exp}"}}"#),
        format!(r#"["{first}", "{exp}"]"#),
    ] {
        let data = twice(plaintext);
        let body =
            json!({"consumerId": "c1", "cardProductId": "visa-classic", "encryptedData": data});
        let response = app.put_json(&app.card_url("card-1"), &token, &body).await;
        let text = assert_refused(response, "FIELD_INVALID_VALUE", "encryptedData").await;
        assert!(!text.contains(&first[6..]) && !text.contains(&second[6..]));
        let body = json!({"cards": [{"cardId": "k1", "cardProductId": "visa-classic", "encryptedData": data}]});
        let response = app
            .put_json(&v1(&app, "/consumers/c1/cards"), &token, &body)
            .await;
        assert_refused(response, "FIELD_INVALID_VALUE", "cards[0].encryptedData").await;
    }
    assert_eq!(
        app.get(&app.consumer_url("c1"), &token).await.status(),
        404,
        "the refused card registered no consumer"
    );
    // The same card, its plaintext given once, is registered.
    let data = twice(format!(r#"{{"pan": "{first}", "exp": "{exp}"}}"#));
    let body = json!({"consumerId": "c1", "cardProductId": "visa-classic", "encryptedData": data});
    let response = app.put_json(&app.card_url("card-1"), &token, &body).await;
    assert_eq!(response.status(), 204);
}

const CANARIES: [&str; 10] = [
    "QzbodyA", "QzbodyB", "QzbodyC", "QzbodyD", "QzbodyE", "QzbodyF", "QzbodyG", "QzbodyH",
    "QzbodyI", "QzbodyJ",
];

#[tokio::test]
async fn a_refused_value_reaches_neither_the_answer_nor_the_logs() {
    let (app, token) = setup().await;
    let c = CANARIES;
    let key = jwe_key(&app).await;
    let exp = future_exp();
    let sealed = |plain: Value| encrypt_bytes_to(&key, plain.to_string().as_bytes(), "A256GCM");
    let consumer = app.consumer_url("c1");
    let card = app.card_url("card-1");
    let cases = [
        (
            Method::PUT,
            consumer.clone(),
            json!({"personalInformation": c[0]}),
        ),
        (
            Method::PUT,
            consumer.clone(),
            json!({"personalInformation": {"firstName": [c[1]]}}),
        ),
        (
            Method::PUT,
            consumer.clone(),
            json!({"personalInformation": {"language": c[2]}}),
        ),
        (
            Method::POST,
            consumer.clone() + "/operations/delete",
            json!({"reasonCode": c[3]}),
        ),
        (
            Method::PUT,
            card.clone(),
            json!({"consumerId": "c1", "cardProductId": "visa-classic", "encryptedData": [c[4]]}),
        ),
        (
            Method::PUT,
            card.clone(),
            json!({"consumerId": "c1", "cardProductId": "visa-classic",
                   "encryptedData": sealed(json!({"pan": c[5], "exp": exp}))}),
        ),
        (
            Method::PUT,
            card.clone(),
            json!({"consumerId": "c1", "cardProductId": "visa-classic",
                   "encryptedData": sealed(json!({"pan": [c[6]], "exp": exp}))}),
        ),
        (
            Method::POST,
            app.url(&format!("/banking/v2/issuers/{ISSUER}/cards")),
            json!({"consumerId": "c1", "cardProductId": "visa-classic", "state": c[7]}),
        ),
        (
            Method::PUT,
            v1(&app, "/consumers/c1/cards"),
            json!({"cards": c[8]}),
        ),
    ];
    for (method, url, body) in cases {
        let response = app.send_raw(method, &url, &token, body.to_string()).await;
        assert_eq!(response.status(), 400, "{body}");
        let text = response.text().await.unwrap();
        assert!(!text.contains("Qzbody"), "{text} echoes a refused value");
    }
    let twice = format!(
        r#"{{"personalInformation": {{"lastName": "{}", "lastName": "{}"}}}}"#,
        c[9], c[9]
    );
    let response = app.send_raw(Method::PUT, &consumer, &token, twice).await;
    assert_eq!(response.status(), 400);
    assert!(!response.text().await.unwrap().contains(c[9]));

    let logs = logs();
    assert!(logs.contains("request"), "logs were captured");
    for canary in CANARIES {
        assert!(!logs.contains(canary), "{canary} found in the logs");
        let found = app.place.holding(canary.as_bytes()).await;
        assert!(found.is_empty(), "{canary} found at rest in {found:?}");
    }
}

#[tokio::test]
async fn the_openapi_document_describes_the_bodies_that_are_read() {
    let app = spawn_app().await;
    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for schema in [
        "RegisterConsumerRequest",
        "UpdateConsumerRequest",
        "DeleteConsumerRequest",
        "RegisterCardRequest",
        "CreateCardRequest",
        "AccountDto",
        "V1RegisterConsumerRequest",
        "V1CardsRequest",
        "V1CardRequest",
        "EnrolmentRequest",
        "AddressDto",
    ] {
        assert!(schemas.contains_key(schema), "{schema} missing");
    }
    let required = |schema: &str| -> Vec<String> {
        schemas[schema]["required"]
            .as_array()
            .map(|r| r.iter().map(|f| f.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    };
    assert_eq!(
        required("RegisterCardRequest"),
        ["consumerId", "cardProductId", "encryptedData"]
    );
    assert_eq!(required("UpdateConsumerRequest"), ["personalInformation"]);
    assert_eq!(required("V1CardsRequest"), ["cards"]);
    assert!(required("RegisterConsumerRequest").is_empty());
}
