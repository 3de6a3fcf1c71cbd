//! The HTTP routes, one module per area. Each area's `router()` declares its routes once,
//! with `routes!(handler)`: the route and its entry in `/openapi.json` both come from the
//! handler's `#[utoipa::path]`. Which policy (error body, body limit) a route runs under is
//! the group `app.rs` puts it in.

pub mod cards;
pub mod clicktopay;
pub mod consumers;
pub mod docs;
pub mod docs_rules;
pub mod health;
pub mod token;
pub mod v1;
pub mod v1_cards;
pub mod v1_trail;

use axum::extract::rejection::PathRejection;
use axum::extract::Path;
use axum::http::HeaderMap;
use d1_domain::guard::IdShape;
use d1_domain::{ConsumerId, FieldError, IdError, IssuerId, LookalikePolicy, UserId};
use d1_store::{IssuerRecord, TrailContext};
use serde::Deserialize;
use utoipa::openapi::path::PathItem;
use utoipa_axum::router::UtoipaMethodRouter;

use crate::context::RequestContext;
use crate::error::ApiError;
use crate::state::AppState;
pub use crate::wire::checks::id_error;
use crate::wire::checks::{check, Checked};

/// Path parameters naming a consumer.
#[derive(Debug, Deserialize)]
pub struct ConsumerPath {
    #[serde(rename = "consumerId")]
    pub consumer_id: String,
}

/// Path parameters naming a card.
#[derive(Debug, Deserialize)]
pub struct CardPath {
    #[serde(rename = "cardId")]
    pub card_id: String,
}

/// `routes` answered on the slash form of its operation path too: D1 writes
/// `operations:NAME`, and every operation route also answers on `operations/NAME` (contract
/// section 2). The document keeps the colon form and lists the slash form as its alias.
pub fn with_slash_alias<S>(routes: UtoipaMethodRouter<S>) -> UtoipaMethodRouter<S> {
    let (schemas, mut paths, router) = routes;
    let aliases: Vec<(String, PathItem)> = paths
        .paths
        .iter()
        .filter_map(|(path, item)| {
            let alias = path.replacen("/operations:", "/operations/", 1);
            (alias != *path).then(|| (alias, alias_item(path, item.clone())))
        })
        .collect();
    paths.paths.extend(aliases);
    (schemas, paths, router)
}

fn alias_item(path: &str, mut item: PathItem) -> PathItem {
    let colon = path.rsplit('/').next().unwrap_or(path);
    let operations = [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ];
    for operation in operations.into_iter().flatten() {
        operation.operation_id = operation
            .operation_id
            .take()
            .map(|id| format!("{id}_slash_alias"));
        operation.summary = Some(format!("Alias of `…/{colon}`"));
        operation.description = Some(format!(
            "The slash form of `…/{colon}`, with the same behaviour (contract section 2)."
        ));
    }
    item
}

/// The path parameters, or a format error when the path does not decode (bad
/// percent-encoding).
///
/// # Errors
/// `FIELD_INVALID_FORMAT` naming `path`.
pub fn path<T>(params: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    params
        .map(|Path(p)| p)
        .map_err(|_| ApiError::format("path", "is not a valid path"))
}

/// Whether `raw` is 1 to 64 letters, digits, `_` or `-`: the shape of the identifiers the
/// service takes without a domain type (`Idempotency-Key`, `operationId`).
#[must_use]
pub fn plain_id(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Parses a consumerId from the path and applies the personal-data guard.
pub fn consumer_id(
    state: &AppState,
    raw: &str,
    policy: LookalikePolicy,
) -> Result<ConsumerId, FieldError> {
    match ConsumerId::parse(raw) {
        Ok((id, IdShape::PhoneLike)) => {
            state.metrics.lookalike();
            tracing::warn!(field = "consumerId", "identifier looks like a phone number");
            if policy == LookalikePolicy::Refuse {
                return Err(FieldError::value(
                    "consumerId",
                    "must not carry a phone number",
                ));
            }
            Ok(id)
        }
        Ok((id, _)) => Ok(id),
        Err(e) => {
            if e == IdError::Pan {
                state.metrics.pan_refused();
                tracing::warn!(field = "consumerId", "identifier refused: it is a PAN");
            }
            Err(id_error("consumerId", e))
        }
    }
}

/// Reads the trail headers (`x-correlation-id`, `x-user-id`).
///
/// # Errors
/// A format error of either header; a value error is kept in the [`Checked`].
pub fn trail_context(
    ctx: &RequestContext,
    headers: &HeaderMap,
) -> Result<Checked<TrailContext>, ApiError> {
    let correlation = correlation(ctx)?;
    let user_id = match headers.get("x-user-id") {
        None => Checked::ok(None),
        Some(v) => {
            let parsed = v
                .to_str()
                .map_err(|_| IdError::Format)
                .and_then(UserId::parse);
            check(parsed.map(Some).map_err(|e| id_error("x-user-id", e)))?
        }
    };
    Ok(correlation.and(user_id).map(|((), user_id)| TrailContext {
        correlation_id: ctx.valid_correlation(),
        user_id,
        aggregator_id: ctx.aggregator.get().cloned(),
    }))
}

/// Checks the `x-correlation-id` header, which the request context has already read.
///
/// # Errors
/// A format error; a value error is kept in the [`Checked`].
pub fn correlation(ctx: &RequestContext) -> Result<Checked<()>, ApiError> {
    match &ctx.correlation {
        Some(Err(e)) => Ok(check(Err(id_error("x-correlation-id", *e)))?),
        _ => Ok(Checked::ok(())),
    }
}

/// What every route naming a consumer in its path checks first: the issuer's settings, the
/// consumerId (a format error at once, a value error kept) and the trail headers.
pub struct Opening {
    pub settings: IssuerRecord,
    pub consumer: Checked<ConsumerId>,
    pub trail: Checked<TrailContext>,
}

/// Runs the opening checks of a consumer route.
///
/// # Errors
/// 401 for an issuer that is gone, or a format error of the consumerId or a trail header.
pub async fn open_consumer_route(
    state: &AppState,
    issuer: &IssuerId,
    raw_consumer: &str,
    ctx: &RequestContext,
    headers: &HeaderMap,
) -> Result<Opening, ApiError> {
    open_consumer_route_with(state, issuer, raw_consumer, || trail_context(ctx, headers)).await
}

/// [`open_consumer_route`] with the API version's own reading of the trail headers (v1 has
/// no `x-user-id`).
///
/// # Errors
/// As [`open_consumer_route`].
pub async fn open_consumer_route_with(
    state: &AppState,
    issuer: &IssuerId,
    raw_consumer: &str,
    read_trail: impl FnOnce() -> Result<Checked<TrailContext>, ApiError>,
) -> Result<Opening, ApiError> {
    let settings = state
        .issuer(issuer)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let consumer = check(consumer_id(state, raw_consumer, settings.lookalike_policy))?;
    let trail = read_trail()?;
    Ok(Opening {
        settings,
        consumer,
        trail,
    })
}
