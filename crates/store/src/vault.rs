//! Sealing of personal data at rest, shared by every backend; what each seal is bound to
//! is the crypto policy of `d1_crypto::policy`.
//!
//! Each consumer has its own data key, wrapped by the KEK. Both the wrapped key and the sealed
//! PI are bound (associated data) to the issuer and consumerId, so a row copied onto another
//! consumer does not open. Destroying the wrapped key shreds everything sealed under it.

use d1_crypto::envelope::{DataKey, Kek};
use d1_crypto::policy::{
    backend_secret_context, card_context, consumer_context, ConsumerSeal, PanMac,
};
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
pub struct Vault {
    kek: Kek,
    pan_mac: PanMac,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vault({:?})", self.kek)
    }
}

fn context(seal: ConsumerSeal, issuer: &IssuerId, consumer: &ConsumerId) -> Vec<u8> {
    consumer_context(seal, issuer.as_str(), consumer.as_str())
}

fn crypto(e: CryptoError) -> StoreError {
    StoreError::Other(anyhow::anyhow!("sealed data did not open: {e}"))
}

impl Vault {
    /// Holds the KEK and the PAN MAC key (32 bytes, unwrapped).
    #[must_use]
    pub fn new(kek: Kek, pan_mac_key: &[u8]) -> Self {
        Self {
            kek,
            pan_mac: PanMac::new(pan_mac_key),
        }
    }

    /// A keyed MAC of a PAN within an issuer: compares PANs without holding them in clear.
    #[must_use]
    pub fn pan_mac(&self, issuer: &IssuerId, pan: &d1_domain::card::Pan) -> Vec<u8> {
        self.pan_mac.of(issuer.as_str(), pan.digits())
    }

    /// Seals card data under a consumer's data key, bound to the card.
    ///
    /// # Errors
    /// If the random generator fails.
    pub fn seal_card(
        &self,
        key: &DataKey,
        issuer: &IssuerId,
        card: &d1_domain::card::CardId,
        data: &crate::CardData,
    ) -> Result<Vec<u8>, StoreError> {
        let mut doc = data.holder.clone().unwrap_or_default().0;
        doc.insert("pan".into(), data.pan.digits().into());
        doc.insert("exp".into(), data.expiry.mmyy().into());
        let plain = zeroize::Zeroizing::new(
            serde_json::to_vec(&doc).map_err(|e| StoreError::Other(e.into()))?,
        );
        key.seal(&plain, &card_context(issuer.as_str(), card.as_str()))
            .map_err(crypto)
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
            .new_data_key(&context(ConsumerSeal::DataKey, issuer, consumer))
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
            .open_data_key(wrapped, &context(ConsumerSeal::DataKey, issuer, consumer))
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
        key.seal(&plain, &context(ConsumerSeal::Pi, issuer, consumer))
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
            .open(sealed, &context(ConsumerSeal::Pi, issuer, consumer))
            .map_err(crypto)?;
        serde_json::from_slice(&plain)
            .map_err(|_| StoreError::Other(anyhow::anyhow!("stored PI is not readable")))
    }
}

impl Vault {
    /// What Register card stores for a consumer it registers implicitly: the new consumer's
    /// data key, and the card sealed under it. Made only once the transaction has found no
    /// consumer, so that a card for a registered consumer pays for no key it throws away.
    ///
    /// # Errors
    /// If the key cannot be made or the card sealed.
    pub fn implicit_consumer(
        &self,
        cmd: &crate::RegisterCard,
    ) -> crate::StoreResult<(FreshConsumer, Vec<u8>)> {
        let (key, wrapped_key) = self.new_consumer_key(&cmd.issuer_id, &cmd.consumer_id)?;
        let sealed = self.seal_card(&key, &cmd.issuer_id, &cmd.card_id, &cmd.data)?;
        let fresh = FreshConsumer {
            wrapped_key,
            sealed_pi: None,
        };
        Ok((fresh, sealed))
    }
}

/// Click to Pay's sealing: the issuer backend's client secret, a card opened for the
/// directory, what an enrolment's body gave, and the directory's own rows.
impl Vault {
    /// Seals an issuer backend's client secret under the KEK, bound to the issuer.
    ///
    /// # Errors
    /// If the random generator fails.
    pub fn seal_backend_secret(
        &self,
        issuer: &IssuerId,
        secret: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        self.kek
            .wrap(secret, &backend_secret_context(issuer.as_str()))
            .map_err(crypto)
    }

    /// Opens an issuer backend's client secret.
    ///
    /// # Errors
    /// If it was sealed for another issuer or KEK.
    pub fn open_backend_secret(
        &self,
        issuer: &IssuerId,
        sealed: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, StoreError> {
        self.kek
            .unwrap(sealed, &backend_secret_context(issuer.as_str()))
            .map_err(crypto)
    }

    /// Opens a card's sealed data.
    ///
    /// # Errors
    /// If it was sealed for another card or does not parse.
    pub fn open_card(
        &self,
        key: &DataKey,
        issuer: &IssuerId,
        card: &str,
        sealed: &[u8],
    ) -> Result<crate::CardSecret, StoreError> {
        let plain = key
            .open(sealed, &card_context(issuer.as_str(), card))
            .map_err(crypto)?;
        let doc: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&plain)
            .map_err(|_| StoreError::Other(anyhow::anyhow!("stored card is not readable")))?;
        let text = |k: &str| doc.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let unreadable = || StoreError::Other(anyhow::anyhow!("stored card is not readable"));
        Ok(crate::CardSecret {
            pan: text("pan").ok_or_else(unreadable)?,
            expiry: text("exp").ok_or_else(unreadable)?,
            cardholder_name: text("cardholderName").filter(|n| !n.trim().is_empty()),
        })
    }

    /// A card's sealed data sealed again for `to` (the same card, or its replacement), with a
    /// new expiry and, for a replacement, a new PAN; cardholder names and accounts are kept.
    ///
    /// # Errors
    /// If it was sealed for another card, does not parse, or the random generator fails.
    #[expect(
        clippy::too_many_arguments,
        reason = "one seal, from one card to another"
    )]
    pub fn reseal_card(
        &self,
        key: &DataKey,
        issuer: &IssuerId,
        from: &str,
        sealed: &[u8],
        to: &d1_domain::card::CardId,
        pan: Option<&d1_domain::card::Pan>,
        expiry: d1_domain::card::Expiry,
    ) -> Result<Vec<u8>, StoreError> {
        let plain = key
            .open(sealed, &card_context(issuer.as_str(), from))
            .map_err(crypto)?;
        let mut doc: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&plain)
            .map_err(|_| StoreError::Other(anyhow::anyhow!("stored card is not readable")))?;
        if let Some(pan) = pan {
            doc.insert("pan".into(), pan.digits().into());
        }
        doc.insert("exp".into(), expiry.mmyy().into());
        let plain = zeroize::Zeroizing::new(
            serde_json::to_vec(&doc).map_err(|e| StoreError::Other(e.into()))?,
        );
        key.seal(&plain, &card_context(issuer.as_str(), to.as_str()))
            .map_err(crypto)
    }

    /// Seals what an enrolment's body gave (billing address, cardholder name) under the
    /// consumer's data key.
    ///
    /// # Errors
    /// If serialisation or the random generator fails.
    pub fn seal_enrolment(
        &self,
        key: &DataKey,
        issuer: &IssuerId,
        consumer: &ConsumerId,
        details: &crate::EnrolmentDetails,
    ) -> Result<Vec<u8>, StoreError> {
        let plain = zeroize::Zeroizing::new(
            serde_json::to_vec(details).map_err(|e| StoreError::Other(e.into()))?,
        );
        key.seal(&plain, &context(ConsumerSeal::Billing, issuer, consumer))
            .map_err(crypto)
    }

    /// Opens what an enrolment's body gave. A job accepted before the cardholder name was
    /// taken sealed its billing address alone, and still opens.
    ///
    /// # Errors
    /// If it was sealed for another consumer or does not parse.
    pub fn open_enrolment(
        &self,
        key: &DataKey,
        issuer: &IssuerId,
        consumer: &ConsumerId,
        sealed: &[u8],
    ) -> Result<crate::EnrolmentDetails, StoreError> {
        let plain = key
            .open(sealed, &context(ConsumerSeal::Billing, issuer, consumer))
            .map_err(crypto)?;
        serde_json::from_slice(&plain)
            .or_else(|_| {
                serde_json::from_slice(&plain).map(|address| crate::EnrolmentDetails {
                    billing_address: Some(address),
                    cardholder_name: None,
                })
            })
            .map_err(|_| StoreError::Other(anyhow::anyhow!("stored enrolment is not readable")))
    }

    /// Seals `plain` under a fresh data key of its own, both bound to `context`.
    ///
    /// # Errors
    /// If the random generator fails.
    pub fn seal_alone(&self, context: &str, plain: &[u8]) -> Result<crate::Sealed, StoreError> {
        let (key, wrapped_key) = self.kek.new_data_key(context.as_bytes()).map_err(crypto)?;
        let sealed = key.seal(plain, context.as_bytes()).map_err(crypto)?;
        Ok(crate::Sealed {
            wrapped_key,
            sealed,
        })
    }

    /// Opens what [`Vault::seal_alone`] sealed.
    ///
    /// # Errors
    /// If it was sealed for another context or KEK.
    pub fn open_alone(
        &self,
        context: &str,
        sealed: &crate::Sealed,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, StoreError> {
        let key = self
            .kek
            .open_data_key(&sealed.wrapped_key, context.as_bytes())
            .map_err(crypto)?;
        key.open(&sealed.sealed, context.as_bytes()).map_err(crypto)
    }
}

#[cfg(test)]
mod tests;
