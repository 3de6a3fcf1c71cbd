//! The v2 card calls (contract section 6): register card (JWE), create card, get card, and a
//! consumer's cards. Register card registers an unknown consumer implicitly.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use d1_domain::card::{CardId, CardProductId, Expiry, Pan};
use d1_domain::{FieldError, IssuerId};
use d1_store::{
    CardData, CardOutcome, CardState, CreateCard, CreateOutcome, HolderData, RegisterCard,
};

use super::{
    consumer_id, id_error, open_consumer_route, path, plain_id, trail_context, CardPath, Checks,
    ConsumerPath, Opening,
};
use crate::context::RequestContext;
use crate::error::{ApiError, BareErrorBody, ErrorBody};
use crate::extract::{Caller, JsonBody};
use crate::state::AppState;
use crate::wire::card::{
    CardResponse, CardsResponse, CreateCardRequest, CreateCardResponse, RegisterCardRequest,
};
use crate::wire::json::{parse_object, Obj};

/// The v2 card routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/banking/v2/issuers/{issuer_id}/cards/{card_id}",
            get(get_card).put(register_card),
        )
        .route("/banking/v2/issuers/{issuer_id}/cards", post(create_card))
        .route(
            "/banking/v2/issuers/{issuer_id}/consumers/{consumer_id}/cards",
            get(consumer_cards),
        )
}

fn card_id(raw: &str) -> Result<CardId, FieldError> {
    CardId::parse(raw).map_err(|e| id_error("cardId", e))
}

pub fn state_value(raw: Option<String>, field: &str) -> Result<Option<CardState>, FieldError> {
    match raw.as_deref() {
        None => Ok(None),
        Some("ACTIVE") => Ok(Some(CardState::Active)),
        Some("INACTIVE") => Ok(Some(CardState::Inactive)),
        Some(_) => Err(FieldError::value(field, "must be ACTIVE or INACTIVE")),
    }
}

/// The plaintext of `encryptedData`: exactly `{"pan", "exp"}`, both strings.
fn card_data(plain: &[u8], field: &str) -> Result<CardData, FieldError> {
    let refuse = |detail| FieldError::value(field, detail);
    let value: serde_json::Value =
        serde_json::from_slice(plain).map_err(|_| refuse("does not hold {pan, exp}"))?;
    let object = value
        .as_object()
        .filter(|o| o.len() == 2)
        .ok_or_else(|| refuse("must hold exactly {pan, exp}"))?;
    let (Some(pan), Some(exp)) = (
        object.get("pan").and_then(|v| v.as_str()),
        object.get("exp").and_then(|v| v.as_str()),
    ) else {
        return Err(refuse("must hold exactly {pan, exp} as strings"));
    };
    let pan = Pan::parse(pan, field)?;
    let expiry = Expiry::parse(exp, time::OffsetDateTime::now_utc().date(), field)?;
    Ok(CardData {
        pan,
        expiry,
        holder: None,
    })
}

/// Decrypts an `encryptedData` JWE off the async workers; refusals name `field`.
///
/// # Errors
/// `FIELD_INVALID_VALUE` naming `field` for any JWE or card-data defect.
pub async fn card_data_from_jwe(
    state: &AppState,
    token: String,
    field: &str,
) -> Result<CardData, ApiError> {
    let refuse = |e: d1_crypto::jwe::JweError| ApiError::value(field, &e.to_string());
    let kid = d1_crypto::jwe::parse(&token)
        .map_err(refuse)?
        .kid()
        .to_owned();
    let key = state
        .keyring
        .decrypter(state.store.as_ref(), &kid)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .ok_or_else(|| refuse(d1_crypto::jwe::JweError::UnknownKid))?;
    let plain = state
        .crypto
        .run(move || d1_crypto::jwe::parse(&token).and_then(|jwe| jwe.decrypt(&key)))
        .await
        .map_err(ApiError::from)?
        .map_err(refuse)?;
    Ok(card_data(&plain, field)?)
}

/// Register card: PAN and expiry arrive as a JWE; an unknown consumer is registered.
#[utoipa::path(put, path = "/banking/v2/issuers/{issuerId}/cards/{cardId}", tag = "cards",
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
    let mut checks = Checks::default();
    let card = checks.take(card_id(&path(params)?.card_id))?;
    let trail = trail_context(&mut checks, &ctx, &headers)?;
    let value = parse_object(&body.0)?;
    let obj = Obj::new(&value, "")?;
    obj.only(&["consumerId", "cardProductId", "encryptedData", "state"])?;
    let consumer = checks.take(consumer_id(
        &state,
        &obj.req_str("consumerId")?,
        settings.lookalike_policy,
    ))?;
    let product = checks.take(
        CardProductId::parse(&obj.req_str("cardProductId")?)
            .map_err(|e| id_error("cardProductId", e)),
    )?;
    let encrypted = obj.req_str("encryptedData")?;
    if encrypted.split('.').count() != 5 {
        return Err(ApiError::format(
            "encryptedData",
            "is not a five-part compact JWE",
        ));
    }
    let card_state = checks.take(state_value(obj.opt_str("state")?, "state"))?;
    checks.finish()?;
    let (Some(card_id), Some(consumer_id), Some(product_id), Some(card_state)) =
        (card, consumer, product, card_state)
    else {
        return Err(ApiError::internal(
            &"register card input missing after checks",
        ));
    };
    if state.product(&issuer, &product_id).await?.is_none() {
        return Err(ApiError::value(
            "cardProductId",
            "is not a product of this issuer",
        ));
    }
    let data = card_data_from_jwe(&state, encrypted, "encryptedData").await?;
    let cmd = RegisterCard {
        issuer_id: issuer,
        card_id,
        consumer_id,
        card_product_id: product_id,
        data,
        state: card_state,
        trail,
    };
    match state.store.register_card(cmd).await? {
        CardOutcome::Registered { .. } | CardOutcome::Retried => Ok(StatusCode::NO_CONTENT),
        CardOutcome::ConsumerDeleted => Err(ApiError::invalid_state("the consumer is DELETED")),
        CardOutcome::ConsumerNotFound => Err(ApiError::consumer_not_found()),
        CardOutcome::Conflict(why) => Err(ApiError::card_conflict(why)),
    }
}

fn holder_name(obj: &Obj<'_>, field: &str) -> Result<Option<String>, FieldError> {
    let value = obj.opt_str(field)?;
    if let Some(v) = &value {
        if v.len() > 26
            || !v
                .bytes()
                .all(|b| b.is_ascii_alphabetic() || b == b'.' || b == b' ' || b == b'-')
        {
            return Err(FieldError::format(
                field,
                "must be up to 26 letters, dots, spaces or hyphens",
            ));
        }
    }
    Ok(value)
}

fn accounts(value: Option<&serde_json::Value>) -> Result<Option<serde_json::Value>, FieldError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let items = value
        .as_array()
        .ok_or_else(|| FieldError::format("accounts", "must be an array"))?;
    for (i, item) in items.iter().enumerate() {
        let path = format!("accounts[{i}]");
        let obj = Obj::new(item, &path)?;
        obj.only(&["default", "number", "currencyCode"])?;
        if !item
            .get("default")
            .is_none_or(serde_json::Value::is_boolean)
        {
            return Err(FieldError::format(
                format!("{path}.default"),
                "must be a boolean",
            ));
        }
        let number = obj.req_str("number")?;
        if number.is_empty()
            || number.len() > 34
            || !number.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(FieldError::format(
                format!("{path}.number"),
                "must be 1 to 34 letters or digits",
            ));
        }
        let currency = obj.req_str("currencyCode")?;
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(FieldError::format(
                format!("{path}.currencyCode"),
                "must be an ISO 4217 code",
            ));
        }
    }
    Ok(Some(value.clone()))
}

/// Create card: we allocate the PAN in the product's BIN range. The consumer must exist.
#[utoipa::path(post, path = "/banking/v2/issuers/{issuerId}/cards", tag = "cards",
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
    let mut checks = Checks::default();
    let trail = trail_context(&mut checks, &ctx, &headers)?;
    let idempotency_key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let key = v.to_str().ok().filter(|k| plain_id(k));
            Some(
                key.ok_or_else(|| {
                    ApiError::format("Idempotency-Key", "must be 1 to 64 letters, digits, _ or -")
                })?
                .to_owned(),
            )
        }
    };
    let value = parse_object(&body.0)?;
    let obj = Obj::new(&value, "")?;
    obj.only(&[
        "consumerId",
        "cardProductId",
        "state",
        "accounts",
        "cardholderName",
        "secondCardholderName",
    ])?;
    let consumer = checks.take(consumer_id(
        &state,
        &obj.req_str("consumerId")?,
        settings.lookalike_policy,
    ))?;
    let product = checks.take(
        CardProductId::parse(&obj.req_str("cardProductId")?)
            .map_err(|e| id_error("cardProductId", e)),
    )?;
    let card_state = checks.take(state_value(obj.opt_str("state")?, "state"))?;
    let mut holder = serde_json::Map::new();
    for field in ["cardholderName", "secondCardholderName"] {
        if let Some(name) = holder_name(&obj, field)? {
            holder.insert(field.to_owned(), name.into());
        }
    }
    if let Some(accounts) = accounts(value.get("accounts"))? {
        holder.insert("accounts".to_owned(), accounts);
    }
    checks.finish()?;
    let (Some(consumer_id), Some(product_id), Some(card_state)) = (consumer, product, card_state)
    else {
        return Err(ApiError::internal(
            &"create card input missing after checks",
        ));
    };
    let product = state
        .product(&issuer, &product_id)
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
        holder: (!holder.is_empty()).then_some(HolderData(holder)),
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
        CreateOutcome::ConsumerDeleted => Err(ApiError::invalid_state("the consumer is DELETED")),
        CreateOutcome::KeyReused => Err(ApiError::card_conflict(
            "the Idempotency-Key was used with another request",
        )),
        CreateOutcome::RangeExhausted => Err(ApiError::card_conflict(
            "the product's PAN range is exhausted",
        )),
    }
}

/// Finds a card of the caller's issuer. `checks` holds what the route checked before (its
/// trail headers), so the card id's value error keeps its place in the order of checks.
pub async fn find_card(
    state: &AppState,
    issuer: &IssuerId,
    raw: &str,
    mut checks: Checks,
) -> Result<CardResponse, ApiError> {
    let card = checks.take(card_id(raw))?;
    checks.finish()?;
    let card = card.ok_or_else(|| ApiError::internal(&"card id missing after checks"))?;
    let view = state
        .store
        .card(issuer, &card)
        .await?
        .ok_or_else(ApiError::card_not_found)?;
    Ok(CardResponse::from(&view))
}

/// Get card. Never the PAN.
#[utoipa::path(get, path = "/banking/v2/issuers/{issuerId}/cards/{cardId}", tag = "cards",
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
    let mut checks = Checks::default();
    trail_context(&mut checks, &ctx, &headers)?;
    Ok(Json(find_card(&state, &issuer, &raw, checks).await?))
}

/// A consumer's cards, of its current life.
#[utoipa::path(get, path = "/banking/v2/issuers/{issuerId}/consumers/{consumerId}/cards", tag = "cards",
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
        checks, consumer, ..
    } = open_consumer_route(&state, &issuer, &raw, &ctx, &headers).await?;
    checks.finish()?;
    let consumer =
        consumer.ok_or_else(|| ApiError::internal(&"consumer id missing after checks"))?;
    let cards = state
        .store
        .cards(&issuer, &consumer)
        .await?
        .ok_or_else(ApiError::consumer_not_found)?;
    Ok(Json(CardsResponse {
        cards: cards.iter().map(CardResponse::from).collect(),
    }))
}
