//! The card life-cycle operations (contract section 6): v2 suspend, resume, delete, renew,
//! replace and activate, each on `operations:NAME` and its slash alias, and [`operate_card`],
//! which the v1 operations share. The reason table and every state rule are the store's and
//! the domain's; this module reads the body in D1's order of checks and maps the outcome.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::{Extension, Json};
use d1_domain::card::lifecycle::CardOperation;
use d1_domain::IssuerId;
use d1_store::{CardAction, OperateCard, OperateOutcome, TrailContext};

use super::{card_data_from_jwe, card_id};
use crate::context::RequestContext;
use crate::error::{ApiError, BareErrorBody, ErrorBody};
use crate::extract::{Caller, JsonBody};
use crate::routes::{path, trail_context, CardPath};
use crate::state::AppState;
use crate::wire::checks::{check, Checked, Finish};
use crate::wire::lifecycle::{
    read_body, BodyOf, CardOperationRequest, CardOperationResponse, RenewCardRequest,
    ReplaceCardRequest,
};

/// Reads a non-empty body as `op`'s own type.
fn typed(body: &JsonBody, op: CardOperation) -> Result<BodyOf, d1_domain::FieldError> {
    Ok(match op {
        CardOperation::Renew => BodyOf::Renew(body.read::<RenewCardRequest>()?),
        CardOperation::Replace => BodyOf::Replace(body.read::<ReplaceCardRequest>()?),
        _ => BodyOf::Plain(body.read::<CardOperationRequest>()?),
    })
}

/// Runs `op` on the card the path names, for the v2 and v1 routes alike; `read_trail` reads
/// the API version's trail headers.
///
/// # Errors
/// Every refusal of section 6, in the order of section 3.
pub async fn operate_card(
    state: &AppState,
    issuer: IssuerId,
    raw_card: &str,
    op: CardOperation,
    read_trail: impl FnOnce() -> Result<Checked<TrailContext>, ApiError>,
    body: &JsonBody,
) -> Result<Json<CardOperationResponse>, ApiError> {
    state
        .issuer(&issuer)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let card = check(card_id(raw_card))?;
    let trail = read_trail()?;
    let parsed = read_body(op, body.is_empty(), |op| typed(body, op))?;
    let (card_id, trail, parsed) = (card, trail, parsed).finish()?;
    let data = match parsed.encrypted_data {
        Some(jwe) => Some(card_data_from_jwe(state, &jwe, "encryptedData").await?),
        None => None,
    };
    let action = match op {
        CardOperation::Suspend => CardAction::Suspend,
        CardOperation::Resume => CardAction::Resume,
        CardOperation::Delete => CardAction::Delete,
        CardOperation::Activate => CardAction::Activate,
        CardOperation::Renew => CardAction::Renew { data },
        CardOperation::Replace => CardAction::Replace {
            new_card_id: parsed.new_card_id,
            data,
        },
    };
    let cmd = OperateCard {
        issuer_id: issuer,
        card_id,
        action,
        reason_code: parsed.reason_code,
        reason: parsed.reason,
        trail,
    };
    match state.store.operate_card(cmd).await? {
        OperateOutcome::Done {
            operation_id,
            card_id,
        }
        | OperateOutcome::Retried {
            operation_id,
            card_id,
        } => Ok(Json(CardOperationResponse {
            operation_id,
            status: "SUCCESSFUL",
            card_id: card_id.as_str().to_owned(),
        })),
        OperateOutcome::CardNotFound => Err(ApiError::card_not_found()),
        OperateOutcome::ConsumerDeleted => Err(ApiError::consumer_deleted()),
        OperateOutcome::InvalidState { state, reason } => {
            let reason = reason.map_or_else(String::new, |r| format!(" ({r})"));
            Err(ApiError::invalid_state(&format!(
                "the card is {}{reason}, which does not allow {}",
                state.as_str(),
                op.as_str()
            )))
        }
        OperateOutcome::Refused(e) => Err(e.into()),
        OperateOutcome::Conflict(why) => Err(ApiError::card_conflict(why)),
    }
}

/// Declares the v2 route of one operation.
macro_rules! v2_operation {
    ($(#[$doc:meta])* $name:ident, $path:literal, $body:ty, $op:expr) => {
        $(#[$doc])*
        #[utoipa::path(post, path = $path, tag = "cards",
            params(("issuerId" = String, Path), ("cardId" = String, Path),
                   ("x-correlation-id" = Option<String>, Header), ("x-user-id" = Option<String>, Header)),
            request_body = $body,
            responses((status = 200, body = CardOperationResponse), (status = 400, body = ErrorBody),
                      (status = 401, body = BareErrorBody), (status = 403, body = ErrorBody),
                      (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
                      (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
                      (status = 500, body = ErrorBody)),
            security(("bearer" = [])))]
        pub async fn $name(
            State(state): State<AppState>,
            Caller(issuer): Caller,
            Extension(ctx): Extension<RequestContext>,
            headers: HeaderMap,
            params: Result<Path<CardPath>, PathRejection>,
            body: JsonBody,
        ) -> Result<Json<CardOperationResponse>, ApiError> {
            let raw = path(params)?.card_id;
            let trail = || trail_context(&ctx, &headers);
            operate_card(&state, issuer, &raw, $op, trail, &body).await
        }
    };
}

v2_operation!(
    /// Suspend card: `reasonCode` CARD_LOST, CARD_STOLEN, CARD_BROKEN, FRAUD, USER_DECISION or
    /// ISSUER_DECISION; the reason decides how it may be resumed.
    suspend_card,
    "/issuers/{issuerId}/cards/{cardId}/operations:suspend",
    CardOperationRequest,
    CardOperation::Suspend
);
v2_operation!(
    /// Resume card: `reasonCode` CARD_FOUND, ISSUER_DECISION or USER_DECISION, as the
    /// suspension's reason allows.
    resume_card,
    "/issuers/{issuerId}/cards/{cardId}/operations:resume",
    CardOperationRequest,
    CardOperation::Resume
);
v2_operation!(
    /// Delete card: final; its sealed PAN is shredded and it leaves the Click to Pay directory.
    delete_card,
    "/issuers/{issuerId}/cards/{cardId}/operations:delete",
    CardOperationRequest,
    CardOperation::Delete
);
v2_operation!(
    /// Renew card: a registered card with its PAN and a later expiry; a created card gets a
    /// new expiry, current once activated.
    renew_card,
    "/issuers/{issuerId}/cards/{cardId}/operations:renew",
    RenewCardRequest,
    CardOperation::Renew
);
v2_operation!(
    /// Replace card: the old card REPLACED, a new one ACTIVE; answers the new cardId.
    replace_card,
    "/issuers/{issuerId}/cards/{cardId}/operations:replace",
    ReplaceCardRequest,
    CardOperation::Replace
);
v2_operation!(
    /// Activate card: an INACTIVE card becomes ACTIVE; a waiting renewal becomes current.
    activate_card,
    "/issuers/{issuerId}/cards/{cardId}/operations:activate",
    CardOperationRequest,
    CardOperation::Activate
);
