//! The v1 API (contract section 7): register consumer (deprecated `state` ignored), register
//! consumer with cards (all or nothing), delete consumer, get card, the card operations of
//! [`super::v1_cards`] and the operations list ([`super::v1_trail`]). Paths are relative to
//! `/banking/v1`, where `app.rs` mounts these routes under the v1 policy: every refusal is
//! rendered in the v1 body `{"error"}`. `x-user-id` is a v2 header and is not read here.

use std::collections::HashSet;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use d1_domain::FieldError;
use d1_store::{CardOutcome, CardSpec, RegisterCards, RegisterConsumer, TrailContext};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::cards::{card_data_from_jwe, find_card};
use super::consumers::delete_consumer;
use super::{
    correlation, open_consumer_route_with, path, with_slash_alias, CardPath, ConsumerPath, Opening,
};
use crate::context::RequestContext;
use crate::error::{ApiError, BareErrorBody};
use crate::extract::{Caller, JsonBody};
use crate::state::AppState;
use crate::wire::card::{CardResponse, V1CardsRequest};
use crate::wire::checks::{Checked, Finish};
use crate::wire::consumer::{DeleteConsumerRequest, V1RegisterConsumerRequest};

/// The most cards one v1 call may register. Its route has its own body limit
/// (`server.batch_body_limit_bytes`, 256 KiB) sized for 100 encrypted cards; a far larger
/// batch is refused as 413 before it is read.
pub const MAX_CARDS: usize = 100;

/// The v1 routes but the card batch.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(with_slash_alias(routes!(delete)))
        .routes(routes!(get_card))
        .merge(super::v1_cards::router())
        .merge(super::v1_trail::router())
}

/// The card batch, which `app.rs` gives the larger body limit.
pub fn batch_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(register_with_cards))
}

/// The v1 trail: the correlation id only.
///
/// # Errors
/// A format error of `x-correlation-id`.
pub fn trail(ctx: &RequestContext) -> Result<Checked<TrailContext>, ApiError> {
    Ok(correlation(ctx)?.map(|()| TrailContext {
        correlation_id: ctx.valid_correlation(),
        user_id: None,
        aggregator_id: ctx.aggregator.get().cloned(),
    }))
}

/// Register consumer (v1): no PI; `state` is deprecated and ignored.
#[utoipa::path(put, path = "/issuers/{issuerId}/consumers/{consumerId}", tag = "v1",
    operation_id = "v1_register",
    params(("issuerId" = String, Path), ("consumerId" = String, Path)),
    request_body(content = V1RegisterConsumerRequest, description = "optional"),
    responses((status = 204, description = "registered"), (status = 400, body = BareErrorBody), (status = 401, body = BareErrorBody)),
    security(("bearer" = [])))]
pub async fn register(
    State(state): State<AppState>,
    Caller(issuer): Caller,
    Extension(ctx): Extension<RequestContext>,
    params: Result<Path<ConsumerPath>, PathRejection>,
    raw: JsonBody,
) -> Result<StatusCode, ApiError> {
    let consumer = path(params)?.consumer_id;
    let Opening {
        consumer, trail, ..
    } = open_consumer_route_with(&state, &issuer, &consumer, || trail(&ctx)).await?;
    if !raw.is_empty() {
        // `state` is deprecated: its type is checked, its value ignored.
        raw.read::<V1RegisterConsumerRequest>()?;
    }
    let (consumer_id, trail) = (consumer, trail).finish()?;
    state
        .store
        .register_consumer(RegisterConsumer {
            issuer_id: issuer,
            consumer_id,
            pi: None,
            trail,
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Register consumer with cards (v1): all or nothing, at most [`MAX_CARDS`] cards.
#[utoipa::path(put, path = "/issuers/{issuerId}/consumers/{consumerId}/cards", tag = "v1",
    operation_id = "v1_register_with_cards",
    params(("issuerId" = String, Path), ("consumerId" = String, Path)),
    request_body = V1CardsRequest,
    responses((status = 204, description = "registered with every card"), (status = 400, body = BareErrorBody),
              (status = 401, body = BareErrorBody), (status = 409, body = BareErrorBody), (status = 413, body = BareErrorBody)),
    security(("bearer" = [])))]
pub async fn register_with_cards(
    State(state): State<AppState>,
    Caller(issuer): Caller,
    Extension(ctx): Extension<RequestContext>,
    params: Result<Path<ConsumerPath>, PathRejection>,
    raw: JsonBody,
) -> Result<StatusCode, ApiError> {
    let consumer = path(params)?.consumer_id;
    let Opening {
        consumer, trail, ..
    } = open_consumer_route_with(&state, &issuer, &consumer, || trail(&ctx)).await?;
    let request = raw.read::<V1CardsRequest>()?;
    let count = request.cards.len();
    let cards = request
        .cards
        .into_iter()
        .enumerate()
        .map(|(i, card)| card.parse(i))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .collect::<Checked<Vec<_>>>()
        .and_value(|_| {
            if count == 0 || count > MAX_CARDS {
                Err(FieldError::value("cards", "must hold 1 to 100 cards"))
            } else {
                Ok(())
            }
        })
        .and_value(|cards| {
            let mut seen = HashSet::new();
            if cards.iter().all(|c| seen.insert(c.card_id.as_str())) {
                Ok(())
            } else {
                Err(FieldError::value("cards", "a cardId appears twice"))
            }
        });
    let (consumer_id, trail, cards) = (consumer, trail, cards).finish()?;
    let mut specs = Vec::with_capacity(cards.len());
    for (i, card) in cards.into_iter().enumerate() {
        let product = card.card_product_id;
        if state.product(&issuer, &product).await?.is_none() {
            return Err(ApiError::value(
                &format!("cards[{i}].cardProductId"),
                "is not a product of this issuer",
            ));
        }
        let data = card_data_from_jwe(
            &state,
            &card.encrypted_data,
            &format!("cards[{i}].encryptedData"),
        )
        .await?;
        // Each decrypt runs on this worker; up to a hundred of them give way between cards.
        tokio::task::yield_now().await;
        specs.push(CardSpec {
            card_id: card.card_id,
            card_product_id: product,
            data,
            state: card.state,
        });
    }
    match state
        .store
        .register_cards(RegisterCards {
            issuer_id: issuer,
            consumer_id,
            cards: specs,
            trail,
        })
        .await?
    {
        CardOutcome::Registered { .. } | CardOutcome::Retried => Ok(StatusCode::NO_CONTENT),
        CardOutcome::Conflict(why) => Err(ApiError::card_conflict(why)),
        CardOutcome::ConsumerDeleted => Err(ApiError::consumer_deleted()),
        CardOutcome::ConsumerNotFound => Err(ApiError::consumer_not_found()),
    }
}

/// Delete consumer (v1).
#[utoipa::path(post, path = "/issuers/{issuerId}/consumers/{consumerId}/operations:delete", tag = "v1",
    operation_id = "v1_delete",
    params(("issuerId" = String, Path), ("consumerId" = String, Path)),
    request_body(content = DeleteConsumerRequest, description = "optional"),
    responses((status = 204, description = "deleted"), (status = 400, body = BareErrorBody), (status = 401, body = BareErrorBody),
              (status = 404, body = BareErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Caller(issuer): Caller,
    Extension(ctx): Extension<RequestContext>,
    params: Result<Path<ConsumerPath>, PathRejection>,
    raw: JsonBody,
) -> Result<StatusCode, ApiError> {
    let consumer = path(params)?.consumer_id;
    delete_consumer(&state, issuer, &consumer, || trail(&ctx), &raw).await
}

/// Get card (v1).
#[utoipa::path(get, path = "/issuers/{issuerId}/cards/{cardId}", tag = "v1",
    operation_id = "v1_get_card",
    params(("issuerId" = String, Path), ("cardId" = String, Path)),
    responses((status = 200, body = CardResponse), (status = 400, body = BareErrorBody), (status = 401, body = BareErrorBody),
              (status = 404, body = BareErrorBody)),
    security(("bearer" = [])))]
pub async fn get_card(
    State(state): State<AppState>,
    Caller(issuer): Caller,
    Extension(ctx): Extension<RequestContext>,
    params: Result<Path<CardPath>, PathRejection>,
) -> Result<Json<CardResponse>, ApiError> {
    let raw = path(params)?.card_id;
    let trail = trail(&ctx)?;
    Ok(Json(find_card(&state, &issuer, &raw, trail).await?))
}
