//! Card commands and records.

pub use d1_domain::card::lifecycle::{CardOperation, ReasonCode};
pub use d1_domain::card::{CardData, CardState, HolderData};
use d1_domain::card::{CardId, CardProductId, Pan, Scheme};
use d1_domain::{ConsumerId, FieldError, IssuerId};

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
    /// The reasonCode of the operation that set the current state; `None` on a card no
    /// operation has touched.
    pub state_reason: Option<String>,
    /// `Some("RENEWAL")` while a created card's renewal waits for activation.
    pub ongoing_operation: Option<String>,
    /// The expiry a waiting renewal will make current (MMYY).
    pub renewed_expiry: Option<String>,
    /// The cardId of the card this one replaced.
    pub replaces: Option<String>,
    /// The cardId of the card that replaced this one.
    pub replaced_by: Option<String>,
    pub scheme: String,
    pub last4: String,
    pub expiry: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// How a card came to be, which decides how it is renewed and replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardModel {
    /// Register card: the issuer's PAN, sent as a JWE.
    Registered,
    /// Create card: a PAN we allocated in the product's range.
    Created,
}

impl CardModel {
    /// The database form.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registered => "REGISTERED",
            Self::Created => "CREATED",
        }
    }

    /// Parses the database form.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Registered, Self::Created]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// A card life-cycle operation and what it carries beyond its reason.
#[derive(Debug, Clone)]
pub enum CardAction {
    Suspend,
    Resume,
    Delete,
    Activate,
    /// `data`: the card's PAN with its later expiry, for a registered card.
    Renew {
        data: Option<CardData>,
    },
    /// `new_card_id`: the replacement's id (required for a registered card); `data`: its PAN
    /// and expiry, for a registered card.
    Replace {
        new_card_id: Option<CardId>,
        data: Option<CardData>,
    },
}

impl CardAction {
    /// The operation this is.
    #[must_use]
    pub fn operation(&self) -> CardOperation {
        match self {
            Self::Suspend => CardOperation::Suspend,
            Self::Resume => CardOperation::Resume,
            Self::Delete => CardOperation::Delete,
            Self::Activate => CardOperation::Activate,
            Self::Renew { .. } => CardOperation::Renew,
            Self::Replace { .. } => CardOperation::Replace,
        }
    }
}

/// A card life-cycle operation on one card (contract section 6).
#[derive(Debug, Clone)]
pub struct OperateCard {
    pub issuer_id: IssuerId,
    pub card_id: CardId,
    pub action: CardAction,
    /// One of the operation's codes ([`CardOperation::codes`]).
    pub reason_code: ReasonCode,
    /// The issuer's free text, already checked.
    pub reason: Option<String>,
    pub trail: TrailContext,
}

/// What a life-cycle operation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperateOutcome {
    /// Applied; `card_id` is the new card for a replace.
    Done {
        operation_id: String,
        card_id: CardId,
    },
    /// An identical retry of the operation that produced the card's current state: its
    /// operation id, and nothing changed.
    Retried {
        operation_id: String,
        card_id: CardId,
    },
    CardNotFound,
    ConsumerDeleted,
    /// The card's state (and the reason that set it) does not allow the operation.
    InvalidState {
        state: CardState,
        reason: Option<String>,
    },
    /// A field the card's model needs is missing or wrong (a renew's PAN or expiry).
    Refused(FieldError),
    /// The replacement's cardId or PAN is taken, or the product's range is exhausted.
    Conflict(&'static str),
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
