//! Card bodies: the requests (read by [`super::json`], parsed here into domain types, and
//! described by the same types in the OpenAPI document) and the responses.

use d1_domain::card::{CardId, CardProductId};
use d1_domain::{ConsumerId, FieldError, IdError};
use d1_store::{CardState, CardView, HolderData};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::checks::{check, id_error, Checked};
use super::json;
use crate::clock::rfc3339;

/// A card's `state`, absent for "as it is" (or the default).
///
/// # Errors
/// `FIELD_INVALID_VALUE` naming `field` for anything but `ACTIVE` or `INACTIVE`.
pub fn card_state(raw: Option<&str>, field: &str) -> Result<Option<CardState>, FieldError> {
    match raw {
        None => Ok(None),
        Some("ACTIVE") => Ok(Some(CardState::Active)),
        Some("INACTIVE") => Ok(Some(CardState::Inactive)),
        Some(_) => Err(FieldError::value(field, "must be ACTIVE or INACTIVE")),
    }
}

fn product_id(raw: &str, field: &str) -> Result<Checked<CardProductId>, FieldError> {
    check(CardProductId::parse(raw).map_err(|e| id_error(field, e)))
}

/// Checks that `encryptedData` is a compact JWE (five parts, a base64url JSON header): a
/// format, checked with the body's other formats. What its header names (alg, enc, kid) and
/// what it holds are values, refused when it is decrypted.
///
/// # Errors
/// `FIELD_INVALID_FORMAT` naming `field`.
pub fn compact_jwe(raw: &str, field: &str) -> Result<(), FieldError> {
    match d1_crypto::jwe::parse(raw) {
        Err(d1_crypto::jwe::JweError::Malformed) => {
            Err(FieldError::format(field, d1_crypto::jwe::MALFORMED))
        }
        _ => Ok(()),
    }
}

/// The plaintext of `encryptedData`: exactly `{"pan", "exp"}`, both strings, each once.
#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
pub struct CardPlaintext {
    pub pan: String,
    pub exp: String,
}

impl CardPlaintext {
    /// Reads a decrypted plaintext; every defect is a value error of `field`, since the
    /// JWE around it was well formed.
    ///
    /// # Errors
    /// `FIELD_INVALID_VALUE` naming `field`.
    pub fn read(plain: &[u8], field: &str) -> Result<Self, FieldError> {
        json::read(plain)
            .map_err(|_| FieldError::value(field, "must hold exactly {pan, exp}, as strings"))
    }
}

/// Body of Register card.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterCardRequest {
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub consumer_id: String,
    #[schema(pattern = "^[A-Za-z0-9_-]{1,48}$")]
    pub card_product_id: String,
    /// Compact JWE (ECDH-ES, A256GCM, P-256, our kid) of `{"pan", "exp": "MMYY"}`.
    pub encrypted_data: String,
    /// `ACTIVE` or `INACTIVE`.
    #[schema(example = "ACTIVE")]
    pub state: Option<String>,
}

/// A Register card body after its rules; the JWE is still sealed.
pub struct CardRegistration {
    pub consumer_id: ConsumerId,
    pub card_product_id: CardProductId,
    pub encrypted_data: String,
    pub state: Option<CardState>,
}

impl RegisterCardRequest {
    /// Applies the field rules, in field order; `consumer` reads the consumerId with the
    /// caller's personal-data guard.
    ///
    /// # Errors
    /// The first format error; a value error is kept in the [`Checked`].
    pub fn parse(
        self,
        consumer: impl FnOnce(&str) -> Result<ConsumerId, FieldError>,
    ) -> Result<Checked<CardRegistration>, FieldError> {
        let consumer_id = check(consumer(&self.consumer_id))?;
        let product = product_id(&self.card_product_id, "cardProductId")?;
        compact_jwe(&self.encrypted_data, "encryptedData")?;
        let state = check(card_state(self.state.as_deref(), "state"))?;
        let encrypted_data = self.encrypted_data;
        Ok(consumer_id
            .and(product)
            .and(state)
            .map(|((consumer_id, card_product_id), state)| CardRegistration {
                consumer_id,
                card_product_id,
                encrypted_data,
                state,
            }))
    }
}

/// An account of a created card.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountDto {
    /// May be left out, but not `null`.
    #[serde(
        default,
        deserialize_with = "json::present",
        skip_serializing_if = "Option::is_none"
    )]
    pub default: Option<bool>,
    #[schema(pattern = "^[A-Za-z0-9]{1,34}$")]
    pub number: String,
    #[schema(example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency_code: String,
}

impl AccountDto {
    fn check_format(&self, path: &str) -> Result<(), FieldError> {
        let number = &self.number;
        if number.is_empty()
            || number.len() > 34
            || !number.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(FieldError::format(
                format!("{path}.number"),
                "must be 1 to 34 letters or digits",
            ));
        }
        let currency = &self.currency_code;
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(FieldError::format(
                format!("{path}.currencyCode"),
                "must be an ISO 4217 code",
            ));
        }
        Ok(())
    }
}

/// Body of Create card.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateCardRequest {
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub consumer_id: String,
    #[schema(pattern = "^[A-Za-z0-9_-]{1,48}$")]
    pub card_product_id: String,
    /// `ACTIVE` (the default) or `INACTIVE`.
    #[schema(example = "ACTIVE")]
    pub state: Option<String>,
    #[serde(default, deserialize_with = "json::opt_objects")]
    pub accounts: Option<Vec<AccountDto>>,
    #[schema(pattern = "^[a-zA-Z. -]{0,26}$")]
    pub cardholder_name: Option<String>,
    #[schema(pattern = "^[a-zA-Z. -]{0,26}$")]
    pub second_cardholder_name: Option<String>,
}

/// A Create card body after its rules.
pub struct CardCreation {
    pub consumer_id: ConsumerId,
    pub card_product_id: CardProductId,
    pub state: Option<CardState>,
    /// Cardholder names and accounts, sealed with the card.
    pub holder: Option<HolderData>,
}

fn holder_name(value: Option<&String>, field: &str) -> Result<(), FieldError> {
    match value {
        Some(v)
            if v.len() > 26
                || !v
                    .bytes()
                    .all(|b| b.is_ascii_alphabetic() || b == b'.' || b == b' ' || b == b'-') =>
        {
            Err(FieldError::format(
                field,
                "must be up to 26 letters, dots, spaces or hyphens",
            ))
        }
        _ => Ok(()),
    }
}

impl CreateCardRequest {
    /// Applies the field rules, in field order; `consumer` reads the consumerId with the
    /// caller's personal-data guard.
    ///
    /// # Errors
    /// The first format error; a value error is kept in the [`Checked`].
    pub fn parse(
        self,
        consumer: impl FnOnce(&str) -> Result<ConsumerId, FieldError>,
    ) -> Result<Checked<CardCreation>, FieldError> {
        let consumer_id = check(consumer(&self.consumer_id))?;
        let product = product_id(&self.card_product_id, "cardProductId")?;
        let state = check(card_state(self.state.as_deref(), "state"))?;
        holder_name(self.cardholder_name.as_ref(), "cardholderName")?;
        holder_name(self.second_cardholder_name.as_ref(), "secondCardholderName")?;
        let mut holder = serde_json::Map::new();
        for (field, name) in [
            ("cardholderName", self.cardholder_name),
            ("secondCardholderName", self.second_cardholder_name),
        ] {
            if let Some(name) = name {
                holder.insert(field.to_owned(), name.into());
            }
        }
        if let Some(accounts) = self.accounts {
            for (i, account) in accounts.iter().enumerate() {
                account.check_format(&format!("accounts[{i}]"))?;
            }
            let accounts = serde_json::to_value(accounts)
                .map_err(|_| FieldError::format("accounts", "cannot be stored"))?;
            holder.insert("accounts".to_owned(), accounts);
        }
        let holder = (!holder.is_empty()).then_some(HolderData(holder));
        Ok(consumer_id
            .and(product)
            .and(state)
            .map(|((consumer_id, card_product_id), state)| CardCreation {
                consumer_id,
                card_product_id,
                state,
                holder,
            }))
    }
}

/// One card of a v1 Register consumer with cards.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct V1CardRequest {
    #[schema(pattern = "^[A-Za-z0-9_-]{1,48}$")]
    pub card_id: String,
    /// Defaults to the consumerId; same pattern.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub account_id: Option<String>,
    #[schema(pattern = "^[A-Za-z0-9_-]{1,48}$")]
    pub card_product_id: String,
    /// `ACTIVE` or `INACTIVE`.
    #[schema(example = "ACTIVE")]
    pub state: Option<String>,
    /// As in Register card.
    pub encrypted_data: String,
}

/// Body of v1 Register consumer with cards.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct V1CardsRequest {
    /// 1 to 100 cards.
    #[serde(deserialize_with = "json::objects")]
    pub cards: Vec<V1CardRequest>,
}

/// One v1 card after its rules; the JWE is still sealed.
pub struct V1Card {
    pub card_id: CardId,
    pub card_product_id: CardProductId,
    pub encrypted_data: String,
    pub state: Option<CardState>,
}

impl V1CardRequest {
    /// Applies the field rules of the card at `index`, in field order.
    ///
    /// # Errors
    /// The first format error; a value error is kept in the [`Checked`].
    pub fn parse(self, index: usize) -> Result<Checked<V1Card>, FieldError> {
        let named = |field: &str| format!("cards[{index}].{field}");
        let card_id =
            check(CardId::parse(&self.card_id).map_err(|e| id_error(&named("cardId"), e)))?;
        let account = match &self.account_id {
            None => Checked::ok(()),
            Some(account) => {
                check(account_id(account).map_err(|e| id_error(&named("accountId"), e)))?
            }
        };
        let product = product_id(&self.card_product_id, &named("cardProductId"))?;
        compact_jwe(&self.encrypted_data, &named("encryptedData"))?;
        let state = check(card_state(self.state.as_deref(), &named("state")))?;
        let encrypted_data = self.encrypted_data;
        Ok(card_id.and(account).and(product).and(state).map(
            |(((card_id, ()), card_product_id), state)| V1Card {
                card_id,
                card_product_id,
                encrypted_data,
                state,
            },
        ))
    }
}

fn account_id(value: &str) -> Result<(), IdError> {
    ConsumerId::parse(value).map(|_| ())
}

/// Answer of Create card.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateCardResponse {
    #[schema(example = "crd_abcdefghijklmnopqrstuvwxyz")]
    pub card_id: String,
}

/// A card as read back; never the PAN.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CardResponse {
    pub consumer_id: String,
    pub card_id: String,
    pub card_product_id: String,
    #[schema(example = "ACTIVE")]
    pub state: &'static str,
    #[schema(example = "VISA")]
    pub scheme: String,
    pub last4: String,
    /// MMYY.
    pub expiry: String,
    /// The reasonCode of the operation that set the current state; absent on a card no
    /// operation has touched.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "CARD_LOST")]
    pub state_reason: Option<String>,
    /// `RENEWAL` while a renewal waits for activation; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "RENEWAL")]
    pub ongoing_operation: Option<String>,
    /// The expiry (MMYY) a waiting renewal makes current on activation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renewed_expiry: Option<String>,
    /// The cardId of the card this one replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    /// The cardId of the card that replaced this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&CardView> for CardResponse {
    fn from(c: &CardView) -> Self {
        Self {
            consumer_id: c.consumer_id.as_str().to_owned(),
            card_id: c.card_id.as_str().to_owned(),
            card_product_id: c.card_product_id.clone(),
            state: c.state.as_str(),
            scheme: c.scheme.clone(),
            last4: c.last4.clone(),
            expiry: c.expiry.clone(),
            state_reason: c.state_reason.clone(),
            ongoing_operation: c.ongoing_operation.clone(),
            renewed_expiry: c.renewed_expiry.clone(),
            replaces: c.replaces.clone(),
            replaced_by: c.replaced_by.clone(),
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
        }
    }
}

/// A consumer's cards (the list omits `consumerId`, which the path names).
#[derive(Debug, Serialize, ToSchema)]
pub struct CardsResponse {
    pub cards: Vec<CardResponse>,
}
