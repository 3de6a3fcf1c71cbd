//! Card data sealed the way an issuer does it: a JWE to the service's published key, made
//! with the project's own crypto (no second JOSE library, no OpenSSL).

use anyhow::Context;
use d1_crypto::ec::{Jwk, PublicKey};

/// The service's JWE key, as its JWK set publishes it.
pub struct Recipient {
    key: PublicKey,
    kid: String,
}

impl Recipient {
    /// The first key of a `/.well-known/jwks.json` answer.
    pub fn from_jwks(jwks: &serde_json::Value) -> anyhow::Result<Self> {
        let jwk: Jwk = serde_json::from_value(jwks["keys"][0].clone())
            .context("the JWK set has no usable first key")?;
        let kid = jwk.kid.clone().context("the JWK has no kid")?;
        let key = PublicKey::from_jwk(&jwk)?;
        Ok(Self { key, kid })
    }

    /// `plain` as a compact JWE to this key.
    pub fn seal(&self, plain: &str) -> anyhow::Result<String> {
        Ok(d1_crypto::jwe::encrypt(
            plain.as_bytes(),
            &self.key,
            &self.kid,
        )?)
    }
}
