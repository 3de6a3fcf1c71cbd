//! The v1 operations list (contract section 7): a consumer's trail by `offset` and `count`,
//! newest first, with the items of the v2 trail, under the v1 policy (errors in `{"error"}`).
//!
//! `offset` 0 (the default) is the most recent operation and an offset past the end gives an
//! empty list; `count` is 1 to 100, default 10. A value that is not a whole number is
//! `FIELD_INVALID_FORMAT`; a whole number out of range (`count=0`, `count=101`, `offset=-1`)
//! is well-formed but not allowed, so it is `FIELD_INVALID_VALUE` and, by the order of
//! checks, waits behind every format check and comes before the consumer's existence.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::v1::trail;
use super::{open_consumer_route_with, path, ConsumerPath, Opening};
use crate::context::RequestContext;
use crate::error::{ApiError, BareErrorBody};
use crate::extract::Caller;
use crate::state::AppState;
use crate::wire::checks::{check, whole_number, Finish};
use crate::wire::consumer::{OperationDto, V1OperationsResponse};

/// The most entries one page may hold.
pub const MAX_COUNT: u64 = 100;
/// The entries of a page when `count` is absent.
pub const DEFAULT_COUNT: u64 = 10;

/// The v1 operations list.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(operations))
}

/// Query of the v1 operations list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct V1TrailQuery {
    /// How many of the most recent operations to skip; 0 (the default) starts at the most
    /// recent one.
    #[param(minimum = 0, example = 0)]
    offset: Option<String>,
    /// 1 to 100, default 10.
    #[param(minimum = 1, maximum = 100, example = 10)]
    count: Option<String>,
}

/// The operations of a consumer (v1), newest first.
#[utoipa::path(get, path = "/issuers/{issuerId}/consumers/{consumerId}/operations", tag = "v1",
    operation_id = "v1_operations",
    params(("issuerId" = String, Path), ("consumerId" = String, Path), V1TrailQuery),
    responses((status = 200, body = V1OperationsResponse), (status = 400, body = BareErrorBody),
              (status = 401, body = BareErrorBody), (status = 404, body = BareErrorBody),
              (status = 500, body = BareErrorBody)),
    security(("bearer" = [])))]
pub async fn operations(
    State(state): State<AppState>,
    Caller(issuer): Caller,
    Extension(ctx): Extension<RequestContext>,
    params: Result<Path<ConsumerPath>, PathRejection>,
    query: Result<Query<V1TrailQuery>, QueryRejection>,
) -> Result<Json<V1OperationsResponse>, ApiError> {
    let raw = path(params)?.consumer_id;
    let Opening {
        consumer, trail, ..
    } = open_consumer_route_with(&state, &issuer, &raw, || trail(&ctx)).await?;
    let Query(query) =
        query.map_err(|_| ApiError::format("query", "is not a valid query string"))?;
    let offset = check(whole_number(
        query.offset.as_deref(),
        "offset",
        0..=u64::MAX,
        0,
        "must be 0 or more",
    ))?;
    let count = check(whole_number(
        query.count.as_deref(),
        "count",
        1..=MAX_COUNT,
        DEFAULT_COUNT,
        "must be 1 to 100",
    ))?;
    let (consumer_id, _, offset, count) = (consumer, trail, offset, count).finish()?;
    let count = u32::try_from(count).unwrap_or(u32::MAX);
    let operations = state
        .store
        .operations_at(&issuer, &consumer_id, offset, count)
        .await?
        .ok_or_else(ApiError::consumer_not_found)?;
    Ok(Json(V1OperationsResponse {
        operations: operations.iter().map(OperationDto::from).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use d1_domain::FieldErrorKind;

    fn count(raw: &str) -> Result<u64, FieldErrorKind> {
        whole_number(Some(raw), "count", 1..=MAX_COUNT, DEFAULT_COUNT, "x").map_err(|e| e.kind)
    }

    fn offset(raw: &str) -> Result<u64, FieldErrorKind> {
        whole_number(Some(raw), "offset", 0..=u64::MAX, 0, "x").map_err(|e| e.kind)
    }

    #[test]
    fn a_whole_number_out_of_range_is_a_value_error_and_anything_else_a_format_error() {
        assert_eq!(count("1"), Ok(1));
        assert_eq!(count("100"), Ok(100));
        assert_eq!(count("010"), Ok(10));
        for out in [
            "0",
            "101",
            "-1",
            "99999999999999999999999999999999999999999999",
        ] {
            assert_eq!(count(out), Err(FieldErrorKind::Value), "{out}");
        }
        for bad in ["", "-", "ten", "1.5", "+1", " 1", "1e2", "0x10"] {
            assert_eq!(count(bad), Err(FieldErrorKind::Format), "{bad:?}");
            assert_eq!(offset(bad), Err(FieldErrorKind::Format), "{bad:?}");
        }
        assert_eq!(offset("0"), Ok(0));
        assert_eq!(offset("-0"), Ok(0));
        assert_eq!(offset("-1"), Err(FieldErrorKind::Value));
        assert_eq!(offset("99999999999999999999999"), Ok(u64::MAX));
        assert_eq!(
            whole_number(None, "count", 1..=MAX_COUNT, DEFAULT_COUNT, "x"),
            Ok(DEFAULT_COUNT)
        );
    }
}
