//! Envelope encryption with AES-256-GCM.
//!
//! The key-encryption key (KEK) never touches data directly: it wraps data keys and the
//! service's private keys. Each consumer has its own data key; destroying the wrapped data key
//! makes everything sealed under it unrecoverable (crypto-shredding). Every seal binds its
//! ciphertext to a context (issuer and consumer, or key id) through the associated data, so a
//! ciphertext moved to another row fails to open.
//!
//! Sealed form: `version (1) || nonce (12) || ciphertext || tag (16)`.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::hmac;
use zeroize::Zeroizing;

use crate::{random_bytes, CryptoError};

const VERSION: u8 = 1;
const OVERHEAD: usize = 1 + NONCE_LEN + 16;

fn seal_with(key: &LessSafeKey, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let nonce_bytes: [u8; NONCE_LEN] = random_bytes()?;
    let mut out = Vec::with_capacity(plaintext.len() + OVERHEAD);
    out.push(VERSION);
    out.extend_from_slice(&nonce_bytes);
    out.extend_from_slice(plaintext);
    let mut tail = out.split_off(1 + NONCE_LEN);
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce_bytes),
        Aad::from(context),
        &mut tail,
    )
    .map_err(|_| CryptoError::Primitive)?;
    out.extend_from_slice(&tail);
    Ok(out)
}

fn open_with(
    key: &LessSafeKey,
    sealed: &[u8],
    context: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if sealed.len() < OVERHEAD || sealed[0] != VERSION {
        return Err(CryptoError::Authentication);
    }
    let nonce = Nonce::try_assume_unique_for_key(&sealed[1..=NONCE_LEN])
        .map_err(|_| CryptoError::Authentication)?;
    let mut buf = Zeroizing::new(sealed[1 + NONCE_LEN..].to_vec());
    let len = key
        .open_in_place(nonce, Aad::from(context), &mut buf)
        .map_err(|_| CryptoError::Authentication)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

fn aes_key(bytes: &[u8]) -> Result<LessSafeKey, CryptoError> {
    UnboundKey::new(&AES_256_GCM, bytes)
        .map(LessSafeKey::new)
        .map_err(|_| CryptoError::InvalidKey("AES-256 key"))
}

/// The key-encryption key. Its bytes live only in this struct and the key file.
pub struct Kek {
    key: LessSafeKey,
    fingerprint: String,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kek(fingerprint {})", self.fingerprint)
    }
}

impl Kek {
    /// The length of a KEK in bytes.
    pub const LEN: usize = 32;

    /// Builds a KEK from its 32 bytes.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] for any other length.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let key = aes_key(bytes)?;
        // The fingerprint is a MAC of a fixed label, so it identifies the key without being
        // a hash of the key itself.
        let tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, bytes),
            b"d1-registry kek fingerprint v1",
        );
        let fingerprint = tag.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Self { key, fingerprint })
    }

    /// A stable, non-secret identifier of this KEK, stored beside the data it protects.
    #[must_use]
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Wraps a secret (a data key or a private key) for the given context.
    ///
    /// # Errors
    /// [`CryptoError::Primitive`] if the random generator fails.
    pub fn wrap(&self, secret: &[u8], context: &[u8]) -> Result<Vec<u8>, CryptoError> {
        seal_with(&self.key, secret, context)
    }

    /// Unwraps a secret wrapped for the same context.
    ///
    /// # Errors
    /// [`CryptoError::Authentication`] if it was wrapped by another KEK or for another context.
    pub fn unwrap(
        &self,
        wrapped: &[u8],
        context: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        open_with(&self.key, wrapped, context)
    }

    /// Creates a fresh data key and returns it with its wrapped form.
    ///
    /// # Errors
    /// [`CryptoError::Primitive`] if the random generator fails.
    pub fn new_data_key(&self, context: &[u8]) -> Result<(DataKey, Vec<u8>), CryptoError> {
        let bytes = Zeroizing::new(random_bytes::<32>()?);
        let wrapped = self.wrap(bytes.as_ref(), context)?;
        Ok((
            DataKey {
                key: aes_key(bytes.as_ref())?,
            },
            wrapped,
        ))
    }

    /// Opens a wrapped data key.
    ///
    /// # Errors
    /// [`CryptoError::Authentication`] if it does not belong to this KEK and context.
    pub fn open_data_key(&self, wrapped: &[u8], context: &[u8]) -> Result<DataKey, CryptoError> {
        let bytes = self.unwrap(wrapped, context)?;
        Ok(DataKey {
            key: aes_key(&bytes)?,
        })
    }
}

/// A per-consumer data key, unwrapped for the duration of one operation.
pub struct DataKey {
    key: LessSafeKey,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<secret>)")
    }
}

impl DataKey {
    /// Seals `plaintext`, bound to `context`.
    ///
    /// # Errors
    /// [`CryptoError::Primitive`] if the random generator fails.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>, CryptoError> {
        seal_with(&self.key, plaintext, context)
    }

    /// Opens what [`DataKey::seal`] sealed for the same context.
    ///
    /// # Errors
    /// [`CryptoError::Authentication`] on any tampering or a context mismatch.
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        open_with(&self.key, sealed, context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kek() -> Kek {
        Kek::from_bytes(&[7u8; 32]).unwrap()
    }

    #[test]
    fn a_data_key_wrapped_for_one_consumer_does_not_open_for_another() {
        let kek = kek();
        let (_, wrapped) = kek.new_data_key(b"BANK000001|alice").unwrap();
        assert!(kek.open_data_key(&wrapped, b"BANK000001|alice").is_ok());
        assert_eq!(
            kek.open_data_key(&wrapped, b"BANK000001|bob").unwrap_err(),
            CryptoError::Authentication
        );
    }

    #[test]
    fn another_kek_cannot_unwrap_and_has_another_fingerprint() {
        let other = Kek::from_bytes(&[8u8; 32]).unwrap();
        let wrapped = kek().wrap(b"secret", b"ctx").unwrap();
        assert!(other.unwrap(&wrapped, b"ctx").is_err());
        assert_ne!(other.fingerprint(), kek().fingerprint());
    }

    #[test]
    fn wrong_lengths_are_refused() {
        assert!(Kek::from_bytes(&[0u8; 16]).is_err());
        assert!(kek().unwrap(&[1u8; 5], b"").is_err());
    }

    proptest! {
        #[test]
        fn seal_then_open_round_trips(data in proptest::collection::vec(any::<u8>(), 0..2048), ctx in "[a-z|]{0,40}") {
            let kek = kek();
            let (key, wrapped) = kek.new_data_key(ctx.as_bytes()).unwrap();
            let sealed = key.seal(&data, ctx.as_bytes()).unwrap();
            prop_assert_eq!(sealed.len(), data.len() + OVERHEAD);
            let reopened = kek.open_data_key(&wrapped, ctx.as_bytes()).unwrap();
            let opened = reopened.open(&sealed, ctx.as_bytes()).unwrap();
            prop_assert_eq!(opened.as_slice(), data.as_slice());
        }

        #[test]
        fn any_flipped_bit_is_detected(data in proptest::collection::vec(any::<u8>(), 1..256), pos in any::<usize>(), bit in 0u8..8) {
            let kek = kek();
            let (key, _) = kek.new_data_key(b"c").unwrap();
            let mut sealed = key.seal(&data, b"c").unwrap();
            let i = pos % sealed.len();
            sealed[i] ^= 1 << bit;
            prop_assert!(key.open(&sealed, b"c").is_err());
        }
    }
}
