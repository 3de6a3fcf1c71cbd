//! The card reads: get card (v2, and v1 through [`find_card`]) and a consumer's cards. Never
//! the PAN.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::{Extension, Json};
use d1_domain::IssuerId;

use super::card_id;
use crate::context::RequestContext;
use crate::error::{ApiError, BareErrorBody, ErrorBody};
use crate::extract::Caller;
use crate::routes::{open_consumer_route, path, trail_context, CardPath, ConsumerPath, Opening};
use crate::state::AppState;
use crate::wire::card::{CardResponse, CardsResponse};
use crate::wire::checks::{check, Checked, Finish};

/// Finds a card of the caller's issuer. `earlier` holds what the route checked before (its
/// trail headers), so the card id's value error keeps its place in the order of checks.
///
/// # Errors
/// The card id's refusal, an earlier value error, or 404 `CARD_NOT_FOUND`.
pub async fn find_card<T>(
    state: &AppState,
    issuer: &IssuerId,
    raw: &str,
    earlier: Checked<T>,
) -> Result<CardResponse, ApiError> {
    let card = check(card_id(raw))?;
    let (_, card) = (earlier, card).finish()?;
    let view = state
        .store
        .card(issuer, &card)
        .await?
        .ok_or_else(ApiError::card_not_found)?;
    Ok(CardResponse::from(&view))
}

/// Get card. Never the PAN.
#[utoipa::path(get, path = "/issuers/{issuerId}/cards/{cardId}", tag = "cards",
    params(("issuerId" = String, Path), ("cardId" = String, Path)),
    responses((status = 200, body = CardResponse), (status = 400, body = ErrorBody), (status = 401, body = BareErrorBody),
              (status = 404, body = ErrorBody), (status = 500, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_card(
    State(state): State<AppState>,
    Caller(issuer): Caller,
    Extension(ctx): Extension<RequestContext>,
    headers: HeaderMap,
    params: Result<Path<CardPath>, PathRejection>,
) -> Result<Json<CardResponse>, ApiError> {
    let raw = path(params)?.card_id;
    let trail = trail_context(&ctx, &headers)?;
    Ok(Json(find_card(&state, &issuer, &raw, trail).await?))
}

/// A consumer's cards, of its current life.
#[utoipa::path(get, path = "/issuers/{issuerId}/consumers/{consumerId}/cards", tag = "cards",
    params(("issuerId" = String, Path), ("consumerId" = String, Path)),
    responses((status = 200, body = CardsResponse), (status = 400, body = ErrorBody), (status = 401, body = BareErrorBody),
              (status = 404, body = ErrorBody), (status = 500, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn consumer_cards(
    State(state): State<AppState>,
    Caller(issuer): Caller,
    Extension(ctx): Extension<RequestContext>,
    headers: HeaderMap,
    params: Result<Path<ConsumerPath>, PathRejection>,
) -> Result<Json<CardsResponse>, ApiError> {
    let raw = path(params)?.consumer_id;
    let Opening {
        consumer, trail, ..
    } = open_consumer_route(&state, &issuer, &raw, &ctx, &headers).await?;
    let (consumer, _) = (consumer, trail).finish()?;
    let cards = state
        .store
        .cards(&issuer, &consumer)
        .await?
        .ok_or_else(ApiError::consumer_not_found)?;
    Ok(Json(CardsResponse {
        cards: cards.iter().map(CardResponse::from).collect(),
    }))
}
