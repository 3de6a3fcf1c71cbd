//! Route groups and their policies (contract sections 2 and 3): framework rejections answer in
//! the body of the group they fall in, operation routes answer on both separators, and
//! `/openapi.json` describes exactly the routes served.

use std::collections::HashSet;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{assert_error, spawn_app, TestApp, ISSUER};

fn v1(app: &TestApp, path: &str) -> String {
    app.url(&format!("/banking/v1/issuers/{ISSUER}{path}"))
}

/// Asserts the v1 body: `{"error": "<CODE>: <text>"}`, never `errorCode`.
async fn assert_v1(response: reqwest::Response, status: u16, code: &str) -> String {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert!(body.get("errorCode").is_none(), "{body}");
    let text = body["error"].as_str().unwrap().to_owned();
    assert!(
        text.starts_with(&format!("{code}: ")),
        "{body} should be {code}"
    );
    text
}

/// Sends `request` on a raw connection and reads the whole answer.
async fn raw(app: &TestApp, request: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

#[tokio::test]
async fn framework_rejections_under_banking_v1_answer_in_the_v1_body() {
    let app = spawn_app().await;
    let token = app.token().await;
    for path in [
        "/banking/v1",
        "/banking/v1/",
        "/banking/v1/nothing",
        "/banking/v1/issuers/ABC/nothing",
    ] {
        let response = app.get(&app.url(path), &token).await;
        assert_v1(response, 404, "NOT_FOUND").await;
    }
    let response = app
        .client
        .delete(v1(&app, "/consumers/c1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(response.headers()["allow"]
        .to_str()
        .unwrap()
        .contains("PUT"));
    assert_v1(response, 405, "METHOD_NOT_ALLOWED").await;
    // Too large by its Content-Length: refused before the token is looked at.
    let huge = "x".repeat(70_000);
    let response = app
        .client
        .put(v1(&app, "/consumers/c1"))
        .header("content-type", "application/json")
        .body(huge.clone())
        .send()
        .await
        .unwrap();
    assert_v1(response, 413, "PAYLOAD_TOO_LARGE").await;
    // Too large while reading a body without a Content-Length.
    let answer = raw(
        &app,
        &format!(
            "PUT /banking/v1/issuers/{ISSUER}/consumers/c1 HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{huge}\r\n0\r\n\r\n",
            huge.len()
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains(r#"{"error":"PAYLOAD_TOO_LARGE: "#),
        "{answer}"
    );
    let response = app
        .client
        .put(v1(&app, "/consumers/c1"))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_v1(response, 415, "UNSUPPORTED_MEDIA_TYPE").await;
    let response = app
        .client
        .put(v1(&app, "/consumers/c1"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"state\": ")
        .send()
        .await
        .unwrap();
    assert_v1(response, 400, "FIELD_INVALID_FORMAT").await;
    // A path that does not decode.
    let response = app.get(&v1(&app, "/cards/%FF"), &token).await;
    assert_v1(response, 400, "FIELD_INVALID_FORMAT").await;
    // The batch route keeps its larger limit: 70 kB is under it, so the body is read.
    let response = app
        .client
        .put(v1(&app, "/consumers/c1/cards"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(format!("{{\"cards\": \"{huge}\"}}"))
        .send()
        .await
        .unwrap();
    let text = assert_v1(response, 400, "FIELD_INVALID_FORMAT").await;
    assert!(text.contains("cards"), "{text}");
}

#[tokio::test]
async fn a_head_hyper_cannot_parse_is_answered_in_the_body_of_its_path() {
    let app = spawn_app().await;
    let heads = [
        "Content-Length: abc\r\n",
        "Transfer-Encoding: gzip\r\n",
        "Content-Length: 2\r\nContent-Length: 3\r\n",
        "Bad Header: x\r\n",
    ];
    for (head, path, body) in heads.iter().flat_map(|h| {
        [
            (
                h,
                format!("/banking/v1/issuers/{ISSUER}/consumers/c1"),
                r#"{"error":"FIELD_INVALID_FORMAT: "#,
            ),
            (
                h,
                format!("/banking/v2/issuers/{ISSUER}/consumers/c1"),
                r#""errorCode":"FIELD_INVALID_FORMAT""#,
            ),
        ]
    }) {
        let request = format!(
            "PUT {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n{head}connection: close\r\n\r\n{{}}"
        );
        let answer = raw(&app, &request).await;
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{head}: {answer}"
        );
        assert!(
            answer.contains("content-type: application/json"),
            "{head}: {answer}"
        );
        assert!(answer.contains(body), "{head} on {path}: {answer}");
    }
}

#[tokio::test]
async fn click_to_pay_routes_under_banking_v1_keep_the_v2_body() {
    let app = spawn_app().await;
    let token = app.token().await;
    let enrol = v1(&app, "/cards/k1/operations:clickToPayEnrolment");
    let response = app.get(&enrol, &token).await;
    assert_error(response, 405, "METHOD_NOT_ALLOWED", "method").await;
    let response = app
        .client
        .post(&enrol)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"billingAddress\": ")
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "FIELD_INVALID_FORMAT", "not valid JSON").await;
    let response = app
        .client
        .post(&enrol)
        .header("content-type", "application/json")
        .body("x".repeat(70_000))
        .send()
        .await
        .unwrap();
    assert_error(response, 413, "PAYLOAD_TOO_LARGE", "bytes").await;
    let response = app.get(&v1(&app, "/operations/%FF"), &token).await;
    assert_error(response, 400, "FIELD_INVALID_FORMAT", "path").await;
    let response = app
        .client
        .delete(v1(&app, "/operations/op-1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_error(response, 405, "METHOD_NOT_ALLOWED", "method").await;
}

#[tokio::test]
async fn the_token_endpoint_and_unknown_routes_elsewhere_keep_their_bodies() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/authz/v1/oauth2/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    for path in ["/nothing", "/banking/v2/nothing", "/banking/v3/issuers"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert!(!response.headers()["x-correlation-id"].is_empty());
        assert_error(response, 404, "NOT_FOUND", "route").await;
    }
}

#[tokio::test]
async fn operation_routes_answer_on_the_colon_and_the_slash() {
    let app = spawn_app().await;
    let token = app.token().await;
    app.register(&token, "c1", crate::harness::full_pi()).await;
    for separator in [":", "/"] {
        let url = format!("{}/operations{separator}update", app.consumer_url("c1"));
        let body = json!({"personalInformation": crate::harness::full_pi()});
        assert_eq!(app.post_json(&url, &token, &body).await.status(), 204);
    }
    for (consumer, separator) in [("c1", ":"), ("c2", "/")] {
        app.register(&token, consumer, Value::Null).await;
        let url = format!("{}/operations{separator}delete", app.consumer_url(consumer));
        let response = app.post_empty(&url, &token).await;
        assert_eq!(response.status(), 204);
    }
    for (consumer, separator) in [("v1a", ":"), ("v1b", "/")] {
        let url = v1(&app, &format!("/consumers/{consumer}"));
        assert_eq!(app.put_json(&url, &token, &json!({})).await.status(), 204);
        let url = v1(
            &app,
            &format!("/consumers/{consumer}/operations{separator}delete"),
        );
        for attempt in ["a delete", "a repeated delete"] {
            assert_eq!(
                app.post_empty(&url, &token).await.status(),
                204,
                "{attempt}"
            );
        }
    }
    // The enrolment answers on both: an unknown card is a 404 of the route, not of the router.
    for separator in [":", "/"] {
        let url = v1(
            &app,
            &format!("/cards/k1/operations{separator}clickToPayEnrolment"),
        );
        let response = app.post_empty(&url, &token).await;
        let body: Value = response.json().await.unwrap();
        assert_ne!(body["errorCode"], "NOT_FOUND", "{body}");
        assert!(body["errorCode"].is_string(), "{body}");
    }
}

/// The served document.
async fn document(app: &TestApp) -> Value {
    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    doc
}

#[tokio::test]
async fn the_openapi_document_has_unique_operation_ids_and_documents_the_colon_form() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    // Written for `.ci/run`'s independent validator; renamed into place, as another test
    // binary may write it too.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let part = dir.join(format!("openapi.json.{}", std::process::id()));
    std::fs::write(&part, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    std::fs::rename(&part, dir.join("openapi.json")).unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    let mut ids = HashSet::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap();
            assert!(
                ids.insert(id.to_owned()),
                "{id} ({method} {path}) is used twice"
            );
        }
    }
    for id in [
        "register",
        "v1_register",
        "get_card",
        "v1_get_card",
        "delete",
        "v1_delete",
        "operations",
        "v1_operations",
    ] {
        assert!(ids.contains(id), "{id} missing");
    }
    let schemas = &doc["components"]["schemas"];
    for field in ["billingAddress", "cardholderName", "reason", "reasonCode"] {
        let properties = &schemas["EnrolmentRequest"]["properties"];
        assert!(
            properties[field].is_object(),
            "the enrolment body lacks {field}"
        );
    }
    assert!(schemas["OperationAccepted"]["properties"]["status"].is_object());
    let v1_list = &paths["/banking/v1/issuers/{issuerId}/consumers/{consumerId}/operations"];
    let params: Vec<&str> = v1_list["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        params.contains(&"offset") && params.contains(&"count"),
        "{params:?}"
    );
    for colon in [
        "/banking/v2/issuers/{issuerId}/consumers/{consumerId}/operations:update",
        "/banking/v2/issuers/{issuerId}/consumers/{consumerId}/operations:delete",
        "/banking/v1/issuers/{issuerId}/consumers/{consumerId}/operations:delete",
        "/banking/v1/issuers/{issuerId}/cards/{cardId}/operations:clickToPayEnrolment",
    ] {
        let primary = &paths[colon]["post"];
        assert!(primary["operationId"].is_string(), "{colon} missing");
        let alias = &paths[&colon.replace("operations:", "operations/")]["post"];
        assert_eq!(
            alias["operationId"].as_str().unwrap(),
            format!("{}_slash_alias", primary["operationId"].as_str().unwrap())
        );
        assert!(alias["summary"].as_str().unwrap().starts_with("Alias of"));
    }
}

#[tokio::test]
async fn every_documented_operation_is_served() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{issuerId}", ISSUER)
            .replace("{consumerId}", "c1")
            .replace("{cardId}", "k1")
            .replace("{operationId}", "op-1");
        for method in item.as_object().unwrap().keys() {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = app
                .client
                .request(method.clone(), app.url(&concrete))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body = response.text().await.unwrap();
            assert!(
                status != 405 && !body.contains("no such route"),
                "{method} {path} is documented but answers {status} {body}"
            );
        }
    }
}

#[tokio::test]
async fn the_openapi_document_declares_what_the_server_enforces() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let paths = doc["paths"].as_object().unwrap();
    for (path, item) in paths.iter().filter(|(p, _)| p.starts_with("/banking/")) {
        for (method, operation) in item.as_object().unwrap() {
            let responses = &operation["responses"];
            for status in ["401", "429", "500", "503"] {
                assert!(
                    responses[status].is_object(),
                    "{method} {path} does not declare {status}"
                );
            }
            if operation["requestBody"].is_object() {
                assert!(responses["413"].is_object() && responses["415"].is_object());
            }
            assert!(responses["401"]["headers"]["WWW-Authenticate"].is_object());
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let schema = &parameter["schema"];
                if parameter["in"] != "query" {
                    assert_eq!(schema["type"], "string", "{method} {path}: {parameter}");
                }
                let pattern = schema["pattern"].as_str().unwrap_or_default();
                let expected = match parameter["name"].as_str().unwrap() {
                    "issuerId" => "^[A-Za-z0-9]{10}$",
                    "consumerId" => "^[A-Za-z0-9_-]{1,64}$",
                    "cardId" => "^[A-Za-z0-9_-]{1,48}$",
                    "x-user-id" => "^[A-Za-z0-9_-]{1,15}$",
                    _ => continue,
                };
                assert_eq!(pattern, expected, "{method} {path}: {parameter}");
            }
        }
    }
    let v2 = "/banking/v2/issuers/{issuerId}";
    let optional = [
        ("put", format!("{v2}/consumers/{{consumerId}}")),
        (
            "post",
            format!("{v2}/consumers/{{consumerId}}/operations:delete"),
        ),
        ("post", format!("{v2}/cards/{{cardId}}/operations:renew")),
    ];
    for (method, path) in &optional {
        let body = &paths[path][method]["requestBody"];
        assert_eq!(body["required"], false, "{method} {path}");
    }
    let suspend = &paths[&format!("{v2}/cards/{{cardId}}/operations:suspend")]["post"];
    let body = &suspend["requestBody"];
    assert_eq!(body["required"], true);
    let codes = &body["content"]["application/json"]["schema"]["allOf"][1]["properties"]
        ["reasonCode"]["enum"];
    assert!(codes.as_array().unwrap().contains(&json!("CARD_LOST")));
    assert!(!codes.as_array().unwrap().contains(&json!("CARD_FOUND")));
    let schemas = &doc["components"]["schemas"];
    let country = &schemas["AddressDto"]["properties"]["countryCode"]["enum"];
    assert!(country.as_array().unwrap().contains(&json!("FR")));
    assert!(!country.as_array().unwrap().contains(&json!("ZZ")));
    assert_eq!(schemas["PhoneDto"]["anyOf"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn the_request_line_carries_the_matched_route_and_the_groups_correlation_id() {
    let app = spawn_app().await;
    let token = app.token().await;
    // A dot and a space: allowed by the v1 pattern, which the v1 group reads.
    let response = app
        .client
        .put(v1(&app, "/consumers/c-log"))
        .bearer_auth(&token)
        .header("x-correlation-id", "route.test 1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(response.headers()["x-correlation-id"], "route.test 1");
    let logs = crate::harness::logs();
    let line = logs
        .lines()
        .find(|l| {
            l.contains(r#""correlation_id":"route.test 1""#) && l.contains(r#""message":"request""#)
        })
        .unwrap_or_else(|| panic!("no request line with the correlation id in {logs}"));
    assert!(
        line.contains(r#""route":"/banking/v1/issuers/{issuerId}/consumers/{consumerId}""#),
        "{line}"
    );
}

#[tokio::test]
async fn a_request_past_the_time_limit_is_answered_in_its_groups_body() {
    let app = spawn_app().await;
    let token = app.token().await;
    // The same store and keys behind a router with a short limit.
    let mut config = app.state.config.clone();
    config.server.request_timeout_ms = 200;
    let state = d1_registry::state::AppState::new(
        std::sync::Arc::clone(&app.state.store),
        std::sync::Arc::clone(&app.state.keyring),
        config,
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = d1_registry::app::router(state);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    // A body announced and never sent keeps the handler waiting past the limit.
    for (version, expected) in [
        ("v1", r#"{"error":"TIMEOUT: "#),
        ("v2", r#""errorCode":"TIMEOUT""#),
    ] {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "PUT /banking/{version}/issuers/{ISSUER}/consumers/slow HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: 10\r\n\r\n{{"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = vec![0; 4096];
        let n = stream.read(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]);
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains(expected), "{version}: {answer}");
    }
}
