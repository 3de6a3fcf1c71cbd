//! What the fuzz targets (`fuzz/fuzz_targets/`) feed their input to: one function per target,
//! each the real parser of untrusted input plus the properties that must hold for any input.
//! A function returns on refusal and panics when a property breaks; the corpus replay test
//! below feeds it every committed corpus file, so CI checks the corpora without a fuzzer.
//!
//! Properties besides "never panics": an accepted value round-trips; a refusal names its field
//! with the contract's own words only (never a client's value); an accepted assertion is within
//! its lifetime rules; a JWE decrypts to what was sealed.

use std::sync::OnceLock;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use d1_crypto::ec::{AgreementKey, SigningKey};
use d1_domain::card::lifecycle::{CardOperation, OPERATIONS};
use d1_domain::card::{CardId, CardProductId, Expiry, Pan};
use d1_domain::{ConsumerId, CorrelationId, FieldError, IdError, IssuerId, Kid, UserId};

use crate::wire::card::{CardPlaintext, CreateCardRequest, RegisterCardRequest, V1CardsRequest};
use crate::wire::checks::{id_error, Finish};
use crate::wire::consumer::{
    DeleteConsumerRequest, RegisterConsumerRequest, UpdateConsumerRequest,
    V1RegisterConsumerRequest,
};
use crate::wire::json;
use crate::wire::lifecycle::{
    read_body, BodyOf, CardOperationRequest, RenewCardRequest, ReplaceCardRequest,
};
use crate::wire::pi::{consumer_info, PersonalInformationDto};

/// The fixed "now" of the assertion target (Unix seconds), so that a finding replays.
const NOW: i64 = 1_700_000_000;

/// A refusal's field is a dotted path of the contract's names (`cards[0].cardId`), never text
/// the client chose.
fn assert_clean(e: &FieldError) {
    let ok = e.field.split('.').all(|segment| {
        let name = segment.split('[').next().unwrap_or_default();
        let indices = &segment[name.len()..];
        (name == "?" || json::printable_key(name))
            && indices
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'[' || b == b']')
    });
    assert!(
        ok,
        "a refusal names a field that is not a contract name: {e:?}"
    );
}

/// PI bodies (`personalInformation`, and the issuer backend's `consumerInfo`): an accepted PI
/// written back as the API shows it is accepted again, equal.
pub fn pi(data: &[u8]) {
    if consumer_info(data).is_some() {
        assert!(json::read::<PersonalInformationDto>(data).is_ok());
    }
    let parsed = json::read::<PersonalInformationDto>(data).and_then(|dto| dto.parse("pi"));
    match parsed {
        Err(e) => assert_clean(&e),
        Ok(pi) => {
            let shown = serde_json::to_vec(&PersonalInformationDto::from(&pi)).expect("serialises");
            let again = json::read::<PersonalInformationDto>(&shown)
                .and_then(|dto| dto.parse("pi"))
                .expect("a PI as shown is accepted again");
            assert!(again == pi, "a PI as shown reads back different");
        }
    }
}

/// Checks an id parser's verdict: an accepted id is the input itself, within `max` bytes.
fn id<T>(input: &str, max: usize, parsed: Result<T, IdError>, as_str: impl Fn(&T) -> &str) {
    if let Ok(value) = parsed {
        assert_eq!(as_str(&value), input);
        assert!(
            !input.is_empty() && input.len() <= max,
            "an id of {} bytes",
            input.len()
        );
    }
}

/// The id parsers of paths, headers and bodies.
pub fn ids(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    id(s, 10, IssuerId::parse(s), IssuerId::as_str);
    id(
        s,
        64,
        ConsumerId::parse(s).map(|(c, _)| c),
        ConsumerId::as_str,
    );
    id(s, 48, CardId::parse(s), CardId::as_str);
    id(s, 48, CardProductId::parse(s), CardProductId::as_str);
    id(s, 64, CorrelationId::parse_v2(s), CorrelationId::as_str);
    id(s, 64, CorrelationId::parse_v1(s), CorrelationId::as_str);
    id(s, 15, UserId::parse(s), UserId::as_str);
    id(s, 128, Kid::parse(s), Kid::as_str);
    if ConsumerId::parse(s).is_ok() || CardId::parse(s).is_ok() {
        // The contract's guard: 13 to 19 digits passing Luhn. Card data may hold a 12-digit
        // PAN, which the guard lets through as an id (found by this target; the contract's
        // choice, corpus file `twelve-digit-luhn`).
        let digits = (13..=19).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
        assert!(
            !(digits && d1_domain::guard::luhn_valid(s)),
            "a PAN accepted as an id"
        );
    }
}

/// A consumerId read as the routes read one (the look-alike policy aside).
fn consumer(raw: &str) -> Result<ConsumerId, FieldError> {
    ConsumerId::parse(raw)
        .map(|(id, _)| id)
        .map_err(|e| id_error("consumerId", e))
}

/// Reads `body` as `T` and applies its rules with `parse`, to the end of the check phases.
fn body<T: serde::de::DeserializeOwned, U>(
    data: &[u8],
    parse: impl FnOnce(T) -> Result<U, FieldError>,
) {
    if let Err(e) = json::read::<T>(data).and_then(parse) {
        assert_clean(&e);
    }
}

/// The request bodies: the first byte picks the type (modulo 8; for the card life cycle,
/// 7, the operation is the byte divided by 8, modulo 6), the rest is the body.
pub fn bodies(data: &[u8]) {
    let Some((&which, data)) = data.split_first() else {
        return;
    };
    match which % 8 {
        0 => body(data, |b: RegisterConsumerRequest| {
            b.parse()?.finish().map(|_| ())
        }),
        1 => body(data, |b: UpdateConsumerRequest| {
            b.parse()?.finish().map(|_| ())
        }),
        2 => body(data, |b: DeleteConsumerRequest| {
            b.parse()?.finish().map(|_| ())
        }),
        3 => body(data, |_: V1RegisterConsumerRequest| Ok(())),
        4 => body(data, |b: RegisterCardRequest| {
            b.parse(consumer)?.finish().map(|_| ())
        }),
        5 => body(data, |b: CreateCardRequest| {
            b.parse(consumer)?.finish().map(|_| ())
        }),
        6 => body(data, |b: V1CardsRequest| {
            b.cards
                .into_iter()
                .enumerate()
                .try_for_each(|(i, c)| c.parse(i).and_then(Finish::finish).map(|_| ()))
        }),
        _ => {
            let op = OPERATIONS[usize::from(which / 8) % OPERATIONS.len()];
            // As the route reads it: the operation's own type, an empty body allowed.
            let typed = |op| -> Result<BodyOf, FieldError> {
                Ok(match op {
                    CardOperation::Renew => BodyOf::Renew(json::read::<RenewCardRequest>(data)?),
                    CardOperation::Replace => {
                        BodyOf::Replace(json::read::<ReplaceCardRequest>(data)?)
                    }
                    _ => BodyOf::Plain(json::read::<CardOperationRequest>(data)?),
                })
            };
            if let Err(e) = read_body(op, data.is_empty(), typed).and_then(Finish::finish) {
                assert_clean(&e);
            }
        }
    }
}

fn assertion_key() -> &'static (SigningKey, EcdsaKeyPair) {
    static KEY: OnceLock<(SigningKey, EcdsaKeyPair)> = OnceLock::new();
    KEY.get_or_init(|| {
        let key = SigningKey::generate().expect("a P-256 key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, key.pkcs8())
            .expect("its own PKCS#8");
        (key, pair)
    })
}

/// Assertions (and access tokens): the first byte 0 takes the rest as a token as sent; any
/// other takes it as the claims of a token signed with the issuer's key, so the claim rules
/// are reached. An accepted assertion is the issuer's and within its lifetime.
pub fn assertion(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (key, pair) = assertion_key();
    let audiences = ["https://api.d1.thalescloud.io".to_owned()];
    let token = if mode == 0 {
        let Ok(text) = std::str::from_utf8(rest) else {
            return;
        };
        let _ = d1_crypto::jwt::read_header(text);
        let _ = d1_crypto::jwt::verify_access_token(text, key.public_key(), NOW);
        text.to_owned()
    } else {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","typ":"JWT","kid":"fuzz"}"#);
        let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(rest));
        let signature = pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .expect("signs");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    };
    let verified =
        d1_crypto::jwt::verify_assertion(&token, key.public_key(), "ISSUER0001", &audiences, NOW);
    if let Ok(v) = verified {
        assert_eq!(v.issuer, "ISSUER0001");
        assert!(v.exp > NOW && v.exp <= NOW + 15 * 60 + 30, "exp {}", v.exp);
        assert!(v
            .jti
            .as_ref()
            .is_none_or(|j| !j.is_empty() && j.len() <= 256));
    }
}

fn jwe_key() -> &'static AgreementKey {
    static KEY: OnceLock<AgreementKey> = OnceLock::new();
    KEY.get_or_init(|| AgreementKey::generate().expect("a P-256 key"))
}

/// JWEs: the first byte 0 takes the rest as a compact JWE as sent; any other seals it as a
/// card's plaintext, which must decrypt to itself and is then read as Register card reads it.
pub fn jwe(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let key = jwe_key();
    if mode == 0 {
        let parsed = std::str::from_utf8(rest)
            .ok()
            .and_then(|text| d1_crypto::jwe::parse(text).ok());
        if let Some(parsed) = parsed {
            let _ = parsed.kid();
            let _ = parsed.decrypt(key);
        }
        return;
    }
    let sealed = d1_crypto::jwe::encrypt(rest, key.public_key(), "fuzz").expect("seals");
    let plain = d1_crypto::jwe::parse(&sealed)
        .expect("our own JWE parses")
        .decrypt(key)
        .expect("our own JWE decrypts");
    assert_eq!(&plain[..], rest);
    if let Ok(card) = CardPlaintext::read(&plain, "encryptedData") {
        let today = time::macros::date!(2026 - 12 - 01);
        if let Err(e) = Pan::parse(&card.pan, "encryptedData") {
            assert_clean(&e);
        }
        if let Err(e) = Expiry::parse(&card.exp, today, "encryptedData") {
            assert_clean(&e);
        }
    }
}

#[cfg(test)]
mod tests;
