//! Bad input, each a D1 error and never a 500 or a panic.

use serde_json::{json, Value};

use crate::harness::{
    assert_error, assert_unauthorized, full_pi, spawn_app, spawn_with, IssuerSettings, ISSUER,
};

#[tokio::test]
async fn malformed_json_wrong_types_and_unknown_fields_are_format_errors() {
    let app = spawn_app().await;
    let token = app.token().await;
    let url = app.consumer_url("c1");
    let raw = app
        .client
        .put(&url)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"personalInformation\": ")
        .send()
        .await
        .unwrap();
    assert_error(raw, 400, "FIELD_INVALID_FORMAT", "body").await;
    for (body, field) in [
        (json!([1, 2]), "body"),
        (
            json!({"personalInformation": "Jean"}),
            "personalInformation",
        ),
        (
            json!({"personalInformation": {"firstName": 42}}),
            "personalInformation.firstName",
        ),
        (
            json!({"personalInformation": {"mobilePhoneNumber": "0612"}}),
            "personalInformation.mobilePhoneNumber",
        ),
        (
            json!({"personalInformation": {"firstName": "A"}, "extra": 1}),
            "extra",
        ),
        (
            json!({"personalInformation": {"firstName": "A", "nickname": "B"}}),
            "personalInformation.nickname",
        ),
        (
            json!({"personalInformation": {"mobilePhoneNumber": {"countryCode": "+33", "phoneNumber": "612345678", "ext": "1"}}}),
            "personalInformation.mobilePhoneNumber.ext",
        ),
        (
            json!({"personalInformation": {"residencyAddress": {"countryCode": "FR"}}}),
            "personalInformation.residencyAddress.line1",
        ),
    ] {
        let response = app.put_json(&url, &token, &body).await;
        assert_error(response, 400, "FIELD_INVALID_FORMAT", field).await;
    }
}

/// schemathesis found that an optional body of whitespace alone (`\r`) was taken for no body:
/// it is a body, and it is not JSON.
#[tokio::test]
async fn an_optional_body_of_whitespace_alone_is_malformed_json_not_an_empty_body() {
    let app = spawn_app().await;
    let token = app.token().await;
    app.register(&token, "c1", json!({"firstName": "Ada"}))
        .await;
    let delete = format!("{}/operations:delete", app.consumer_url("c1"));
    for (url, body) in [(&delete, "\r"), (&app.consumer_url("c2"), " \n")] {
        let method = if url == &delete { "POST" } else { "PUT" };
        let response = app
            .client
            .request(method.parse().unwrap(), url.as_str())
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_error(response, 400, "FIELD_INVALID_FORMAT", "body").await;
    }
    let state = app.get(&app.consumer_url("c1"), &token).await;
    let read: Value = state.json().await.unwrap();
    assert_eq!(
        read["state"], "ACTIVE",
        "the refused delete deleted nothing"
    );
    let absent = app.get(&app.consumer_url("c2"), &token).await;
    assert_eq!(
        absent.status(),
        404,
        "the refused register registered nothing"
    );
    assert_eq!(app.post_empty(&delete, &token).await.status(), 204);
}

#[tokio::test]
async fn identifiers_off_their_pattern_are_format_errors() {
    let app = spawn_app().await;
    let token = app.token().await;
    let long = "a".repeat(65);
    for id in [long.as_str(), "a.b", "j%C3%A9r%C3%B4me", "a%20b", "a$"] {
        let response = app
            .put_json(&app.consumer_url(id), &token, &json!({}))
            .await;
        assert_error(response, 400, "FIELD_INVALID_FORMAT", "consumerId").await;
    }
    let response = app
        .client
        .get(app.consumer_url("%FF%FE"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "FIELD_INVALID_FORMAT", "path").await;
    let ok = "a".repeat(64);
    app.register(&token, &ok, Value::Null).await;
}

#[tokio::test]
async fn a_pan_shaped_consumer_id_is_a_value_error() {
    let app = spawn_app().await;
    let token = app.token().await;
    let response = app
        .put_json(&app.consumer_url("4111111111111111"), &token, &json!({}))
        .await;
    let body = assert_error(response, 400, "FIELD_INVALID_VALUE", "consumerId").await;
    assert!(!body.to_string().contains("4111111111111111"));
    assert!(!crate::harness::logs().contains("4111111111111111"));
}

#[tokio::test]
async fn phone_shaped_ids_are_counted_and_refused_only_by_policy() {
    let app = spawn_app().await;
    let token = app.token().await;
    app.register(&token, "33612345678", Value::Null).await;
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("d1_lookalike_identifiers_total 1"),
        "{metrics}"
    );

    let strict = spawn_with(IssuerSettings {
        lookalike_policy: d1_domain::LookalikePolicy::Refuse,
        ..Default::default()
    })
    .await;
    let token = strict.token().await;
    let response = strict
        .put_json(&strict.consumer_url("33612345678"), &token, &json!({}))
        .await;
    assert_error(response, 400, "FIELD_INVALID_VALUE", "consumerId").await;
}

#[tokio::test]
async fn pi_field_rules_answer_with_the_right_code_and_field() {
    let app = spawn_app().await;
    let token = app.token().await;
    let cases = [
        ("language", json!("EN-us"), "FIELD_INVALID_FORMAT"),
        ("language", json!("english"), "FIELD_INVALID_FORMAT"),
        ("dateOfBirth", json!("2023-02-31"), "FIELD_INVALID_VALUE"),
        ("dateOfBirth", json!("31/01/2000"), "FIELD_INVALID_FORMAT"),
        ("firstName", json!("Jean$"), "FIELD_INVALID_FORMAT"),
        ("lastName", json!("x".repeat(129)), "FIELD_INVALID_FORMAT"),
        ("title", json!("x".repeat(41)), "FIELD_INVALID_FORMAT"),
        ("email", json!("not-an-email"), "FIELD_INVALID_FORMAT"),
        ("firstName", json!(null), "OK"),
    ];
    for (field, value, code) in cases {
        let mut pi = full_pi();
        pi[field] = value;
        let response = app
            .put_json(
                &app.consumer_url("c1"),
                &token,
                &json!({"personalInformation": pi}),
            )
            .await;
        if code == "OK" {
            assert_eq!(response.status(), 204);
        } else {
            assert_error(response, 400, code, &format!("personalInformation.{field}")).await;
        }
    }
    let mut pi = full_pi();
    pi["residencyAddress"]["countryCode"] = json!("ZZ");
    let response = app
        .put_json(
            &app.consumer_url("c1"),
            &token,
            &json!({"personalInformation": pi}),
        )
        .await;
    assert_error(
        response,
        400,
        "FIELD_INVALID_VALUE",
        "personalInformation.residencyAddress.countryCode",
    )
    .await;
    let response = app
        .put_json(
            &app.consumer_url("c1"),
            &token,
            &json!({"personalInformation": {}}),
        )
        .await;
    assert_error(response, 400, "FIELD_INVALID_VALUE", "personalInformation").await;
}

#[tokio::test]
async fn names_in_many_scripts_are_accepted_and_read_back_as_sent() {
    let app = spawn_app().await;
    let token = app.token().await;
    for (i, name) in ["محمد", "Jérôme", "Jean-Luc O'Neil", "Zoë-Ann"]
        .iter()
        .enumerate()
    {
        let consumer = format!("c{i}");
        app.register(
            &token,
            &consumer,
            json!({"firstName": name, "lastName": "Doe"}),
        )
        .await;
        let body: Value = app
            .get(&app.consumer_url(&consumer), &token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(body["personalInformation"]["firstName"], *name);
    }
}

#[tokio::test]
async fn a_one_mebibyte_body_is_413_and_a_wrong_content_type_is_415() {
    let app = spawn_app().await;
    let token = app.token().await;
    let huge = json!({"personalInformation": {"firstName": "a".repeat(1 << 20)}});
    let response = app.put_json(&app.consumer_url("c1"), &token, &huge).await;
    assert_error(response, 413, "PAYLOAD_TOO_LARGE", "exceeds").await;
    // Too large comes before the token check.
    let response = app
        .client
        .put(app.consumer_url("c1"))
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let response = app
        .client
        .put(app.consumer_url("c1"))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_error(
        response,
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        "Content-Type must be application/json",
    )
    .await;
    // An empty body needs no content type.
    let response = app
        .client
        .put(app.consumer_url("c1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
}

#[tokio::test]
async fn missing_garbage_expired_and_foreign_tokens_are_401_without_saying_why() {
    let app = spawn_app().await;
    let url = app.consumer_url("c1");
    assert_unauthorized(app.client.put(&url).json(&json!({})).send().await.unwrap()).await;
    assert_unauthorized(app.put_json(&url, "garbage", &json!({})).await).await;
    assert_unauthorized(
        app.client
            .put(&url)
            .header("authorization", "Basic Zm9vOmJhcg==")
            .send()
            .await
            .unwrap(),
    )
    .await;
    // A token of ours, expired: signed with the service key, an hour old.
    let (kid, signer) = app.state.keyring.signer().unwrap();
    let old = d1_crypto::jwt::sign_access_token(
        &signer,
        &kid,
        ISSUER,
        &app.issuer.kid,
        "j",
        crate::harness::now() - 3600,
    )
    .unwrap();
    assert_unauthorized(app.put_json(&url, &old, &json!({})).await).await;
    // Issuer B's token on issuer A's path, for a consumer that exists: still 401.
    let token = app.token().await;
    app.register(&token, "c1", Value::Null).await;
    let foreign = app.token_for(&app.other).await;
    assert_unauthorized(app.get(&url, &foreign).await).await;
    // 401 comes before 415.
    let response = app
        .client
        .put(&url)
        .bearer_auth(&foreign)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_unauthorized(response).await;
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_d1_format() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/banking/v2/nothing"))
        .send()
        .await
        .unwrap();
    assert_error(response, 404, "NOT_FOUND", "no such route").await;
    let response = app
        .client
        .delete(app.consumer_url("c1"))
        .send()
        .await
        .unwrap();
    assert_error(response, 405, "METHOD_NOT_ALLOWED", "method not allowed").await;
}

#[tokio::test]
async fn format_errors_come_before_value_errors() {
    let app = spawn_app().await;
    let token = app.token().await;
    // A PAN-shaped id (value) and malformed JSON (format): the format error wins.
    let response = app
        .client
        .put(app.consumer_url("4111111111111111"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "FIELD_INVALID_FORMAT", "body").await;
    // A value error (400) comes before existence (404).
    let response = app
        .post_json(
            &(app.consumer_url("ghost") + "/operations/update"),
            &token,
            &json!({"personalInformation": {"dateOfBirth": "2023-02-31"}}),
        )
        .await;
    assert_error(response, 400, "FIELD_INVALID_VALUE", "dateOfBirth").await;
}

#[tokio::test]
async fn error_bodies_match_their_snapshots() {
    // One set of snapshots for both backends' copies of this suite.
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    let _settings = settings.bind_to_scope();
    let app = spawn_app().await;
    let token = app.token().await;
    let body: Value = app
        .put_json(
            &app.consumer_url("c1"),
            &token,
            &json!({"personalInformation": {"language": "EN-us"}}),
        )
        .await
        .json()
        .await
        .unwrap();
    insta::assert_json_snapshot!("format_error", body);
    let body: Value = app
        .get(&app.consumer_url("ghost"), &token)
        .await
        .json()
        .await
        .unwrap();
    insta::assert_json_snapshot!("consumer_not_found", body);
    let body: Value = app
        .client
        .get(app.consumer_url("c1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    insta::assert_json_snapshot!("unauthorized", body);
    let body: Value = app
        .token_form(&[("grant_type", "password")])
        .await
        .json()
        .await
        .unwrap();
    insta::assert_json_snapshot!("unsupported_grant_type", body);
}
