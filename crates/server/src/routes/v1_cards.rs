//! The v1 card operations (contract section 7): suspend, resume, delete and renew, as in
//! section 6, each on `operations:NAME` and its slash alias. Mounted by [`super::v1`], so
//! every refusal is in the v1 body; `x-user-id` is not read.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use d1_domain::card::lifecycle::CardOperation;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::cards::operate_card;
use super::v1::trail;
use super::{path, with_slash_alias, CardPath};
use crate::context::RequestContext;
use crate::error::{ApiError, BareErrorBody};
use crate::extract::{Caller, JsonBody};
use crate::state::AppState;
use crate::wire::lifecycle::{CardOperationRequest, CardOperationResponse, RenewCardRequest};

/// The v1 card operation routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(with_slash_alias(routes!(suspend)))
        .routes(with_slash_alias(routes!(resume)))
        .routes(with_slash_alias(routes!(delete)))
        .routes(with_slash_alias(routes!(renew)))
}

/// Declares the v1 route of one operation.
macro_rules! v1_operation {
    ($(#[$doc:meta])* $name:ident, $id:literal, $path:literal, $body:ty, $op:expr) => {
        $(#[$doc])*
        #[utoipa::path(post, path = $path, tag = "v1", operation_id = $id,
            params(("issuerId" = String, Path), ("cardId" = String, Path),
                   ("x-correlation-id" = Option<String>, Header)),
            request_body = $body,
            responses((status = 200, body = CardOperationResponse), (status = 400, body = BareErrorBody),
                      (status = 401, body = BareErrorBody), (status = 403, body = BareErrorBody),
                      (status = 404, body = BareErrorBody), (status = 409, body = BareErrorBody)),
            security(("bearer" = [])))]
        pub async fn $name(
            State(state): State<AppState>,
            Caller(issuer): Caller,
            Extension(ctx): Extension<RequestContext>,
            params: Result<Path<CardPath>, PathRejection>,
            body: JsonBody,
        ) -> Result<Json<CardOperationResponse>, ApiError> {
            let raw = path(params)?.card_id;
            operate_card(&state, issuer, &raw, $op, || trail(&ctx), &body).await
        }
    };
}

v1_operation!(
    /// Suspend card (v1).
    suspend,
    "v1_suspend_card",
    "/issuers/{issuerId}/cards/{cardId}/operations:suspend",
    CardOperationRequest,
    CardOperation::Suspend
);
v1_operation!(
    /// Resume card (v1).
    resume,
    "v1_resume_card",
    "/issuers/{issuerId}/cards/{cardId}/operations:resume",
    CardOperationRequest,
    CardOperation::Resume
);
v1_operation!(
    /// Delete card (v1).
    delete,
    "v1_delete_card",
    "/issuers/{issuerId}/cards/{cardId}/operations:delete",
    CardOperationRequest,
    CardOperation::Delete
);
v1_operation!(
    /// Renew card (v1).
    renew,
    "v1_renew_card",
    "/issuers/{issuerId}/cards/{cardId}/operations:renew",
    RenewCardRequest,
    CardOperation::Renew
);
