//! The v2 Consumer API (contract section 5).

use serde_json::{json, Value};

use crate::harness::{
    assert_consumer_deleted, assert_error, full_pi, spawn_app, spawn_with, IssuerSettings, TestApp,
};

async fn trail(app: &TestApp, token: &str, consumer: &str) -> Vec<Value> {
    let body: Value = app
        .get(&(app.consumer_url(consumer) + "/operations"), token)
        .await
        .json()
        .await
        .unwrap();
    body["operations"].as_array().unwrap().clone()
}

fn kinds(ops: &[Value]) -> Vec<&str> {
    ops.iter()
        .map(|o| o["operation"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn register_without_pi_reads_back_active_with_issuer_as_pi_source() {
    let app = spawn_app().await;
    let token = app.token().await;
    app.register(&token, "c1", Value::Null).await;
    let response = app.get(&app.consumer_url("c1"), &token).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["consumerId"], "c1");
    assert_eq!(body["state"], "ACTIVE");
    assert_eq!(body["personalInformationSource"], "ISSUER");
    assert!(body.get("personalInformation").is_none());
    assert!(body["createdAt"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn register_with_pi_stores_it_and_get_returns_it() {
    let app = spawn_app().await;
    let token = app.token().await;
    app.register(&token, "c1", full_pi()).await;
    let body: Value = app
        .get(&app.consumer_url("c1"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["personalInformationSource"], "STORED");
    assert_eq!(body["personalInformation"], full_pi());
}

#[tokio::test]
async fn an_identical_retry_answers_204_and_writes_no_trail_entry() {
    let app = spawn_app().await;
    let token = app.token().await;
    app.register(&token, "c1", full_pi()).await;
    app.register(&token, "c1", full_pi()).await;
    app.register(&token, "c1", Value::Null).await;
    assert_eq!(kinds(&trail(&app, &token, "c1").await), ["REGISTER"]);
    let mut changed = full_pi();
    changed["firstName"] = json!("Jeanne");
    app.register(&token, "c1", changed.clone()).await;
    assert_eq!(
        kinds(&trail(&app, &token, "c1").await),
        ["REGISTER", "REGISTER"]
    );
    let body: Value = app
        .get(&app.consumer_url("c1"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["personalInformation"], changed);
}

#[tokio::test]
async fn update_replaces_the_pi_whole_and_is_recorded() {
    let app = spawn_app().await;
    let token = app.token().await;
    app.register(&token, "c1", full_pi()).await;
    let response = app
        .post_json(
            &(app.consumer_url("c1") + "/operations/update"),
            &token,
            &json!({"personalInformation": {"firstName": "Ann"}}),
        )
        .await;
    assert_eq!(response.status(), 204);
    let body: Value = app
        .get(&app.consumer_url("c1"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["personalInformation"], json!({"firstName": "Ann"}));
    assert_eq!(
        kinds(&trail(&app, &token, "c1").await),
        ["UPDATE", "REGISTER"]
    );
}

#[tokio::test]
async fn update_gives_404_for_unknown_and_403_for_deleted_consumers() {
    let app = spawn_app().await;
    let token = app.token().await;
    let body = json!({"personalInformation": {"firstName": "Ann"}});
    let response = app
        .post_json(
            &(app.consumer_url("ghost") + "/operations/update"),
            &token,
            &body,
        )
        .await;
    assert_error(response, 404, "CONSUMER_NOT_FOUND", "consumer not found").await;
    app.register(&token, "c1", Value::Null).await;
    let response = app.delete_consumer(&token, "c1").await;
    assert_eq!(response.status(), 204);
    let response = app
        .post_json(
            &(app.consumer_url("c1") + "/operations/update"),
            &token,
            &body,
        )
        .await;
    assert_consumer_deleted(response).await;
    let response = app
        .client
        .post(app.consumer_url("c1") + "/operations/update")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "FIELD_INVALID_FORMAT", "personalInformation").await;
}

#[tokio::test]
async fn delete_is_logical_idempotent_and_removes_the_pi() {
    let app = spawn_app().await;
    let token = app.token().await;
    let response = app.delete_consumer(&token, "ghost").await;
    assert_error(response, 404, "CONSUMER_NOT_FOUND", "consumer not found").await;
    app.register(&token, "c1", full_pi()).await;
    let delete = json!({"reason": "Closed by customer", "reasonCode": "USER_DECISION"});
    let response = app
        .post_json(
            &(app.consumer_url("c1") + "/operations/delete"),
            &token,
            &delete,
        )
        .await;
    assert_eq!(response.status(), 204);
    let response = app
        .post_json(
            &(app.consumer_url("c1") + "/operations/delete"),
            &token,
            &delete,
        )
        .await;
    assert_eq!(response.status(), 204);
    let body: Value = app
        .get(&app.consumer_url("c1"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["state"], "DELETED");
    assert!(body.get("personalInformation").is_none());
    let ops = trail(&app, &token, "c1").await;
    assert_eq!(kinds(&ops), ["DELETE", "REGISTER"]);
    assert_eq!(ops[0]["reason"], "Closed by customer");
    assert_eq!(ops[0]["reasonCode"], "USER_DECISION");
}

#[tokio::test]
async fn delete_refuses_a_bad_reason_and_an_unknown_reason_code() {
    let app = spawn_app().await;
    let token = app.token().await;
    app.register(&token, "c1", Value::Null).await;
    let url = app.consumer_url("c1") + "/operations/delete";
    assert_error(
        app.post_json(&url, &token, &json!({"reason": "no-dashes!"}))
            .await,
        400,
        "FIELD_INVALID_FORMAT",
        "reason",
    )
    .await;
    assert_error(
        app.post_json(&url, &token, &json!({"reasonCode": "WHIM"}))
            .await,
        400,
        "FIELD_INVALID_VALUE",
        "reasonCode",
    )
    .await;
    assert_error(
        app.post_json(&url, &token, &json!({"other": 1})).await,
        400,
        "FIELD_INVALID_FORMAT",
        "other",
    )
    .await;
}

#[tokio::test]
async fn a_deleted_consumer_id_registered_again_starts_fresh_and_keeps_its_trail() {
    let app = spawn_app().await;
    let token = app.token().await;
    app.register(&token, "c1", full_pi()).await;
    assert_eq!(app.delete_consumer(&token, "c1").await.status(), 204);
    app.register(&token, "c1", Value::Null).await;
    let body: Value = app
        .get(&app.consumer_url("c1"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["state"], "ACTIVE");
    assert_eq!(body["personalInformationSource"], "ISSUER");
    assert!(body.get("personalInformation").is_none());
    assert_eq!(
        kinds(&trail(&app, &token, "c1").await),
        ["REGISTER", "DELETE", "REGISTER"]
    );
}

#[tokio::test]
async fn an_issuer_that_forbids_pi_storage_gets_a_value_error_for_any_pi() {
    let app = spawn_with(IssuerSettings {
        pi_storage: d1_store::PiStorage::Forbidden,
        ..Default::default()
    })
    .await;
    let token = app.token().await;
    let response = app
        .put_json(
            &app.consumer_url("c1"),
            &token,
            &json!({"personalInformation": {"firstName": "A"}}),
        )
        .await;
    assert_error(response, 400, "FIELD_INVALID_VALUE", "personalInformation").await;
    app.register(&token, "c1", Value::Null).await;
    let response = app
        .post_json(
            &(app.consumer_url("c1") + "/operations/update"),
            &token,
            &json!({"personalInformation": {"firstName": "A"}}),
        )
        .await;
    assert_error(response, 400, "FIELD_INVALID_VALUE", "personalInformation").await;
}

#[tokio::test]
async fn click_to_pay_issuers_must_send_every_mandatory_field() {
    let app = spawn_with(IssuerSettings {
        click_to_pay: true,
        ..Default::default()
    })
    .await;
    let token = app.token().await;
    app.register(&token, "c1", full_pi()).await;
    for field in [
        "language",
        "firstName",
        "lastName",
        "email",
        "mobilePhoneNumber",
    ] {
        let mut pi = full_pi();
        pi.as_object_mut().unwrap().remove(field);
        let response = app
            .put_json(
                &app.consumer_url("c2"),
                &token,
                &json!({"personalInformation": pi}),
            )
            .await;
        assert_error(response, 400, "FIELD_INVALID_VALUE", field).await;
    }
    // Without PI there is nothing to check.
    app.register(&token, "c3", Value::Null).await;
}

#[tokio::test]
async fn correlation_ids_are_echoed_generated_or_refused() {
    let app = spawn_app().await;
    let token = app.token().await;
    let response = app
        .client
        .put(app.consumer_url("c1"))
        .bearer_auth(&token)
        .header("x-correlation-id", "corr-1")
        .header("x-user-id", "agent_7")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(response.headers()["x-correlation-id"], "corr-1");
    let ops = trail(&app, &token, "c1").await;
    assert_eq!(ops[0]["correlationId"], "corr-1");
    assert_eq!(ops[0]["userId"], "agent_7");

    let response = app.get(&app.consumer_url("c1"), &token).await;
    assert!(!response.headers()["x-correlation-id"].is_empty());

    let response = app
        .client
        .get(app.consumer_url("c1"))
        .bearer_auth(&token)
        .header("x-correlation-id", "5555555555554444")
        .send()
        .await
        .unwrap();
    assert_ne!(response.headers()["x-correlation-id"], "5555555555554444");
    assert_error(response, 400, "FIELD_INVALID_VALUE", "x-correlation-id").await;
    let response = app
        .client
        .get(app.consumer_url("c1"))
        .bearer_auth(&token)
        .header("x-correlation-id", "has.dot")
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "FIELD_INVALID_FORMAT", "x-correlation-id").await;
    let response = app
        .client
        .get(app.consumer_url("c1"))
        .bearer_auth(&token)
        .header("x-user-id", "way-too-long-user-id")
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "FIELD_INVALID_FORMAT", "x-user-id").await;
}

#[tokio::test]
async fn the_trail_pages_newest_first() {
    let app = spawn_app().await;
    let token = app.token().await;
    for name in ["A", "B", "C", "D", "E"] {
        app.register(&token, "c1", json!({"firstName": name})).await;
    }
    let url = app.consumer_url("c1") + "/operations?limit=2";
    let first: Value = app.get(&url, &token).await.json().await.unwrap();
    assert_eq!(first["operations"].as_array().unwrap().len(), 2);
    let cursor = first["nextCursor"].as_str().unwrap();
    let second: Value = app
        .get(&format!("{url}&cursor={cursor}"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["operations"].as_array().unwrap().len(), 2);
    assert_ne!(
        first["operations"][0]["operationId"],
        second["operations"][0]["operationId"]
    );
    assert!(
        first["operations"][0]["startTime"].as_str()
            >= second["operations"][0]["startTime"].as_str()
    );
    let response = app
        .get(&(app.consumer_url("c1") + "/operations?limit=0"), &token)
        .await;
    assert_error(
        response,
        400,
        "FIELD_INVALID_VALUE",
        "limit: must be 1 to 200",
    )
    .await;
    let response = app
        .get(&(app.consumer_url("c1") + "/operations?limit=ten"), &token)
        .await;
    assert_error(response, 400, "FIELD_INVALID_FORMAT", "limit").await;
    let response = app
        .get(&(app.consumer_url("ghost") + "/operations"), &token)
        .await;
    assert_error(response, 404, "CONSUMER_NOT_FOUND", "consumer not found").await;
}

#[tokio::test]
async fn concurrent_registrations_are_all_acknowledged_and_all_stored() {
    let app = std::sync::Arc::new(spawn_app().await);
    let token = app.token().await;
    let mut tasks = Vec::new();
    for i in 0..64 {
        let (app, token) = (app.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            app.register(
                &token,
                &format!("c{i}"),
                json!({"firstName": format!("N{i}")}),
            )
            .await
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for i in 0..64 {
        let body: Value = app
            .get(&app.consumer_url(&format!("c{i}")), &token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(body["personalInformation"]["firstName"], format!("N{i}"));
    }
}

#[tokio::test]
async fn health_readiness_jwks_and_openapi_answer() {
    let app = spawn_app().await;
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["crv"], "P-256");
    assert!(jwks["keys"][0]["kid"].is_string());
    assert!(jwks["keys"][0].get("d").is_none());
    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/authz/v1/oauth2/token",
        "/banking/v2/issuers/{issuerId}/consumers/{consumerId}",
        "/banking/v2/issuers/{issuerId}/consumers/{consumerId}/operations/update",
        "/banking/v2/issuers/{issuerId}/consumers/{consumerId}/operations/delete",
        "/banking/v2/issuers/{issuerId}/consumers/{consumerId}/operations",
        "/healthz",
        "/readyz",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from the OpenAPI document"
        );
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for schema in [
        "ErrorBody",
        "PersonalInformationDto",
        "ConsumerResponse",
        "OAuthErrorBody",
    ] {
        assert!(schemas.contains_key(schema), "{schema} missing");
    }
}
