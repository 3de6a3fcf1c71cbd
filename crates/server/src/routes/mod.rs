//! The HTTP routes, one module per area. Each area's `router()` declares its routes once,
//! with `routes!(handler)`: the route and its entry in `/openapi.json` both come from the
//! handler's `#[utoipa::path]`. Which policy (error body, body limit) a route runs under is
//! the group `app.rs` puts it in.

pub mod cards;
pub mod clicktopay;
pub mod consumers;
pub mod docs;
pub mod health;
pub mod token;
pub mod v1;

use axum::extract::rejection::PathRejection;
use axum::extract::Path;
use axum::http::HeaderMap;
use d1_domain::guard::IdShape;
use d1_domain::{
    ConsumerId, FieldError, FieldErrorKind, IdError, IssuerId, LookalikePolicy, UserId,
};
use d1_store::{IssuerRecord, TrailContext};
use serde::Deserialize;
use utoipa::openapi::path::PathItem;
use utoipa_axum::router::UtoipaMethodRouter;

use crate::context::RequestContext;
use crate::error::ApiError;
use crate::state::AppState;

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

/// Runs a request's checks in D1's order: a format error answers at once, while the first
/// value error waits until every format check has passed.
#[derive(Default)]
pub struct Checks {
    deferred: Option<FieldError>,
}

impl Checks {
    /// Takes one check's result: the value, or `None` with a value error kept for later.
    ///
    /// # Errors
    /// A format error, at once.
    pub fn take<T>(&mut self, result: Result<T, FieldError>) -> Result<Option<T>, ApiError> {
        match result {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind == FieldErrorKind::Format => Err(e.into()),
            Err(e) => {
                self.deferred.get_or_insert(e);
                Ok(None)
            }
        }
    }

    /// Records a value error found after the format checks.
    pub fn value(&mut self, error: FieldError) {
        self.deferred.get_or_insert(error);
    }

    /// Ends the format phase.
    ///
    /// # Errors
    /// The first value error recorded.
    pub fn finish(self) -> Result<(), ApiError> {
        self.deferred.map_or(Ok(()), |e| Err(e.into()))
    }
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

/// Maps an identifier refusal to its field error.
pub fn id_error(field: &str, e: IdError) -> FieldError {
    match e {
        IdError::Format => FieldError::format(field, "does not match the identifier pattern"),
        IdError::Pan => FieldError::value(field, "must not carry a card number"),
    }
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

/// Reads the trail headers (`x-correlation-id`, `x-user-id`) into checks.
///
/// # Errors
/// A format error of either header.
pub fn trail_context(
    checks: &mut Checks,
    ctx: &RequestContext,
    headers: &HeaderMap,
) -> Result<TrailContext, ApiError> {
    if let Some(Err(e)) = &ctx.correlation {
        checks.take::<()>(Err(id_error("x-correlation-id", *e)))?;
    }
    let user_id = match headers.get("x-user-id") {
        None => None,
        Some(v) => {
            let parsed = v
                .to_str()
                .map_err(|_| IdError::Format)
                .and_then(UserId::parse);
            checks.take(parsed.map_err(|e| id_error("x-user-id", e)))?
        }
    };
    Ok(TrailContext {
        correlation_id: ctx.valid_correlation(),
        user_id,
    })
}

/// What every route naming a consumer in its path checks first: the issuer's settings, the
/// consumerId (a format error at once, a value error kept in `checks`) and the trail headers.
pub struct Opening {
    pub settings: IssuerRecord,
    pub checks: Checks,
    pub consumer: Option<ConsumerId>,
    pub trail: TrailContext,
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
    open_consumer_route_with(state, issuer, raw_consumer, |checks| {
        trail_context(checks, ctx, headers)
    })
    .await
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
    read_trail: impl FnOnce(&mut Checks) -> Result<TrailContext, ApiError>,
) -> Result<Opening, ApiError> {
    let settings = state
        .issuer(issuer)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let mut checks = Checks::default();
    let consumer = checks.take(consumer_id(state, raw_consumer, settings.lookalike_policy))?;
    let trail = read_trail(&mut checks)?;
    Ok(Opening {
        settings,
        checks,
        consumer,
        trail,
    })
}
