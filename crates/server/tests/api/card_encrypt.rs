//! `d1-registry card encrypt` as a new user runs it (contract section 6, "Encrypting card
//! data for a try-out"): the real binary, against a running service or a JWK set file, and
//! the JWE it prints registered with Register card.

use std::process::Output;

use base64::Engine;
use d1_domain::card::Scheme;
use serde_json::{json, Value};

use crate::harness::{future_exp, jwe_key, spawn_app, test_pan, TestApp};
use crate::process::free_port;

/// Runs the binary with `args` in an empty directory, which it must leave empty: the
/// command needs no data directory and makes none.
async fn run(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_d1-registry"))
        .args(args)
        .current_dir(dir.path())
        .output()
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "card encrypt wrote to its directory"
    );
    out
}

/// `card encrypt` for `pan` against the running app; the JWE it printed.
async fn encrypt(app: &TestApp, pan: &str, exp: &str) -> String {
    let url = app.url("");
    let out = run(&["card", "encrypt", "--pan", pan, "--exp", exp, "--url", &url]).await;
    printed_jwe(&out)
}

/// The JWE a successful run printed: one line, a newline after it.
fn printed_jwe(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let jwe = stdout.strip_suffix('\n').expect("a newline after the JWE");
    assert!(!jwe.contains('\n'), "one line: {stdout}");
    jwe.to_owned()
}

/// The protected header of a compact JWE.
fn header(jwe: &str) -> Value {
    let parts: Vec<&str> = jwe.split('.').collect();
    assert_eq!(parts.len(), 5, "five compact parts");
    assert!(parts[1].is_empty(), "ECDH-ES has no encrypted key");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[0])
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Registers `card` with `jwe`, expecting 204.
async fn register(app: &TestApp, token: &str, card: &str, jwe: &str) {
    let body = json!({"consumerId": "c1", "cardProductId": "visa", "encryptedData": jwe});
    let response = app.put_json(&app.card_url(card), token, &body).await;
    assert_eq!(response.status(), 204, "{}", response.text().await.unwrap());
}

/// Asserts a refusal: exit 1, nothing on stdout, one line on stderr saying `why` and never
/// the card number.
fn assert_refused(out: &Output, why: &str, pan: &str) {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(why), "{stderr} should say {why}");
    assert!(!stderr.contains(pan), "the PAN is echoed: {stderr}");
}

#[tokio::test]
async fn a_jwe_printed_for_the_services_first_key_registers_the_card() {
    let app = spawn_app().await;
    app.add_product("visa", Scheme::Visa, "411111").await;
    let token = app.token().await;
    let pan = test_pan(1);
    let exp = future_exp();

    let jwe = encrypt(&app, &pan, &exp).await;
    let first = jwe_key(&app).await;
    let h = header(&jwe);
    assert_eq!(h["alg"], "ECDH-ES");
    assert_eq!(h["enc"], "A256GCM");
    assert_eq!(h["kid"], first["kid"]);
    assert_eq!(h["epk"]["crv"], "P-256");
    assert!(!jwe.contains(&pan));
    register(&app, &token, "card-1", &jwe).await;
    let card: Value = app
        .get(&app.card_url("card-1"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(card["last4"], &pan[pan.len() - 4..]);
    assert_eq!(card["expiry"], exp.as_str());

    // After a rotation the newest key comes first, and that is the one encrypted to.
    let rotated = app
        .state
        .keyring
        .rotate(app.state.store.as_ref())
        .await
        .unwrap();
    let jwe = encrypt(&app, &test_pan(2), &exp).await;
    assert_eq!(header(&jwe)["kid"], rotated.as_str());
    assert_ne!(rotated.as_str(), first["kid"].as_str().unwrap());
    register(&app, &token, "card-2", &jwe).await;
}

#[tokio::test]
async fn a_jwk_set_file_serves_instead_of_the_service() {
    let app = spawn_app().await;
    app.add_product("visa", Scheme::Visa, "411111").await;
    let token = app.token().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    let set = json!({"keys": [jwe_key(&app).await]});
    std::fs::write(&file, serde_json::to_vec_pretty(&set).unwrap()).unwrap();

    let out = run(&[
        "card",
        "encrypt",
        "--pan",
        &test_pan(3),
        "--exp",
        &future_exp(),
        "--jwks",
        file.to_str().unwrap(),
    ])
    .await;
    let jwe = printed_jwe(&out);
    assert_eq!(header(&jwe)["kid"], set["keys"][0]["kid"]);
    register(&app, &token, "card-3", &jwe).await;
}

#[tokio::test]
async fn bad_card_data_keys_or_usage_are_refused_with_their_exit_codes() {
    let pan = test_pan(4);
    let exp = future_exp();
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.json");
    std::fs::write(&empty, r#"{"keys": []}"#).unwrap();
    let empty = empty.to_str().unwrap();
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let mut bad_luhn = pan.clone();
    let last = bad_luhn.pop().unwrap().to_digit(10).unwrap();
    bad_luhn.push(char::from_digit((last + 1) % 10, 10).unwrap());

    let cases: [(&[&str], &str, &str); 6] = [
        (&["--pan", &bad_luhn, "--exp", &exp], "Luhn", &bad_luhn),
        (
            &["--pan", "4111-1111", "--exp", &exp],
            "12 to 19 digits",
            "4111-1111",
        ),
        (&["--pan", &pan, "--exp", "0120"], "expired", &pan),
        (&["--pan", &pan, "--exp", "1330"], "real month", &pan),
        (
            &["--pan", &pan, "--exp", &exp, "--url", &nowhere],
            "could not reach",
            &pan,
        ),
        (
            &["--pan", &pan, "--exp", &exp, "--jwks", empty],
            "no key",
            &pan,
        ),
    ];
    for (args, why, secret) in cases {
        let out = run(&[&["card", "encrypt"], args].concat()).await;
        assert_refused(&out, why, secret);
    }

    for usage in [
        &["--exp", &exp][..],
        &["--pan", &pan][..],
        &[
            "--pan", &pan, "--exp", &exp, "--url", &nowhere, "--jwks", empty,
        ][..],
    ] {
        let out = run(&[&["card", "encrypt"], usage].concat()).await;
        assert_eq!(out.status.code(), Some(2), "{usage:?} is bad usage");
        assert!(out.stdout.is_empty());
    }
}
