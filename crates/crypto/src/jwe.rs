//! The narrow JWE decrypt path: compact serialisation, `alg` ECDH-ES (direct key agreement),
//! `enc` A256GCM, curve P-256, and nothing else. Issuers encrypt card data (PAN and expiry)
//! to our published key; this is the only way it is read.
//!
//! Steps (RFC 7516, RFC 7518 §4.6): five compact parts with an empty encrypted key; the
//! protected header names our `kid` and carries the sender's ephemeral key `epk`; ECDH with
//! our private key gives Z; the Concat KDF (one SHA-256 round) turns Z into the AES-256 key;
//! AES-256-GCM opens the ciphertext with the ASCII protected header as associated data.
//! Cross-tested against an independent JOSE library and fuzzed (see `fuzz/`).
//!
//! [`encrypt`] is the sender's side of the same steps, for the API's clients (the load
//! benchmark, tests); the service itself only decrypts.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::agreement::{self, ECDH_P256};
use aws_lc_rs::digest;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::ec::{jwk_point, AgreementKey, Jwk, PublicKey};
use crate::{b64url, b64url_decode, random_bytes, CryptoError};

/// What a refusal of [`JweError::Malformed`] says.
pub const MALFORMED: &str = "is not a compact JWE (five parts, a base64url JSON header)";

/// Why a JWE was refused. `Malformed` is a format error for the API; the rest are values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JweError {
    #[error("{MALFORMED}")]
    Malformed,
    #[error("only alg ECDH-ES with enc A256GCM on P-256 is accepted")]
    Algorithm,
    #[error("is encrypted to an unknown key")]
    UnknownKid,
    #[error("does not decrypt")]
    Decrypt,
}

#[derive(Deserialize)]
struct Header {
    alg: Option<String>,
    enc: Option<String>,
    kid: Option<String>,
    epk: Option<Jwk>,
    apu: Option<String>,
    apv: Option<String>,
    zip: Option<String>,
    crit: Option<serde_json::Value>,
}

/// A compact JWE split and its header read, before any key is used.
/// It owns what it read, so it can be parsed on one thread and decrypted on another.
pub struct ParsedJwe {
    protected: String,
    iv: Vec<u8>,
    ciphertext: Vec<u8>,
    tag: Vec<u8>,
    kid: String,
    epk: Vec<u8>,
    apu: Vec<u8>,
    apv: Vec<u8>,
}

impl std::fmt::Debug for ParsedJwe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ParsedJwe(kid {})", self.kid)
    }
}

/// Splits a compact JWE and checks its header.
///
/// # Errors
/// [`JweError::Malformed`] unless it has five parts and a base64url JSON header;
/// [`JweError::Algorithm`] for any alg, enc, curve, encrypted key or option other than ours;
/// [`JweError::Decrypt`] for an IV, ciphertext or tag that cannot be ours.
pub fn parse(compact: &str) -> Result<ParsedJwe, JweError> {
    let parts: Vec<&str> = compact.split('.').collect();
    let [protected, encrypted_key, iv, ciphertext, tag] = parts.as_slice() else {
        return Err(JweError::Malformed);
    };
    let header_bytes = b64url_decode(protected).ok_or(JweError::Malformed)?;
    let header: Header = serde_json::from_slice(&header_bytes).map_err(|_| JweError::Malformed)?;
    // With a readable header it is a compact JWE; parts that do not decode, like parts of
    // the wrong length below, cannot authenticate: a bad tag, a value.
    let (Some(iv), Some(ciphertext), Some(tag)) = (
        b64url_decode(iv),
        b64url_decode(ciphertext),
        b64url_decode(tag),
    ) else {
        return Err(JweError::Decrypt);
    };
    if header.alg.as_deref() != Some("ECDH-ES") || header.enc.as_deref() != Some("A256GCM") {
        return Err(JweError::Algorithm);
    }
    // Direct key agreement carries no encrypted key; compression and critical extensions
    // are not part of what we accept.
    if !encrypted_key.is_empty() || header.zip.is_some() || header.crit.is_some() {
        return Err(JweError::Algorithm);
    }
    let kid = header
        .kid
        .filter(|k| !k.is_empty())
        .ok_or(JweError::UnknownKid)?;
    let epk = header.epk.as_ref().ok_or(JweError::Algorithm)?;
    // Only the shape is checked here: the agreement itself refuses a point off the curve,
    // which spares a second EC operation per decrypt.
    let epk = jwk_point(epk).map_err(|_| JweError::Algorithm)?;
    let decode_party = |v: Option<String>| match v {
        None => Ok(Vec::new()),
        Some(text) => b64url_decode(&text).ok_or(JweError::Malformed),
    };
    if iv.len() != 12 || tag.len() != 16 {
        return Err(JweError::Decrypt);
    }
    Ok(ParsedJwe {
        protected: (*protected).to_owned(),
        iv,
        ciphertext,
        tag,
        kid,
        epk,
        apu: decode_party(header.apu)?,
        apv: decode_party(header.apv)?,
    })
}

impl ParsedJwe {
    /// The key id the sender encrypted to.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Decrypts with our key for [`ParsedJwe::kid`].
    ///
    /// # Errors
    /// [`JweError::Decrypt`] if the agreement or the authentication tag fails.
    pub fn decrypt(&self, key: &AgreementKey) -> Result<Zeroizing<Vec<u8>>, JweError> {
        let peer = agreement::UnparsedPublicKey::new(&ECDH_P256, &self.epk);
        let cek = agreement::agree(key.private(), peer, JweError::Decrypt, |z| {
            Ok(concat_kdf(z, &self.apu, &self.apv))
        })?;
        let aead = UnboundKey::new(&AES_256_GCM, cek.as_ref())
            .map(LessSafeKey::new)
            .map_err(|_| JweError::Decrypt)?;
        let nonce = Nonce::try_assume_unique_for_key(&self.iv).map_err(|_| JweError::Decrypt)?;
        let mut buffer = Zeroizing::new(Vec::with_capacity(self.ciphertext.len() + self.tag.len()));
        buffer.extend_from_slice(&self.ciphertext);
        buffer.extend_from_slice(&self.tag);
        let len = aead
            .open_in_place(nonce, Aad::from(self.protected.as_bytes()), &mut buffer)
            .map_err(|_| JweError::Decrypt)?
            .len();
        buffer.truncate(len);
        Ok(buffer)
    }
}

/// Encrypts `plain` to `to` under `kid` as an issuer does: compact JWE, `alg` ECDH-ES with a
/// fresh ephemeral key, `enc` A256GCM, no `apu` or `apv`.
///
/// # Errors
/// [`CryptoError::Primitive`] if the random generator or a primitive fails.
pub fn encrypt(plain: &[u8], to: &PublicKey, kid: &str) -> Result<String, CryptoError> {
    let ephemeral =
        agreement::PrivateKey::generate(&ECDH_P256).map_err(|_| CryptoError::Primitive)?;
    let epk = ephemeral
        .compute_public_key()
        .map_err(|_| CryptoError::Primitive)?;
    let epk = epk.as_ref();
    let header = serde_json::json!({
        "alg": "ECDH-ES",
        "enc": "A256GCM",
        "kid": kid,
        "epk": Jwk {
            kty: "EC".into(),
            crv: "P-256".into(),
            x: b64url(&epk[1..33]),
            y: b64url(&epk[33..]),
            kid: None,
            use_: None,
            alg: None,
        },
    });
    let protected = b64url(header.to_string().as_bytes());
    let peer = agreement::UnparsedPublicKey::new(&ECDH_P256, to.point());
    let cek = agreement::agree(&ephemeral, peer, CryptoError::Primitive, |z| {
        Ok(concat_kdf(z, &[], &[]))
    })?;
    let aead = UnboundKey::new(&AES_256_GCM, cek.as_ref())
        .map(LessSafeKey::new)
        .map_err(|_| CryptoError::Primitive)?;
    let iv = random_bytes::<12>()?;
    let mut sealed = plain.to_vec();
    let tag = aead
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(protected.as_bytes()),
            &mut sealed,
        )
        .map_err(|_| CryptoError::Primitive)?;
    Ok(format!(
        "{protected}..{}.{}.{}",
        b64url(&iv),
        b64url(&sealed),
        b64url(tag.as_ref())
    ))
}

fn length_prefixed(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(data);
}

/// RFC 7518 §4.6.2 Concat KDF for direct ECDH-ES with A256GCM: one SHA-256 round.
fn concat_kdf(z: &[u8], apu: &[u8], apv: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut input = Zeroizing::new(Vec::with_capacity(4 + z.len() + 64));
    input.extend_from_slice(&1u32.to_be_bytes());
    input.extend_from_slice(z);
    length_prefixed(&mut input, b"A256GCM");
    length_prefixed(&mut input, apu);
    length_prefixed(&mut input, apv);
    input.extend_from_slice(&256u32.to_be_bytes());
    let hash = digest::digest(&digest::SHA256, &input);
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(hash.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_encrypt_seals_decrypts_to_the_same_bytes_under_its_kid() {
        let key = AgreementKey::generate().unwrap();
        let plain = br#"{"pan":"4111111111111111","exp":"1230"}"#;
        let token = encrypt(plain, key.public_key(), "enc-1").unwrap();
        let parsed = parse(&token).unwrap();
        assert_eq!(parsed.kid(), "enc-1");
        assert_eq!(parsed.decrypt(&key).unwrap().as_slice(), plain);
        let other = AgreementKey::generate().unwrap();
        assert_eq!(parsed.decrypt(&other).unwrap_err(), JweError::Decrypt);
    }
}
