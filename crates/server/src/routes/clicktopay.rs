//! Click to Pay enrolment (contract section 9) and the read of any operation by its id. The
//! enrolment answers 202 at once with the operation and its status; the job worker does the
//! rest. Its body's cardholder name is personal data: it is sealed with the billing address in
//! the job's row and never logged. Paths are relative to
//! `/banking/v1`, where `app.rs` mounts the group with the policy of section 9: errors in the
//! v2 body.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use d1_domain::card::CardId;
use d1_domain::{Address, CardholderName, DeleteReason, OperationStatus};
use d1_store::{EnrolmentStart, StartEnrolment};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{id_error, path, plain_id, trail_context, with_slash_alias, CardPath};
use crate::clock::rfc3339;
use crate::context::RequestContext;
use crate::error::{ApiError, BareErrorBody, ErrorBody};
use crate::extract::{Caller, JsonBody};
use crate::state::AppState;
use crate::wire::checks::{check, Checked, Finish};
use crate::wire::json;
use crate::wire::pi::AddressDto;

/// The Click to Pay routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(with_slash_alias(routes!(enrol)))
        .routes(routes!(operation))
}

/// The optional body of a Click to Pay enrolment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnrolmentRequest {
    /// Where the card is billed; default: the consumer's residency address.
    #[serde(default, deserialize_with = "json::opt_object")]
    pub billing_address: Option<AddressDto>,
    /// The name on the card in the directory; it wins over the card's and the consumer's.
    /// `^[\p{L}\p{N}\u0600-\u06FF ,.'_#;:\/-]{1,26}$`, stated here rather than as the
    /// schema's `pattern`: JSON Schema's regular expressions have no `\p{…}` classes.
    #[schema(min_length = 1, max_length = 26)]
    pub cardholder_name: Option<String>,
    #[schema(pattern = "^[a-zA-Z0-9 ]{1,64}$")]
    pub reason: Option<String>,
    /// `ISSUER_DECISION` (the default) or `USER_DECISION`.
    #[schema(example = "ISSUER_DECISION")]
    pub reason_code: Option<String>,
}

/// An enrolment body after its rules.
struct Enrolment {
    billing: Option<Address>,
    cardholder_name: Option<CardholderName>,
    /// The same two codes and default as a consumer delete's.
    reason: DeleteReason,
}

/// The accepted enrolment's operation.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperationAccepted {
    pub operation_id: String,
    /// `PENDING` for a new enrolment; for a repeat, the existing one's: `PENDING` or
    /// `SUCCESSFUL`.
    #[schema(example = "PENDING")]
    pub status: &'static str,
}

/// An operation as read by its id.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperationResponse {
    pub operation_id: String,
    #[schema(example = "CLICK_TO_PAY_ENROLMENT")]
    pub operation: &'static str,
    #[schema(example = "PENDING")]
    pub status: &'static str,
    /// Why it FAILED: `ISSUER_BACKEND_TIMEOUT`, `MISSING_FIELD:email`, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_id: Option<String>,
    pub start_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
}

/// Path parameters naming an operation.
#[derive(Debug, Deserialize)]
pub struct OperationPath {
    #[serde(rename = "operationId")]
    pub operation_id: String,
}

/// The enrolment body's fields, in their order: every format rule first (the billing
/// address checked like a residency address), then the value rules.
fn enrolment(body: &JsonBody) -> Result<Checked<Enrolment>, ApiError> {
    let request = if body.is_empty() {
        None
    } else {
        Some(body.read::<EnrolmentRequest>()?)
    };
    let Some(request) = request else {
        return Ok(Checked::ok(Enrolment {
            billing: None,
            cardholder_name: None,
            reason: DeleteReason::default(),
        }));
    };
    let billing = match request.billing_address {
        None => Checked::ok(None),
        Some(raw) => {
            let billing = Address::from(raw).normalised();
            billing
                .check_format()
                .map_err(|e| e.under("billingAddress"))?;
            check(billing.check_value().map_err(|e| e.under("billingAddress")))?
                .map(|()| Some(billing))
        }
    };
    let cardholder_name = request
        .cardholder_name
        .map(|name| CardholderName::parse(name, "cardholderName"))
        .transpose()?;
    let reason = check(DeleteReason::parse(
        request.reason,
        request.reason_code.as_deref(),
    ))?;
    Ok(billing.and(reason).map(|(billing, reason)| Enrolment {
        billing,
        cardholder_name,
        reason,
    }))
}

/// Click to Pay enrolment of a card: 202 with the operation to follow.
#[utoipa::path(post, path = "/issuers/{issuerId}/cards/{cardId}/operations:clickToPayEnrolment",
    tag = "click to pay", params(("issuerId" = String, Path), ("cardId" = String, Path)),
    request_body(content = Option<EnrolmentRequest>),
    responses((status = 202, body = OperationAccepted), (status = 400, body = ErrorBody), (status = 401, body = BareErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 500, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn enrol(
    State(state): State<AppState>,
    Caller(issuer): Caller,
    Extension(ctx): Extension<RequestContext>,
    headers: HeaderMap,
    params: Result<Path<CardPath>, PathRejection>,
    body: JsonBody,
) -> Result<(StatusCode, Json<OperationAccepted>), ApiError> {
    let raw = path(params)?.card_id;
    let settings = state
        .issuer(&issuer)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let card = check(CardId::parse(&raw).map_err(|e| id_error("cardId", e)))?;
    let trail = trail_context(&ctx, &headers)?;
    let enrolment = enrolment(&body)?;
    let (card, trail, enrolment) = (card, trail, enrolment).finish()?;
    // A refusal from the cache is checked against the database: `issuer set --click-to-pay
    // on` a moment ago must not wait for the cache to expire.
    let enabled = settings.click_to_pay
        || state
            .issuer_now(&issuer)
            .await?
            .is_some_and(|fresh| fresh.click_to_pay);
    if !enabled {
        // Existence comes before state: an unknown card is still a 404.
        state
            .store
            .card(&issuer, &card)
            .await?
            .ok_or_else(ApiError::card_not_found)?;
        return Err(ApiError::invalid_state(
            "Click to Pay is not enabled for this issuer",
        ));
    }
    // The card's existence and state are checked by the store, in the same transaction that
    // accepts the enrolment.
    let started = state
        .store
        .start_enrolment(StartEnrolment {
            issuer_id: issuer,
            card_id: card,
            billing: enrolment.billing,
            cardholder_name: enrolment.cardholder_name,
            reason: enrolment.reason,
            trail,
            correlation_id: ctx.effective_correlation(),
        })
        .await?;
    let (operation_id, status) = match started {
        EnrolmentStart::Started(id) => {
            state.click_to_pay.wake();
            (id, OperationStatus::Pending)
        }
        EnrolmentStart::Existing(id, status) => (id, status),
        EnrolmentStart::CardNotFound => return Err(ApiError::card_not_found()),
        EnrolmentStart::NotActive => return Err(ApiError::invalid_state("the card is not ACTIVE")),
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(OperationAccepted {
            operation_id,
            status: status.as_str(),
        }),
    ))
}

/// Any operation of the issuer's trail, by its id.
#[utoipa::path(get, path = "/issuers/{issuerId}/operations/{operationId}",
    tag = "click to pay", params(("issuerId" = String, Path), ("operationId" = String, Path)),
    responses((status = 200, body = OperationResponse), (status = 400, body = ErrorBody), (status = 401, body = BareErrorBody),
              (status = 404, body = ErrorBody), (status = 500, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn operation(
    State(state): State<AppState>,
    Caller(issuer): Caller,
    Extension(ctx): Extension<RequestContext>,
    headers: HeaderMap,
    params: Result<Path<OperationPath>, PathRejection>,
) -> Result<Json<OperationResponse>, ApiError> {
    let raw = path(params)?.operation_id;
    if !plain_id(&raw) {
        return Err(ApiError::format(
            "operationId",
            "must be 1 to 64 letters, digits, _ or -",
        ));
    }
    trail_context(&ctx, &headers)?.finish()?;
    let op = state
        .store
        .operation(&issuer, &raw)
        .await?
        .ok_or_else(ApiError::operation_not_found)?;
    Ok(Json(OperationResponse {
        operation_id: op.operation_id,
        operation: op.operation.as_str(),
        status: op.status.as_str(),
        reason: op.reason,
        card_id: op.card_id,
        start_time: rfc3339(op.start_time),
        end_time: op.end_time.map(rfc3339),
    }))
}
