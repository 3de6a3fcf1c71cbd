//! Rows as both backends read them, and the rules the use cases derive from them, so that
//! SQLite and PostgreSQL decide every case alike; each backend only reads and writes.

use d1_crypto::envelope::DataKey;
use d1_domain::card::{CardId, Expiry, Pan, Scheme};
use d1_domain::{ConsumerId, ConsumerState, IssuerId, PersonalInformation, PiSource};

use crate::{
    CardData, CardModel, CardState, ConsumerView, CreateCard, RegisterCard, StoreError,
    StoreResult, Vault,
};

/// A consumer's row.
pub(crate) struct ConsumerRow {
    pub id: i64,
    /// The consumerId's life: registering a DELETED consumer again starts the next one.
    pub generation: i64,
    pub state: ConsumerState,
    pub pi_source: PiSource,
    /// The data key under the KEK; `None` once shredded.
    pub wrapped_key: Option<Vec<u8>>,
    /// The PI under the data key.
    pub pi: Option<Vec<u8>>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl ConsumerRow {
    /// The consumer's data key; an ACTIVE consumer always has one.
    ///
    /// # Errors
    /// If the key was shredded or does not open.
    pub fn data_key(
        &self,
        vault: &Vault,
        issuer: &IssuerId,
        consumer: &ConsumerId,
    ) -> StoreResult<DataKey> {
        // An ACTIVE consumer always has its key; a row without one was changed behind us.
        let wrapped = self
            .wrapped_key
            .as_deref()
            .ok_or_else(|| StoreError::Corrupt {
                table: "consumers",
                column: "wrapped_key".to_owned(),
            })?;
        vault.open_consumer_key(issuer, consumer, wrapped)
    }

    /// `pi` sealed under the consumer's data key, or `None` when the row stores exactly that
    /// PI already, so that an identical retry writes nothing.
    ///
    /// # Errors
    /// If the data key or the stored PI does not open.
    pub fn resealed(
        &self,
        vault: &Vault,
        issuer: &IssuerId,
        consumer: &ConsumerId,
        pi: &PersonalInformation,
    ) -> StoreResult<Option<Vec<u8>>> {
        let key = self.data_key(vault, issuer, consumer)?;
        if let (PiSource::Stored, Some(old)) = (self.pi_source, &self.pi) {
            if &vault.open_pi(&key, issuer, consumer, old)? == pi {
                return Ok(None);
            }
        }
        vault.seal_pi(&key, issuer, consumer, pi).map(Some)
    }

    /// The consumer as read back: PI only for an ACTIVE consumer that stores it.
    ///
    /// # Errors
    /// If the stored PI does not open.
    pub fn view(
        &self,
        vault: &Vault,
        issuer: &IssuerId,
        consumer: &ConsumerId,
    ) -> StoreResult<ConsumerView> {
        let pi = match (self.state, &self.pi) {
            (ConsumerState::Active, Some(sealed)) => {
                let key = self.data_key(vault, issuer, consumer)?;
                Some(vault.open_pi(&key, issuer, consumer, sealed)?)
            }
            _ => None,
        };
        Ok(ConsumerView {
            consumer_id: consumer.clone(),
            state: self.state,
            pi_source: self.pi_source,
            pi,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// The live card registered under a cardId.
pub(crate) struct LiveCard {
    pub id: i64,
    pub consumer_ref: i64,
    pub product: String,
    pub state: CardState,
    pub pan_mac: Vec<u8>,
    pub expiry: String,
}

/// What Register card does for a cardId that is live already.
pub(crate) enum CardRetry {
    /// Another consumer, PAN or product: 409.
    Conflict,
    /// The same card, nothing to change.
    Unchanged,
    /// The same card with a new state or expiry, to be applied.
    Refresh { state: CardState, expiry: String },
}

impl LiveCard {
    /// Whether `cmd` registers this card again, and what changes if so.
    pub fn retry(
        &self,
        consumer: Option<&ConsumerRow>,
        cmd: &RegisterCard,
        pan_mac: &[u8],
    ) -> CardRetry {
        let same = consumer.is_some_and(|c| c.id == self.consumer_ref)
            && self.pan_mac == pan_mac
            && self.product == cmd.card_product_id.as_str();
        if !same {
            return CardRetry::Conflict;
        }
        // Only a resume lifts a suspension, under the reason table; a given state is not
        // applied to a SUSPENDED card.
        let state = match self.state {
            CardState::Suspended => self.state,
            _ => cmd.state.unwrap_or(self.state),
        };
        let expiry = cmd.data.expiry.mmyy();
        if state == self.state && expiry == self.expiry {
            CardRetry::Unchanged
        } else {
            CardRetry::Refresh { state, expiry }
        }
    }
}

/// A card row to insert.
pub(crate) struct NewCard<'a> {
    pub issuer: &'a IssuerId,
    pub card_id: &'a CardId,
    pub consumer_ref: i64,
    pub generation: i64,
    pub product: &'a str,
    pub state: CardState,
    pub pan_mac: &'a [u8],
    pub sealed: &'a [u8],
    pub pan: &'a Pan,
    pub expiry: Expiry,
    pub scheme: Scheme,
    pub model: CardModel,
    /// The cardId of the card this one replaces.
    pub replaces: Option<&'a str>,
}

impl<'a> NewCard<'a> {
    /// The row Register card inserts for a new card of the consumer `consumer_ref`.
    pub fn registered(
        cmd: &'a RegisterCard,
        consumer_ref: i64,
        generation: i64,
        pan_mac: &'a [u8],
        sealed: &'a [u8],
    ) -> Self {
        Self {
            issuer: &cmd.issuer_id,
            card_id: &cmd.card_id,
            consumer_ref,
            generation,
            product: cmd.card_product_id.as_str(),
            state: cmd.state.unwrap_or(CardState::Active),
            pan_mac,
            sealed,
            pan: &cmd.data.pan,
            expiry: cmd.data.expiry,
            scheme: Scheme::of(&cmd.data.pan),
            model: CardModel::Registered,
            replaces: None,
        }
    }
}

/// The card Create card makes once it has found a free PAN: a fresh cardId, the expiry the
/// product gives, and PAN, expiry and holder sealed under the consumer's data key.
pub(crate) struct CreatedCard {
    pub card_id: CardId,
    pub data: CardData,
    pub sealed: Vec<u8>,
}

impl CreatedCard {
    /// Makes and seals the card for `pan`.
    ///
    /// # Errors
    /// If the consumer's data key does not open or the random generator fails.
    pub fn new(
        vault: &Vault,
        cmd: &CreateCard,
        consumer: &ConsumerRow,
        pan: Pan,
        today: time::Date,
    ) -> StoreResult<Self> {
        let card_id = crate::card::random_card_id()?;
        let data = CardData {
            pan,
            expiry: Expiry::months_after(today, cmd.product.validity_months),
            holder: cmd.holder.clone(),
        };
        let key = consumer.data_key(vault, &cmd.issuer_id, &cmd.consumer_id)?;
        let sealed = vault.seal_card(&key, &cmd.issuer_id, &card_id, &data)?;
        Ok(Self {
            card_id,
            data,
            sealed,
        })
    }

    /// Its row, for the consumer's current life.
    pub fn row<'a>(
        &'a self,
        cmd: &'a CreateCard,
        consumer: &ConsumerRow,
        pan_mac: &'a [u8],
    ) -> NewCard<'a> {
        NewCard {
            issuer: &cmd.issuer_id,
            card_id: &self.card_id,
            consumer_ref: consumer.id,
            generation: consumer.generation,
            product: cmd.product.card_product_id.as_str(),
            state: cmd.state,
            pan_mac,
            sealed: &self.sealed,
            pan: &self.data.pan,
            expiry: self.data.expiry,
            scheme: cmd.product.scheme,
            model: CardModel::Created,
            replaces: None,
        }
    }
}
