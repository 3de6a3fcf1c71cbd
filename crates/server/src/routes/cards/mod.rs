//! The v2 card calls (contract section 6): register card (JWE), create card, get card, and a
//! consumer's cards. Register card registers an unknown consumer implicitly. This module holds
//! the router and what the v1 card calls share; each call lives in its own file.

mod create;
mod lifecycle;
mod read;
mod register;

use d1_domain::card::{CardId, Expiry, Pan};
use d1_domain::FieldError;
use d1_store::CardData;

pub use create::{__path_create_card, create_card};
pub use lifecycle::{
    __path_activate_card, __path_delete_card, __path_renew_card, __path_replace_card,
    __path_resume_card, __path_suspend_card, activate_card, delete_card, operate_card, renew_card,
    replace_card, resume_card, suspend_card,
};
pub use read::{__path_consumer_cards, __path_get_card, consumer_cards, find_card, get_card};
pub use register::{__path_register_card, register_card};

use super::{id_error, with_slash_alias};
use crate::error::ApiError;
use crate::state::AppState;
use crate::wire::card::CardPlaintext;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The v2 card routes, relative to `/banking/v2`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_card, register_card))
        .routes(routes!(create_card))
        .routes(routes!(consumer_cards))
        .routes(with_slash_alias(routes!(suspend_card)))
        .routes(with_slash_alias(routes!(resume_card)))
        .routes(with_slash_alias(routes!(delete_card)))
        .routes(with_slash_alias(routes!(renew_card)))
        .routes(with_slash_alias(routes!(replace_card)))
        .routes(with_slash_alias(routes!(activate_card)))
}

fn card_id(raw: &str) -> Result<CardId, FieldError> {
    CardId::parse(raw).map_err(|e| id_error("cardId", e))
}

/// The plaintext of `encryptedData`: exactly `{"pan", "exp"}`, both strings, each once.
fn card_data(plain: &[u8], field: &str) -> Result<CardData, FieldError> {
    let plain = CardPlaintext::read(plain, field)?;
    let pan = Pan::parse(&plain.pan, field)?;
    let expiry = Expiry::parse(&plain.exp, time::OffsetDateTime::now_utc().date(), field)?;
    Ok(CardData {
        pan,
        expiry,
        holder: None,
    })
}

/// Decrypts an `encryptedData` JWE; refusals name `field`.
///
/// # Errors
/// `FIELD_INVALID_VALUE` naming `field` for any JWE or card-data defect.
pub async fn card_data_from_jwe(
    state: &AppState,
    token: &str,
    field: &str,
) -> Result<CardData, ApiError> {
    let refuse = |e: d1_crypto::jwe::JweError| ApiError::value(field, &e.to_string());
    let jwe = d1_crypto::jwe::parse(token).map_err(refuse)?;
    let key = state
        .keyring
        .decrypter(state.store.as_ref(), jwe.kid())
        .await
        .map_err(|e| ApiError::internal(&e))?
        .ok_or_else(|| refuse(d1_crypto::jwe::JweError::UnknownKid))?;
    // On the request's own worker: the key agreement is about 45 µs of one core, within what
    // an async task may run between awaits, and a hand-off to threads of its own cost more in
    // wake-ups than it kept off the workers (docs/benchmarks.md, 2026-12-02).
    let plain = jwe.decrypt(&key).map_err(refuse)?;
    Ok(card_data(&plain, field)?)
}
