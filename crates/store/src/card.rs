//! Card commands and records.

pub use d1_domain::card::{CardData, CardState, HolderData};
use d1_domain::card::{CardId, CardProductId, Pan, Scheme};
use d1_domain::{ConsumerId, IssuerId};

use crate::{StoreError, StoreResult, TrailContext};

/// An issuer's card product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductRecord {
    pub issuer_id: IssuerId,
    pub card_product_id: CardProductId,
    pub scheme: Scheme,
    /// 6 to 8 digits.
    pub bin: String,
    pub validity_months: u32,
}

/// Register card (card registration model).
#[derive(Debug, Clone)]
pub struct RegisterCard {
    pub issuer_id: IssuerId,
    pub card_id: CardId,
    pub consumer_id: ConsumerId,
    pub card_product_id: CardProductId,
    pub data: CardData,
    /// `None` keeps the current state of an existing card, ACTIVE for a new one.
    pub state: Option<CardState>,
    pub trail: TrailContext,
}

/// What Register card did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardOutcome {
    /// Stored; `implicit_consumer` when the consumer was registered by this call.
    Registered { implicit_consumer: bool },
    /// The same card again: state or expiry applied, or nothing to change.
    Retried,
    /// The consumer is DELETED.
    ConsumerDeleted,
    /// The consumer does not exist (create card only).
    ConsumerNotFound,
    /// A clash with another card: a live cardId, or a PAN registered (or deleted) before.
    Conflict(&'static str),
}

/// Create card (card creation model): we allocate the PAN.
#[derive(Debug, Clone)]
pub struct CreateCard {
    pub issuer_id: IssuerId,
    pub consumer_id: ConsumerId,
    pub product: ProductRecord,
    pub state: CardState,
    pub holder: Option<HolderData>,
    /// `Idempotency-Key` and a digest of the request it came with.
    pub idempotency: Option<(String, Vec<u8>)>,
    pub trail: TrailContext,
}

/// What Create card did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// Created, or replayed for the same idempotency key and request.
    Created(CardId),
    /// The idempotency key was used with another request.
    KeyReused,
    ConsumerNotFound,
    ConsumerDeleted,
    /// No free PAN could be found in the product's range.
    RangeExhausted,
}

/// A card as read back; never the PAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardView {
    pub consumer_id: ConsumerId,
    pub card_id: CardId,
    pub card_product_id: String,
    pub state: CardState,
    pub scheme: String,
    pub last4: String,
    pub expiry: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One card of a v1 Register consumer with cards.
#[derive(Debug, Clone)]
pub struct CardSpec {
    pub card_id: CardId,
    pub card_product_id: CardProductId,
    pub data: CardData,
    pub state: Option<CardState>,
}

/// v1 Register consumer with cards: all or nothing.
#[derive(Debug, Clone)]
pub struct RegisterCards {
    pub issuer_id: IssuerId,
    pub consumer_id: ConsumerId,
    pub cards: Vec<CardSpec>,
    pub trail: TrailContext,
}

/// A fresh card id for Create card: `crd_` and 26 random base32 characters.
pub(crate) fn random_card_id() -> StoreResult<CardId> {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let bytes: [u8; 26] = d1_crypto::random_bytes().map_err(|e| StoreError::Other(e.into()))?;
    let text: String = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b % 32)]))
        .collect();
    CardId::parse(&format!("crd_{text}"))
        .map_err(|_| StoreError::Other(anyhow::anyhow!("generated card id is malformed")))
}

/// A random PAN of `length` digits in the range of `bin`, for Create card.
///
/// # Errors
/// If the random generator fails.
pub(crate) fn allocate_pan(bin: &str, length: usize) -> StoreResult<Pan> {
    let mut failed = None;
    // Rejection sampling keeps the digits uniform.
    let mut digit = || loop {
        match d1_crypto::random_bytes::<1>() {
            Ok([b]) if b < 250 => return b % 10,
            Ok(_) => {}
            Err(e) => {
                failed = Some(e);
                return 0;
            }
        }
    };
    let pan = Pan::allocate(bin, length, &mut digit);
    match failed {
        None => Ok(pan),
        Some(e) => Err(StoreError::Other(e.into())),
    }
}

/// The PAN length Create card allocates for a scheme.
pub(crate) fn allocated_length(scheme: Scheme) -> usize {
    if scheme == Scheme::Amex {
        15
    } else {
        16
    }
}
