//! The v1 operations list (contract section 7): the v2 trail's items by `offset` and `count`,
//! newest first, with v1 error bodies.

use serde_json::{json, Value};

use crate::harness::{full_pi, spawn_app, TestApp, ISSUER};

fn list_url(app: &TestApp, consumer: &str, query: &str) -> String {
    app.url(&format!(
        "/banking/v1/issuers/{ISSUER}/consumers/{consumer}/operations{query}"
    ))
}

/// The v1 list of `consumer` with `query` (`?offset=…&count=…` or nothing).
async fn v1_list(app: &TestApp, token: &str, consumer: &str, query: &str) -> Vec<Value> {
    let response = app.get(&list_url(app, consumer, query), token).await;
    assert_eq!(response.status(), 200, "{query}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body.as_object().unwrap().len(),
        1,
        "only `operations`: {body}"
    );
    body["operations"].as_array().unwrap().clone()
}

/// The whole v2 trail of `consumer`, newest first.
async fn v2_trail(app: &TestApp, token: &str, consumer: &str) -> Vec<Value> {
    let url = app.consumer_url(consumer) + "/operations?limit=200";
    let body: Value = app.get(&url, token).await.json().await.unwrap();
    body["operations"].as_array().unwrap().clone()
}

/// Asserts a v1 error: `status`, `{"error": "<CODE>: …"}` naming `field`, no `errorCode`.
async fn assert_v1_error(response: reqwest::Response, status: u16, code: &str, field: &str) {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!("{code}: ")),
        "{body} should be {code}"
    );
    assert!(error.contains(field), "{body} should name {field}");
}

/// Registers `consumer` and updates it until its trail holds `entries` entries.
async fn with_trail(app: &TestApp, token: &str, consumer: &str, entries: usize) {
    app.register(token, consumer, full_pi()).await;
    let url = app.consumer_url(consumer) + "/operations:update";
    for i in 1..entries {
        let mut pi = full_pi();
        pi["firstName"] = json!(format!("Name {i}"));
        let response = app
            .client
            .post(&url)
            .bearer_auth(token)
            .header("x-correlation-id", format!("corr-{i}"))
            .json(&json!({"personalInformation": pi}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
    }
}

#[tokio::test]
async fn the_v1_list_pages_the_v2_trail_by_offset_and_count_newest_first() {
    let app = spawn_app().await;
    let token = app.token().await;
    with_trail(&app, &token, "c1", 12).await;
    let all = v2_trail(&app, &token, "c1").await;
    assert_eq!(all.len(), 12);
    assert_eq!(all[0]["correlationId"], "corr-11", "newest first");
    assert_eq!(all[11]["operation"], "REGISTER");

    assert_eq!(v1_list(&app, &token, "c1", "").await, all[..10], "defaults");
    assert_eq!(
        v1_list(&app, &token, "c1", "?offset=0&count=10").await,
        all[..10]
    );
    assert_eq!(v1_list(&app, &token, "c1", "?count=1").await, all[..1]);
    assert_eq!(
        v1_list(&app, &token, "c1", "?offset=3&count=2").await,
        all[3..5]
    );
    assert_eq!(v1_list(&app, &token, "c1", "?offset=10").await, all[10..]);
    assert_eq!(v1_list(&app, &token, "c1", "?count=100").await, all);
    for past in [
        "?offset=12",
        "?offset=1000&count=5",
        "?offset=99999999999999999999999",
    ] {
        assert!(v1_list(&app, &token, "c1", past).await.is_empty(), "{past}");
    }

    // A DELETED consumer's trail still reads, its delete first.
    assert_eq!(app.delete_consumer(&token, "c1").await.status(), 204);
    let after = v1_list(&app, &token, "c1", "?count=2").await;
    assert_eq!(after[0]["operation"], "DELETE");
    assert_eq!(after[1], all[0]);
}

#[tokio::test]
async fn bad_offsets_and_counts_are_refused_in_the_v1_body_in_the_order_of_checks() {
    let app = spawn_app().await;
    let token = app.token().await;
    with_trail(&app, &token, "c1", 1).await;
    let get = |consumer: &str, query: &str| {
        let url = list_url(&app, consumer, query);
        let (app, token) = (&app, &token);
        async move { app.get(&url, token).await }
    };

    // Whole numbers out of range are well-formed: FIELD_INVALID_VALUE.
    for (query, field) in [
        ("?count=0", "count"),
        ("?count=101", "count"),
        ("?offset=-1", "offset"),
        ("?offset=-1&count=0", "offset"),
        ("?offset=0&count=-5", "count"),
    ] {
        assert_v1_error(get("c1", query).await, 400, "FIELD_INVALID_VALUE", field).await;
    }
    // Anything else is malformed: FIELD_INVALID_FORMAT.
    for (query, field) in [
        ("?count=ten", "count"),
        ("?count=", "count"),
        ("?offset=1.5", "offset"),
        ("?offset=%2B1", "offset"),
        ("?count=1&count=2", "query"),
    ] {
        assert_v1_error(get("c1", query).await, 400, "FIELD_INVALID_FORMAT", field).await;
    }
    // Format before value, value before existence.
    assert_v1_error(
        get("c1", "?offset=-1&count=x").await,
        400,
        "FIELD_INVALID_FORMAT",
        "count",
    )
    .await;
    assert_v1_error(
        get("4111111111111111", "?count=x").await,
        400,
        "FIELD_INVALID_FORMAT",
        "count",
    )
    .await;
    assert_v1_error(
        get("4111111111111111", "?count=0").await,
        400,
        "FIELD_INVALID_VALUE",
        "consumerId",
    )
    .await;
    assert_v1_error(
        get("bad!id", "?count=0").await,
        400,
        "FIELD_INVALID_FORMAT",
        "consumerId",
    )
    .await;
    assert_v1_error(
        get("nobody", "?count=0").await,
        400,
        "FIELD_INVALID_VALUE",
        "count",
    )
    .await;
    assert_v1_error(
        get("nobody", "").await,
        404,
        "CONSUMER_NOT_FOUND",
        "consumer",
    )
    .await;

    let anonymous = app
        .client
        .get(list_url(&app, "c1", ""))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let other = app.token_for(&app.other).await;
    let foreign = app.get(&list_url(&app, "c1", ""), &other).await;
    assert_eq!(foreign.status(), 401, "another issuer's token");
}
