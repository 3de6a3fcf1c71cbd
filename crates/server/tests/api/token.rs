//! The token endpoint (contract section 4).

use serde_json::{json, Value};

use crate::harness::{jwt, now, spawn_app, TestApp, ISSUER};

const GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

async fn refused(app: &TestApp, assertion: &str, error: &str) -> Value {
    let response = app
        .token_form(&[("grant_type", GRANT), ("assertion", assertion)])
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string());
    body
}

fn claims() -> Value {
    json!({"iss": ISSUER, "sub": ISSUER, "exp": now() + 300, "iat": now()})
}

#[tokio::test]
async fn a_form_body_gets_a_bearer_token_for_15_minutes() {
    let app = spawn_app().await;
    let response = app
        .token_form(&[
            ("grant_type", GRANT),
            ("assertion", &app.issuer.assertion()),
        ])
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert!(body["scope"].is_string());
    assert!(body["access_token"].as_str().unwrap().len() > 20);
}

#[tokio::test]
async fn a_json_body_gets_a_token_too() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/authz/v1/oauth2/token"))
        .json(&json!({"grant_type": GRANT, "assertion": app.issuer.assertion()}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn the_d1_audience_and_our_public_url_are_accepted() {
    let app = spawn_app().await;
    for aud in ["https://api.d1.thalescloud.io", "http://127.0.0.1:8080"] {
        let mut c = claims();
        c["aud"] = aud.into();
        let assertion = jwt(
            &app.issuer.key,
            &json!({"alg": "ES256", "kid": app.issuer.kid}),
            &c,
        );
        let response = app
            .token_form(&[("grant_type", GRANT), ("assertion", &assertion)])
            .await;
        assert_eq!(response.status(), 200, "{aud}");
    }
}

#[tokio::test]
async fn alg_none_and_hs256_keyed_with_the_public_key_are_invalid_grants() {
    use base64::Engine;
    let app = spawn_app().await;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "kid": app.issuer.kid})),
        b64(&claims())
    );
    refused(&app, &none, "invalid_grant").await;

    let input = format!(
        "{}.{}",
        b64(&json!({"alg": "HS256", "kid": app.issuer.kid})),
        b64(&claims())
    );
    let secret = app.issuer.key.public_pem();
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    let hs = format!(
        "{input}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref())
    );
    refused(&app, &hs, "invalid_grant").await;

    let es384 = jwt(
        &app.issuer.key,
        &json!({"alg": "ES384", "kid": app.issuer.kid}),
        &claims(),
    );
    refused(&app, &es384, "invalid_grant").await;
}

#[tokio::test]
async fn unknown_kid_and_a_kid_of_another_issuer_are_invalid_grants() {
    let app = spawn_app().await;
    let unknown = jwt(
        &app.issuer.key,
        &json!({"alg": "ES256", "kid": "nobody"}),
        &claims(),
    );
    refused(&app, &unknown, "invalid_grant").await;
    // Signed by the other issuer's key and kid, claiming to be the first issuer.
    let foreign = jwt(
        &app.other.key,
        &json!({"alg": "ES256", "kid": app.other.kid}),
        &claims(),
    );
    refused(&app, &foreign, "invalid_grant").await;
    // Our kid, signed by another key.
    let forged = jwt(
        &app.other.key,
        &json!({"alg": "ES256", "kid": app.issuer.kid}),
        &claims(),
    );
    refused(&app, &forged, "invalid_grant").await;
    let no_kid = jwt(&app.issuer.key, &json!({"alg": "ES256"}), &claims());
    refused(&app, &no_kid, "invalid_grant").await;
}

#[tokio::test]
async fn time_claims_are_enforced() {
    let app = spawn_app().await;
    let header = json!({"alg": "ES256", "kid": app.issuer.kid});
    for (name, patch) in [
        ("expired", json!({"exp": now() - 5})),
        ("16 minutes ahead", json!({"exp": now() + 16 * 60})),
        ("an hour ahead", json!({"exp": now() + 3600})),
        ("future iat", json!({"iat": now() + 300})),
        ("future nbf", json!({"nbf": now() + 300})),
        ("no exp", json!({"exp": null})),
    ] {
        let mut c = claims();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        let body = refused(&app, &jwt(&app.issuer.key, &header, &c), "invalid_grant").await;
        assert!(body["error"] == "invalid_grant", "{name}");
    }
}

#[tokio::test]
async fn a_wrong_audience_and_a_wrong_subject_are_invalid_grants() {
    let app = spawn_app().await;
    let header = json!({"alg": "ES256", "kid": app.issuer.kid});
    let mut c = claims();
    c["aud"] = "https://elsewhere.example".into();
    refused(&app, &jwt(&app.issuer.key, &header, &c), "invalid_grant").await;
    let mut c = claims();
    c["sub"] = "BANK000002".into();
    refused(&app, &jwt(&app.issuer.key, &header, &c), "invalid_grant").await;
}

#[tokio::test]
async fn a_replayed_jti_is_an_invalid_grant() {
    let app = spawn_app().await;
    let assertion = app.issuer.assertion();
    let first = app
        .token_form(&[("grant_type", GRANT), ("assertion", &assertion)])
        .await;
    assert_eq!(first.status(), 200);
    refused(&app, &assertion, "invalid_grant").await;
}

#[tokio::test]
async fn grant_type_and_parameters_are_checked() {
    let app = spawn_app().await;
    let response = app
        .token_form(&[
            ("grant_type", "client_credentials"),
            ("assertion", &app.issuer.assertion()),
        ])
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
    let response = app.token_form(&[("grant_type", GRANT)]).await;
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let response = app.token_form(&[("assertion", "x")]).await;
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let response = app
        .client
        .post(app.url("/authz/v1/oauth2/token"))
        .body("garbage")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    // A parameter given twice (RFC 6749 §3.2), in a form or a JSON body.
    let assertion = app.issuer.assertion();
    let response = app
        .token_form(&[
            ("grant_type", GRANT),
            ("assertion", "not.a.jwt"),
            ("assertion", &assertion),
        ])
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let response = app
        .client
        .post(app.url("/authz/v1/oauth2/token"))
        .body(format!(
            r#"{{"grant_type": "{GRANT}", "assertion": "not.a.jwt", "assertion": "{assertion}"}}"#
        ))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    refused(&app, "not.a.jwt", "invalid_grant").await;
}

#[tokio::test]
async fn an_oversized_token_request_is_413_in_the_oauth_shape() {
    let app = spawn_app().await;
    let huge = format!("grant_type={GRANT}&assertion={}", "a".repeat(100_000));
    let response = app
        .client
        .post(app.url("/authz/v1/oauth2/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    // Without a Content-Length the limit is met while reading.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let chunk = "x".repeat(70_000);
    let request = format!(
        "POST /authz/v1/oauth2/token HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("invalid_request"), "{answer}");
}
