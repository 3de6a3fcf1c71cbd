//! Card bodies: the request schemas (read by [`super::json`]) and the responses.

use d1_store::CardView;
use serde::Serialize;
use utoipa::ToSchema;

use crate::clock::rfc3339;

/// Body of Register card.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterCardRequest {
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub consumer_id: String,
    #[schema(pattern = "^[A-Za-z0-9_-]{1,48}$")]
    pub card_product_id: String,
    /// Compact JWE (ECDH-ES, A256GCM, P-256, our kid) of `{"pan", "exp": "MMYY"}`.
    pub encrypted_data: String,
    /// `ACTIVE` or `INACTIVE`.
    pub state: Option<String>,
}

/// An account of a created card.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountDto {
    pub default: bool,
    pub number: String,
    #[serde(rename = "currencyCode")]
    pub currency_code: String,
}

/// Body of Create card.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateCardRequest {
    pub consumer_id: String,
    pub card_product_id: String,
    pub state: Option<String>,
    pub accounts: Option<Vec<AccountDto>>,
    #[schema(pattern = "^[a-zA-Z. -]{0,26}$")]
    pub cardholder_name: Option<String>,
    #[schema(pattern = "^[a-zA-Z. -]{0,26}$")]
    pub second_cardholder_name: Option<String>,
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
