//! Register card: PAN and expiry arrive as a JWE; an unknown consumer is registered.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Extension;
use d1_store::{CardOutcome, RegisterCard};

use super::{card_data_from_jwe, card_id};
use crate::context::RequestContext;
use crate::error::{ApiError, BareErrorBody, ErrorBody};
use crate::extract::{Caller, JsonBody};
use crate::routes::{consumer_id, path, trail_context, CardPath};
use crate::state::AppState;
use crate::wire::card::{CardRegistration, RegisterCardRequest};
use crate::wire::checks::{check, Finish};

/// Register card: PAN and expiry arrive as a JWE; an unknown consumer is registered.
#[utoipa::path(put, path = "/issuers/{issuerId}/cards/{cardId}", tag = "cards",
    params(("issuerId" = String, Path), ("cardId" = String, Path), ("x-correlation-id" = Option<String>, Header)),
    request_body = RegisterCardRequest,
    responses((status = 204, description = "registered"), (status = 400, body = ErrorBody), (status = 401, body = BareErrorBody),
              (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 415, body = ErrorBody), (status = 500, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn register_card(
    State(state): State<AppState>,
    Caller(issuer): Caller,
    Extension(ctx): Extension<RequestContext>,
    headers: HeaderMap,
    params: Result<Path<CardPath>, PathRejection>,
    body: JsonBody,
) -> Result<StatusCode, ApiError> {
    let settings = state
        .issuer(&issuer)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let card = check(card_id(&path(params)?.card_id))?;
    let trail = trail_context(&ctx, &headers)?;
    let registration = body
        .read::<RegisterCardRequest>()?
        .parse(|raw| consumer_id(&state, raw, settings.lookalike_policy))?;
    let (card_id, trail, registration) = (card, trail, registration).finish()?;
    let CardRegistration {
        consumer_id,
        card_product_id,
        encrypted_data,
        state: card_state,
    } = registration;
    if state.product(&issuer, &card_product_id).await?.is_none() {
        return Err(ApiError::value(
            "cardProductId",
            "is not a product of this issuer",
        ));
    }
    let data = card_data_from_jwe(&state, &encrypted_data, "encryptedData").await?;
    let cmd = RegisterCard {
        issuer_id: issuer,
        card_id,
        consumer_id,
        card_product_id,
        data,
        state: card_state,
        trail,
    };
    match state.store.register_card(cmd).await? {
        CardOutcome::Registered { .. } | CardOutcome::Retried => Ok(StatusCode::NO_CONTENT),
        CardOutcome::ConsumerDeleted => Err(ApiError::consumer_deleted()),
        CardOutcome::ConsumerNotFound => Err(ApiError::consumer_not_found()),
        CardOutcome::Conflict(why) => Err(ApiError::card_conflict(why)),
    }
}
