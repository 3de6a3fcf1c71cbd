//! Our JWE decrypt against an independent implementation (josekit, on OpenSSL): whatever it
//! encrypts to our public key, we decrypt to the same bytes; any other alg, enc or a tampered
//! token is refused.

use d1_crypto::ec::AgreementKey;
use d1_crypto::jwe::{self, JweError};
use josekit::jwe::{JweHeader, ECDH_ES, ECDH_ES_A128KW};
use proptest::prelude::*;

fn encrypt(key: &AgreementKey, kid: &str, enc: &str, payload: &[u8]) -> String {
    let jwk_json = serde_json::to_vec(&key.public_key().to_jwk(Some(kid), None, None)).unwrap();
    let jwk = josekit::jwk::Jwk::from_bytes(&jwk_json).unwrap();
    let mut header = JweHeader::new();
    header.set_content_encryption(enc);
    header.set_key_id(kid);
    let encrypter = ECDH_ES.encrypter_from_jwk(&jwk).unwrap();
    josekit::jwe::serialize_compact(payload, &header, &encrypter).unwrap()
}

#[test]
fn a_card_payload_from_the_reference_library_decrypts() {
    let key = AgreementKey::generate().unwrap();
    let token = encrypt(
        &key,
        "enc-1",
        "A256GCM",
        br#"{"pan":"4111111111111111","exp":"1230"}"#,
    );
    let parsed = jwe::parse(&token).unwrap();
    assert_eq!(parsed.kid(), "enc-1");
    assert_eq!(
        parsed.decrypt(&key).unwrap().as_slice(),
        br#"{"pan":"4111111111111111","exp":"1230"}"#
    );
}

#[test]
fn other_algorithms_and_encodings_are_refused() {
    let key = AgreementKey::generate().unwrap();
    let a128 = encrypt(&key, "enc-1", "A128GCM", b"{}");
    assert_eq!(jwe::parse(&a128).unwrap_err(), JweError::Algorithm);
    let cbc = encrypt(&key, "enc-1", "A256CBC-HS512", b"{}");
    assert_eq!(jwe::parse(&cbc).unwrap_err(), JweError::Algorithm);
    let jwk_json = serde_json::to_vec(&key.public_key().to_jwk(Some("enc-1"), None, None)).unwrap();
    let jwk = josekit::jwk::Jwk::from_bytes(&jwk_json).unwrap();
    let mut header = JweHeader::new();
    header.set_content_encryption("A256GCM");
    header.set_key_id("enc-1");
    let kw = josekit::jwe::serialize_compact(
        b"{}",
        &header,
        &ECDH_ES_A128KW.encrypter_from_jwk(&jwk).unwrap(),
    )
    .unwrap();
    assert_eq!(jwe::parse(&kw).unwrap_err(), JweError::Algorithm);
}

#[test]
fn another_key_truncation_and_plain_json_are_refused() {
    let key = AgreementKey::generate().unwrap();
    let other = AgreementKey::generate().unwrap();
    let token = encrypt(&key, "enc-1", "A256GCM", b"secret");
    assert_eq!(
        jwe::parse(&token).unwrap().decrypt(&other).unwrap_err(),
        JweError::Decrypt
    );
    // A truncated tag still has a readable header: a compact JWE that cannot authenticate.
    assert_eq!(
        jwe::parse(&token[..token.len() - 5])
            .map(|_| ())
            .unwrap_err(),
        JweError::Decrypt
    );
    let unreadable_header = format!("bm90IGpzb24{}", &token[token.find('.').unwrap()..]);
    assert_eq!(
        jwe::parse(&unreadable_header).map(|_| ()).unwrap_err(),
        JweError::Malformed
    );
    assert_eq!(
        jwe::parse(r#"{"pan":"4111111111111111"}"#).unwrap_err(),
        JweError::Malformed
    );
    assert_eq!(jwe::parse("a.b.c.d").unwrap_err(), JweError::Malformed);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn whatever_the_reference_encrypts_we_decrypt(payload in proptest::collection::vec(any::<u8>(), 0..512)) {
        let key = AgreementKey::generate().unwrap();
        let token = encrypt(&key, "k", "A256GCM", &payload);
        let plain = jwe::parse(&token).unwrap().decrypt(&key).unwrap();
        prop_assert_eq!(plain.as_slice(), payload.as_slice());
    }

    #[test]
    fn any_flipped_character_in_iv_ciphertext_or_tag_is_refused(payload in proptest::collection::vec(any::<u8>(), 1..64), pick in any::<usize>()) {
        let key = AgreementKey::generate().unwrap();
        let token = encrypt(&key, "k", "A256GCM", &payload);
        let parts: Vec<&str> = token.split('.').collect();
        let start = parts[0].len() + parts[1].len() + 2;
        let index = start + pick % (token.len() - start);
        let mut bytes = token.into_bytes();
        if bytes[index] == b'.' {
            return Ok(());
        }
        bytes[index] = if bytes[index] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        let outcome = jwe::parse(&tampered).and_then(|p| p.decrypt(&key).map(|_| ()));
        prop_assert!(outcome.is_err());
    }

    #[test]
    fn parse_never_panics(text in "\\PC{0,300}") {
        let _ = jwe::parse(&text);
    }
}

#[test]
fn what_our_encrypt_seals_the_reference_library_decrypts() {
    let key = AgreementKey::generate().unwrap();
    let plain = br#"{"pan":"4111111111111111","exp":"1230"}"#;
    let token = jwe::encrypt(plain, key.public_key(), "enc-1").unwrap();
    let decrypter = ECDH_ES.decrypter_from_der(key.der()).unwrap();
    let (payload, header) = josekit::jwe::deserialize_compact(&token, &decrypter).unwrap();
    assert_eq!(payload, plain);
    assert_eq!(header.key_id(), Some("enc-1"));
    assert_eq!(header.content_encryption(), Some("A256GCM"));
}
