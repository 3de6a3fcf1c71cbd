//! The v1 API (contract section 7): register consumer (deprecated `state` ignored), register
//! consumer with cards (all or nothing), delete consumer, get card. Paths are relative to
//! `/banking/v1`, where `app.rs` mounts these routes under the v1 policy: every refusal is
//! rendered in the v1 body `{"error"}`. `x-user-id` is a v2 header and is not read here.

use std::collections::HashSet;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use d1_domain::card::{CardId, CardProductId};
use d1_domain::{FieldError, IdError};
use d1_store::{CardOutcome, CardSpec, RegisterCards, RegisterConsumer, TrailContext};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::cards::{card_data_from_jwe, find_card, state_value};
use super::consumers::delete_consumer;
use super::{
    id_error, open_consumer_route_with, path, with_slash_alias, CardPath, Checks, ConsumerPath,
    Opening,
};
use crate::context::RequestContext;
use crate::error::{ApiError, BareErrorBody};
use crate::extract::{Caller, JsonBody};
use crate::state::AppState;
use crate::wire::card::CardResponse;
use crate::wire::json::{parse_object, Obj};

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
}

/// The card batch, which `app.rs` gives the larger body limit.
pub fn batch_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(register_with_cards))
}

/// The v1 trail: the correlation id only.
fn trail(checks: &mut Checks, ctx: &RequestContext) -> Result<TrailContext, ApiError> {
    if let Some(Err(e)) = &ctx.correlation {
        checks.take::<()>(Err(id_error("x-correlation-id", *e)))?;
    }
    Ok(TrailContext {
        correlation_id: ctx.valid_correlation(),
        user_id: None,
    })
}

/// Register consumer (v1): no PI; `state` is deprecated and ignored.
#[utoipa::path(put, path = "/issuers/{issuerId}/consumers/{consumerId}", tag = "v1",
    operation_id = "v1_register",
    params(("issuerId" = String, Path), ("consumerId" = String, Path)),
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
        checks,
        consumer,
        trail,
        ..
    } = open_consumer_route_with(&state, &issuer, &consumer, |checks| trail(checks, &ctx)).await?;
    if !raw.is_empty() {
        let value = parse_object(&raw.0)?;
        let obj = Obj::new(&value, "")?;
        obj.only(&["state"])?;
        obj.opt_str("state")?;
    }
    checks.finish()?;
    let consumer_id =
        consumer.ok_or_else(|| ApiError::internal(&"consumer id missing after checks"))?;
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

/// One card of the batch, read and format-checked.
struct RawCard {
    card_id: Option<CardId>,
    product: Option<CardProductId>,
    encrypted: String,
    state: Option<Option<d1_store::CardState>>,
}

fn read_card(
    item: &serde_json::Value,
    index: usize,
    checks: &mut Checks,
) -> Result<RawCard, ApiError> {
    let path = format!("cards[{index}]");
    let obj = Obj::new(item, &path)?;
    obj.only(&[
        "cardId",
        "accountId",
        "cardProductId",
        "state",
        "encryptedData",
    ])?;
    let named = |field: &str| format!("{path}.{field}");
    let card_id = checks
        .take(CardId::parse(&obj.req_str("cardId")?).map_err(|e| id_error(&named("cardId"), e)))?;
    if let Some(account) = obj.opt_str("accountId")? {
        checks.take(account_id(&account).map_err(|e| id_error(&named("accountId"), e)))?;
    }
    let product = checks.take(
        CardProductId::parse(&obj.req_str("cardProductId")?)
            .map_err(|e| id_error(&named("cardProductId"), e)),
    )?;
    let encrypted = obj.req_str("encryptedData")?;
    if encrypted.split('.').count() != 5 {
        return Err(ApiError::format(
            &named("encryptedData"),
            "is not a five-part compact JWE",
        ));
    }
    let state = checks.take(state_value(obj.opt_str("state")?, &named("state")))?;
    Ok(RawCard {
        card_id,
        product,
        encrypted,
        state,
    })
}

fn account_id(value: &str) -> Result<(), IdError> {
    d1_domain::ConsumerId::parse(value).map(|_| ())
}

/// Register consumer with cards (v1): all or nothing, at most [`MAX_CARDS`] cards.
#[utoipa::path(put, path = "/issuers/{issuerId}/consumers/{consumerId}/cards", tag = "v1",
    operation_id = "v1_register_with_cards",
    params(("issuerId" = String, Path), ("consumerId" = String, Path)),
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
        mut checks,
        consumer,
        trail,
        ..
    } = open_consumer_route_with(&state, &issuer, &consumer, |checks| trail(checks, &ctx)).await?;
    let value = parse_object(&raw.0)?;
    let obj = Obj::new(&value, "")?;
    obj.only(&["cards"])?;
    let items = match value.get("cards") {
        Some(serde_json::Value::Array(items)) => items,
        _ => return Err(ApiError::format("cards", "must be an array of cards")),
    };
    let cards = items
        .iter()
        .enumerate()
        .map(|(i, item)| read_card(item, i, &mut checks))
        .collect::<Result<Vec<_>, _>>()?;
    if cards.is_empty() || cards.len() > MAX_CARDS {
        checks.value(FieldError::value("cards", "must hold 1 to 100 cards"));
    }
    let mut seen = HashSet::new();
    if cards
        .iter()
        .filter_map(|c| c.card_id.as_ref())
        .any(|id| !seen.insert(id.as_str().to_owned()))
    {
        checks.value(FieldError::value("cards", "a cardId appears twice"));
    }
    checks.finish()?;
    let consumer_id =
        consumer.ok_or_else(|| ApiError::internal(&"consumer id missing after checks"))?;
    let mut specs = Vec::with_capacity(cards.len());
    for (i, card) in cards.into_iter().enumerate() {
        let (Some(card_id), Some(product), Some(card_state)) =
            (card.card_id, card.product, card.state)
        else {
            return Err(ApiError::internal(&"card input missing after checks"));
        };
        if state.product(&issuer, &product).await?.is_none() {
            return Err(ApiError::value(
                &format!("cards[{i}].cardProductId"),
                "is not a product of this issuer",
            ));
        }
        let data = card_data_from_jwe(&state, card.encrypted, &format!("cards[{i}].encryptedData"))
            .await?;
        specs.push(CardSpec {
            card_id,
            card_product_id: product,
            data,
            state: card_state,
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
        CardOutcome::ConsumerDeleted => Err(ApiError::invalid_state("the consumer is DELETED")),
        CardOutcome::ConsumerNotFound => Err(ApiError::consumer_not_found()),
    }
}

/// Delete consumer (v1).
#[utoipa::path(post, path = "/issuers/{issuerId}/consumers/{consumerId}/operations:delete", tag = "v1",
    operation_id = "v1_delete",
    params(("issuerId" = String, Path), ("consumerId" = String, Path)),
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
    delete_consumer(
        &state,
        issuer,
        &consumer,
        |checks| trail(checks, &ctx),
        &raw,
    )
    .await
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
    let mut checks = Checks::default();
    trail(&mut checks, &ctx)?;
    Ok(Json(find_card(&state, &issuer, &raw, checks).await?))
}
