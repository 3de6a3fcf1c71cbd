//! Every cryptographic operation of d1-registry, in one place to review.
//!
//! - [`envelope`]: AES-256-GCM envelope encryption: a key-encryption key (KEK) wraps
//!   per-consumer data keys and the service's own private keys; data keys seal PI.
//! - [`keyfile`]: the KEK file on disk.
//! - [`ec`]: P-256 public keys as PEM or JWK, and the service's key pairs.
//! - [`jwt`]: ES256 JWTs: issuers' assertions in, our access tokens out.
//! - [`policy`]: what each seal at rest is bound to, and the PAN MAC.

pub mod ec;
pub mod envelope;
pub mod jwe;
pub mod jwt;
pub mod keyfile;
pub mod policy;

/// A cryptographic failure. Deliberately coarse: the caller learns that something did not
/// verify or decrypt, never which byte or why, and no secret is ever carried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// A ciphertext, wrapped key or signature did not verify.
    #[error("authentication failed")]
    Authentication,
    /// Bytes that are not a key of the expected kind.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// The random generator or a primitive failed.
    #[error("cryptographic primitive failed")]
    Primitive,
}

/// Base64url without padding, as JOSE uses it.
pub(crate) fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding.
pub(crate) fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
}

/// Fills a fresh buffer from the system's secure random generator.
///
/// # Errors
/// [`CryptoError::Primitive`] if the generator fails.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut out = [0u8; N];
    aws_lc_rs::rand::fill(&mut out).map_err(|_| CryptoError::Primitive)?;
    Ok(out)
}
