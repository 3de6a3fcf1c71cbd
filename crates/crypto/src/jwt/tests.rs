//! Tests of the parent module.

use super::*;
use base64::Engine;

const NOW: i64 = 1_800_000_000;

fn b64(v: &serde_json::Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

fn forged(header: serde_json::Value, claims: serde_json::Value) -> String {
    format!("{}.{}.c2ln", b64(&header), b64(&claims))
}

fn claims(exp: i64) -> serde_json::Value {
    serde_json::json!({"iss": "BANK000001", "sub": "BANK000001", "exp": exp})
}

fn signed(key: &SigningKey, claims: &serde_json::Value) -> String {
    sign(claims, key, "k1").unwrap()
}

fn verify(token: &str, key: &SigningKey) -> Result<VerifiedAssertion, JwtError> {
    verify_assertion(
        token,
        key.public_key(),
        "BANK000001",
        &["https://api.d1.thalescloud.io".into()],
        NOW,
    )
}

#[test]
fn a_good_assertion_verifies() {
    let key = SigningKey::generate().unwrap();
    let token = sign_assertion(
        &key,
        "k1",
        "BANK000001",
        Some("https://api.d1.thalescloud.io"),
        "j1",
        NOW,
    )
    .unwrap();
    let ok = verify(&token, &key).unwrap();
    assert_eq!(ok.jti.as_deref(), Some("j1"));
}

#[test]
fn none_and_hs256_are_refused_before_any_key_is_used() {
    assert_eq!(
        read_header(&forged(
            serde_json::json!({"alg": "none", "kid": "k1"}),
            claims(NOW + 60)
        )),
        Err(JwtError::Algorithm)
    );
    assert_eq!(
        read_header(&forged(
            serde_json::json!({"alg": "HS256", "kid": "k1"}),
            claims(NOW + 60)
        )),
        Err(JwtError::Algorithm)
    );
    assert_eq!(
        read_header(&forged(
            serde_json::json!({"alg": "ES256"}),
            claims(NOW + 60)
        )),
        Err(JwtError::MissingKid)
    );
    assert_eq!(read_header("garbage"), Err(JwtError::Malformed));
}

#[test]
fn time_claims_are_enforced() {
    let key = SigningKey::generate().unwrap();
    assert_eq!(
        verify(&signed(&key, &claims(NOW - 1)), &key),
        Err(JwtError::Expired)
    );
    assert_eq!(
        verify(&signed(&key, &claims(NOW + 16 * 60)), &key),
        Err(JwtError::TooFarAhead)
    );
    let mut c = claims(NOW + 60);
    c["iat"] = (NOW + 120).into();
    assert_eq!(verify(&signed(&key, &c), &key), Err(JwtError::NotYetValid));
    let mut c = claims(NOW + 60);
    c["aud"] = "https://elsewhere.example".into();
    assert_eq!(verify(&signed(&key, &c), &key), Err(JwtError::Audience));
    let mut c = claims(NOW + 60);
    c["iss"] = "BANK000002".into();
    assert_eq!(verify(&signed(&key, &c), &key), Err(JwtError::Issuer));
}

#[test]
fn another_keys_signature_is_refused() {
    let key = SigningKey::generate().unwrap();
    let other = SigningKey::generate().unwrap();
    assert_eq!(
        verify(&signed(&other, &claims(NOW + 60)), &key),
        Err(JwtError::Signature)
    );
}

#[test]
fn access_tokens_round_trip() {
    let key = SigningKey::generate().unwrap();
    let token = sign_access_token(&key, "s1", "BANK000001", "k1", "t1", NOW).unwrap();
    let c = verify_access_token(&token, key.public_key(), NOW + 10).unwrap();
    assert_eq!(c.sub, "BANK000001");
    assert_eq!(
        verify_access_token(&token, key.public_key(), NOW + 901),
        Err(JwtError::Expired)
    );
}
