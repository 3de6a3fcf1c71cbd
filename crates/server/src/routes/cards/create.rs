//! Create card: we allocate the PAN in the product's BIN range. The consumer must exist.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use d1_store::{CardState, CreateCard, CreateOutcome};

use crate::context::RequestContext;
use crate::error::{ApiError, BareErrorBody, ErrorBody};
use crate::extract::{Caller, JsonBody};
use crate::routes::{consumer_id, plain_id, trail_context};
use crate::state::AppState;
use crate::wire::card::{CardCreation, CreateCardRequest, CreateCardResponse};
use crate::wire::checks::Finish;

/// The `Idempotency-Key` header, if sent.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .filter(|k| plain_id(k))
            .map(|k| Some(k.to_owned()))
            .ok_or_else(|| {
                ApiError::format("Idempotency-Key", "must be 1 to 64 letters, digits, _ or -")
            }),
    }
}

/// Create card: we allocate the PAN in the product's BIN range. The consumer must exist.
#[utoipa::path(post, path = "/issuers/{issuerId}/cards", tag = "cards",
    params(("issuerId" = String, Path), ("Idempotency-Key" = Option<String>, Header), ("x-correlation-id" = Option<String>, Header)),
    request_body = CreateCardRequest,
    responses((status = 201, body = CreateCardResponse), (status = 400, body = ErrorBody), (status = 401, body = BareErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 500, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_card(
    State(state): State<AppState>,
    Caller(issuer): Caller,
    Extension(ctx): Extension<RequestContext>,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<(StatusCode, Json<CreateCardResponse>), ApiError> {
    let settings = state
        .issuer(&issuer)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let trail = trail_context(&ctx, &headers)?;
    let idempotency_key = idempotency_key(&headers)?;
    let creation = body
        .read::<CreateCardRequest>()?
        .parse(|raw| consumer_id(&state, raw, settings.lookalike_policy))?;
    let (trail, creation) = (trail, creation).finish()?;
    let CardCreation {
        consumer_id,
        card_product_id,
        state: card_state,
        holder,
    } = creation;
    let product = state
        .product(&issuer, &card_product_id)
        .await?
        .ok_or_else(|| ApiError::value("cardProductId", "is not a product of this issuer"))?;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &body.0)
        .as_ref()
        .to_vec();
    let cmd = CreateCard {
        issuer_id: issuer,
        consumer_id,
        product,
        state: card_state.unwrap_or(CardState::Active),
        holder,
        idempotency: idempotency_key.map(|k| (k, digest)),
        trail,
    };
    match state.store.create_card(cmd).await? {
        CreateOutcome::Created(card_id) => Ok((
            StatusCode::CREATED,
            Json(CreateCardResponse {
                card_id: card_id.as_str().to_owned(),
            }),
        )),
        CreateOutcome::ConsumerNotFound => Err(ApiError::consumer_not_found()),
        CreateOutcome::ConsumerDeleted => Err(ApiError::consumer_deleted()),
        CreateOutcome::KeyReused => Err(ApiError::card_conflict(
            "the Idempotency-Key was used with another request",
        )),
        CreateOutcome::RangeExhausted => Err(ApiError::card_conflict(
            "the product's PAN range is exhausted",
        )),
    }
}
