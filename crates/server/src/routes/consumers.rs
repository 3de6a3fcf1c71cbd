//! The v2 Consumer API (contract section 5): register, update, delete, get, and the
//! operations trail. Paths are relative to `/banking/v2`, where `app.rs` mounts the group.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use d1_domain::{DeleteReason, FieldError, IssuerId, PersonalInformation};
use d1_store::{
    ChangeOutcome, DeleteConsumer, IssuerRecord, PiStorage, RegisterConsumer, UpdateConsumer,
};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{
    open_consumer_route, open_consumer_route_with, path, trail_context, with_slash_alias,
    ConsumerPath, Opening,
};
use crate::context::RequestContext;
use crate::error::{ApiError, BareErrorBody, ErrorBody};
use crate::extract::{Caller, JsonBody};
use crate::state::AppState;
use crate::wire::checks::{check, whole_number, Checked, Finish};
use crate::wire::consumer::{
    ConsumerResponse, DeleteConsumerRequest, OperationsResponse, RegisterConsumerRequest,
    UpdateConsumerRequest,
};

/// The v2 consumer routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_consumer, register))
        .routes(with_slash_alias(routes!(update)))
        .routes(with_slash_alias(routes!(delete)))
        .routes(routes!(operations))
}

type PathParams = Result<Path<ConsumerPath>, PathRejection>;

/// Value rules an issuer's settings put on PI it sends.
fn pi_allowed(settings: &IssuerRecord, pi: &PersonalInformation) -> Result<(), FieldError> {
    if settings.pi_storage == PiStorage::Forbidden {
        return Err(FieldError::value(
            "personalInformation",
            "this issuer is configured not to send personal information",
        ));
    }
    if settings.click_to_pay {
        if let Some(missing) = pi.missing_click_to_pay_field() {
            return Err(FieldError::value(
                format!("personalInformation.{missing}"),
                "is mandatory for Click to Pay",
            ));
        }
    }
    Ok(())
}

/// Register consumer.
#[utoipa::path(put, path = "/issuers/{issuerId}/consumers/{consumerId}", tag = "consumers",
    params(("issuerId" = String, Path), ("consumerId" = String, Path),
           ("x-correlation-id" = Option<String>, Header), ("x-user-id" = Option<String>, Header)),
    request_body(content = RegisterConsumerRequest, description = "optional"),
    responses((status = 204, description = "registered"), (status = 400, body = ErrorBody), (status = 401, body = BareErrorBody),
              (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 500, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn register(
    State(state): State<AppState>,
    Caller(issuer): Caller,
    Extension(ctx): Extension<RequestContext>,
    headers: HeaderMap,
    params: PathParams,
    body: JsonBody,
) -> Result<StatusCode, ApiError> {
    let raw = path(params)?.consumer_id;
    let Opening {
        settings,
        consumer,
        trail,
    } = open_consumer_route(&state, &issuer, &raw, &ctx, &headers).await?;
    let pi = if body.is_empty() {
        Checked::ok(None)
    } else {
        body.read::<RegisterConsumerRequest>()?.parse()?
    };
    let pi = pi.and_value(|pi| pi.as_ref().map_or(Ok(()), |pi| pi_allowed(&settings, pi)));
    let (consumer_id, trail, pi) = (consumer, trail, pi).finish()?;
    state
        .store
        .register_consumer(RegisterConsumer {
            issuer_id: issuer,
            consumer_id,
            pi,
            trail,
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Update consumer: replaces the stored PI whole.
#[utoipa::path(post, path = "/issuers/{issuerId}/consumers/{consumerId}/operations:update", tag = "consumers",
    params(("issuerId" = String, Path), ("consumerId" = String, Path),
           ("x-correlation-id" = Option<String>, Header), ("x-user-id" = Option<String>, Header)),
    request_body = UpdateConsumerRequest,
    responses((status = 204, description = "updated"), (status = 400, body = ErrorBody), (status = 401, body = BareErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 415, body = ErrorBody), (status = 500, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Caller(issuer): Caller,
    Extension(ctx): Extension<RequestContext>,
    headers: HeaderMap,
    params: PathParams,
    body: JsonBody,
) -> Result<StatusCode, ApiError> {
    let raw = path(params)?.consumer_id;
    let Opening {
        settings,
        consumer,
        trail,
    } = open_consumer_route(&state, &issuer, &raw, &ctx, &headers).await?;
    if body.is_empty() {
        return Err(ApiError::format("personalInformation", "is required"));
    }
    let pi = body
        .read::<UpdateConsumerRequest>()?
        .parse()?
        .and_value(|pi| pi_allowed(&settings, pi));
    let (consumer_id, trail, pi) = (consumer, trail, pi).finish()?;
    match state
        .store
        .update_consumer(UpdateConsumer {
            issuer_id: issuer,
            consumer_id,
            pi,
            trail,
        })
        .await?
    {
        ChangeOutcome::NotFound => Err(ApiError::consumer_not_found()),
        ChangeOutcome::Deleted => Err(ApiError::consumer_deleted()),
        ChangeOutcome::Applied | ChangeOutcome::Unchanged => Ok(StatusCode::NO_CONTENT),
    }
}

/// Delete consumer: logical delete, every card deleted, PI crypto-shredded.
#[utoipa::path(post, path = "/issuers/{issuerId}/consumers/{consumerId}/operations:delete", tag = "consumers",
    params(("issuerId" = String, Path), ("consumerId" = String, Path),
           ("x-correlation-id" = Option<String>, Header), ("x-user-id" = Option<String>, Header)),
    request_body(content = DeleteConsumerRequest, description = "optional"),
    responses((status = 204, description = "deleted, or already deleted"), (status = 400, body = ErrorBody),
              (status = 401, body = BareErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 415, body = ErrorBody), (status = 500, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Caller(issuer): Caller,
    Extension(ctx): Extension<RequestContext>,
    headers: HeaderMap,
    params: PathParams,
    body: JsonBody,
) -> Result<StatusCode, ApiError> {
    let raw = path(params)?.consumer_id;
    let trail = || trail_context(&ctx, &headers);
    delete_consumer(&state, issuer, &raw, trail, &body).await
}

/// Delete consumer, shared by v2 and v1: `trail` reads the request's trail headers.
///
/// # Errors
/// The D1 refusals of Delete consumer.
pub async fn delete_consumer(
    state: &AppState,
    issuer: IssuerId,
    raw_consumer: &str,
    trail: impl FnOnce() -> Result<Checked<d1_store::TrailContext>, ApiError>,
    body: &JsonBody,
) -> Result<StatusCode, ApiError> {
    let Opening {
        consumer, trail, ..
    } = open_consumer_route_with(state, &issuer, raw_consumer, trail).await?;
    let reason = if body.is_empty() {
        Checked::ok(DeleteReason::default())
    } else {
        body.read::<DeleteConsumerRequest>()?.parse()?
    };
    let (consumer_id, trail, reason) = (consumer, trail, reason).finish()?;
    let cmd = DeleteConsumer {
        issuer_id: issuer,
        consumer_id,
        reason,
        trail,
    };
    match state.store.delete_consumer(cmd).await? {
        ChangeOutcome::NotFound => Err(ApiError::consumer_not_found()),
        ChangeOutcome::Applied | ChangeOutcome::Unchanged | ChangeOutcome::Deleted => {
            Ok(StatusCode::NO_CONTENT)
        }
    }
}

/// Get consumer. Stored PI only; never fetched from the issuer for this call.
#[utoipa::path(get, path = "/issuers/{issuerId}/consumers/{consumerId}", tag = "consumers",
    params(("issuerId" = String, Path), ("consumerId" = String, Path), ("x-correlation-id" = Option<String>, Header)),
    responses((status = 200, body = ConsumerResponse), (status = 400, body = ErrorBody), (status = 401, body = BareErrorBody),
              (status = 404, body = ErrorBody), (status = 500, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_consumer(
    State(state): State<AppState>,
    Caller(issuer): Caller,
    Extension(ctx): Extension<RequestContext>,
    headers: HeaderMap,
    params: PathParams,
) -> Result<Json<ConsumerResponse>, ApiError> {
    let raw = path(params)?.consumer_id;
    let Opening {
        consumer, trail, ..
    } = open_consumer_route(&state, &issuer, &raw, &ctx, &headers).await?;
    let (consumer_id, _) = (consumer, trail).finish()?;
    let view = state
        .store
        .consumer(&issuer, &consumer_id)
        .await?
        .ok_or_else(ApiError::consumer_not_found)?;
    Ok(Json(ConsumerResponse::from(&view)))
}

/// Query of the operations trail.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrailQuery {
    /// 1 to 200, default 50.
    limit: Option<String>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
}

/// The operations trail of a consumer, newest first.
#[utoipa::path(get, path = "/issuers/{issuerId}/consumers/{consumerId}/operations", tag = "consumers",
    params(("issuerId" = String, Path), ("consumerId" = String, Path), TrailQuery),
    responses((status = 200, body = OperationsResponse), (status = 400, body = ErrorBody), (status = 401, body = BareErrorBody),
              (status = 404, body = ErrorBody), (status = 500, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn operations(
    State(state): State<AppState>,
    Caller(issuer): Caller,
    Extension(ctx): Extension<RequestContext>,
    headers: HeaderMap,
    params: PathParams,
    query: Result<Query<TrailQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<OperationsResponse>, ApiError> {
    let raw = path(params)?.consumer_id;
    let Opening {
        consumer, trail, ..
    } = open_consumer_route(&state, &issuer, &raw, &ctx, &headers).await?;
    let Query(query) =
        query.map_err(|_| ApiError::format("query", "is not a valid query string"))?;
    // A limit out of range is a value, as v1's count is: after every format of the request.
    let limit = check(whole_number(
        query.limit.as_deref(),
        "limit",
        1..=200,
        50,
        "must be 1 to 200",
    ))?;
    let before = match query.cursor.as_deref() {
        None => None,
        Some(text) => Some(
            text.parse::<i64>()
                .ok()
                .filter(|c| *c > 0)
                .ok_or_else(|| ApiError::format("cursor", "is not a cursor from this API"))?,
        ),
    };
    let (consumer_id, _, limit) = (consumer, trail, limit).finish()?;
    let limit = u32::try_from(limit).unwrap_or(200);
    let page = state
        .store
        .operations(&issuer, &consumer_id, limit, before)
        .await?
        .ok_or_else(ApiError::consumer_not_found)?;
    Ok(Json(OperationsResponse::from(&page)))
}
