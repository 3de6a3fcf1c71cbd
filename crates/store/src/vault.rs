//! Sealing of personal data at rest, shared by every backend.
//!
//! Each consumer has its own data key, wrapped by the KEK. Both the wrapped key and the sealed
//! PI are bound (associated data) to the issuer and consumerId, so a row copied onto another
//! consumer does not open. Destroying the wrapped key shreds everything sealed under it.

use d1_crypto::envelope::{DataKey, Kek};
use d1_crypto::CryptoError;
use d1_domain::{ConsumerId, IssuerId, PersonalInformation};

use crate::StoreError;

/// A consumer's key material and PI sealed for a fresh start, ready to store.
#[derive(Clone)]
pub struct FreshConsumer {
    /// The new data key, wrapped by the KEK.
    pub wrapped_key: Vec<u8>,
    /// The PI sealed under that key, if any.
    pub sealed_pi: Option<Vec<u8>>,
}

/// The KEK, and the contexts every at-rest seal is bound to.
#[derive(Debug)]
pub struct Vault {
    kek: Kek,
}

fn context(purpose: &str, issuer: &IssuerId, consumer: &ConsumerId) -> Vec<u8> {
    format!("d1/{purpose}/v1|{}|{}", issuer.as_str(), consumer.as_str()).into_bytes()
}

fn crypto(e: CryptoError) -> StoreError {
    StoreError::Other(anyhow::anyhow!("sealed data did not open: {e}"))
}

impl Vault {
    /// Wraps the KEK.
    #[must_use]
    pub fn new(kek: Kek) -> Self {
        Self { kek }
    }

    /// The KEK itself, for service keys.
    #[must_use]
    pub fn kek(&self) -> &Kek {
        &self.kek
    }

    /// A fresh data key for a consumer, with its wrapped form to store.
    ///
    /// # Errors
    /// If the random generator fails.
    pub fn new_consumer_key(
        &self,
        issuer: &IssuerId,
        consumer: &ConsumerId,
    ) -> Result<(DataKey, Vec<u8>), StoreError> {
        self.kek
            .new_data_key(&context("dek", issuer, consumer))
            .map_err(crypto)
    }

    /// Seals a consumer's first life: a new data key and the PI under it.
    ///
    /// # Errors
    /// If the random generator or serialisation fails.
    pub fn fresh_consumer(
        &self,
        issuer: &IssuerId,
        consumer: &ConsumerId,
        pi: Option<&PersonalInformation>,
    ) -> Result<FreshConsumer, StoreError> {
        let (key, wrapped_key) = self.new_consumer_key(issuer, consumer)?;
        let sealed_pi = pi
            .map(|pi| self.seal_pi(&key, issuer, consumer, pi))
            .transpose()?;
        Ok(FreshConsumer {
            wrapped_key,
            sealed_pi,
        })
    }

    /// Opens a consumer's wrapped data key.
    ///
    /// # Errors
    /// If the key belongs to another consumer or KEK.
    pub fn open_consumer_key(
        &self,
        issuer: &IssuerId,
        consumer: &ConsumerId,
        wrapped: &[u8],
    ) -> Result<DataKey, StoreError> {
        self.kek
            .open_data_key(wrapped, &context("dek", issuer, consumer))
            .map_err(crypto)
    }

    /// Seals PI under a consumer's data key.
    ///
    /// # Errors
    /// If serialisation or the random generator fails.
    pub fn seal_pi(
        &self,
        key: &DataKey,
        issuer: &IssuerId,
        consumer: &ConsumerId,
        pi: &PersonalInformation,
    ) -> Result<Vec<u8>, StoreError> {
        let plain = zeroize::Zeroizing::new(
            serde_json::to_vec(pi).map_err(|e| StoreError::Other(e.into()))?,
        );
        key.seal(&plain, &context("pi", issuer, consumer))
            .map_err(crypto)
    }

    /// Opens sealed PI.
    ///
    /// # Errors
    /// If it was sealed for another consumer or has been tampered with.
    pub fn open_pi(
        &self,
        key: &DataKey,
        issuer: &IssuerId,
        consumer: &ConsumerId,
        sealed: &[u8],
    ) -> Result<PersonalInformation, StoreError> {
        let plain = key
            .open(sealed, &context("pi", issuer, consumer))
            .map_err(crypto)?;
        serde_json::from_slice(&plain)
            .map_err(|_| StoreError::Other(anyhow::anyhow!("stored PI is not readable")))
    }
}
