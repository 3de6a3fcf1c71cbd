//! The policy of a route group: the error body it speaks, the `x-correlation-id` pattern it
//! reads, the largest body it takes and how long one of its requests may run.
//!
//! `app.rs` puts each group's policy on the group's own router as a layer, so a route gets its
//! policy from the group it is declared in and nothing here looks at the request's path.
//! Everything a request of the group can be answered with passes through [`Flavor::answer`]:
//! the handler's errors, the framework's rejections (unknown route under the group's prefix,
//! wrong method, body too large, unreadable path), a panic and the timeout.

use std::any::Any;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, Extensions, HeaderValue, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use d1_domain::{CorrelationId, IdError};
use tower_http::catch_panic::CatchPanicLayer;
use utoipa_axum::router::OpenApiRouter;

use crate::context::{RequestContext, RequestId, CORRELATION_ID};
use crate::error::{ApiError, Flavor};

/// Which pattern an `x-correlation-id` must follow (contract section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `^[A-Za-z0-9_-]{1,64}$`.
    V2,
    /// The v2 pattern with `.` and space: everything under `/banking/v1`.
    V1,
}

/// The policy of one route group.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// The error body of every answer but a success.
    pub flavor: Flavor,
    /// How `x-correlation-id` is read.
    pub dialect: Dialect,
    /// The largest body, in bytes; a larger one is 413, before the token is looked at.
    pub body_limit: usize,
    /// How long a request may run before it is answered 503 `TIMEOUT`.
    pub timeout: Duration,
}

impl Policy {
    /// Puts this policy on every route of `router`, and on its fallback if it has one.
    #[must_use]
    pub fn apply<S>(self, router: OpenApiRouter<S>) -> OpenApiRouter<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        router
            .layer(DefaultBodyLimit::max(self.body_limit))
            .layer(CatchPanicLayer::custom(panic_response))
            .layer(from_fn_with_state(self, middleware))
    }
}

/// The body limit of the group a request is routed to, for extractors that read the body.
#[must_use]
pub fn body_limit(extensions: &Extensions) -> Option<usize> {
    extensions.get::<Policy>().map(|p| p.body_limit)
}

fn parse_correlation(value: &HeaderValue, dialect: Dialect) -> Result<CorrelationId, IdError> {
    let text = value.to_str().map_err(|_| IdError::Format)?;
    match dialect {
        Dialect::V1 => CorrelationId::parse_v1(text),
        Dialect::V2 => CorrelationId::parse_v2(text),
    }
}

async fn middleware(State(policy): State<Policy>, mut req: Request, next: Next) -> Response {
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map_or_else(RequestId::new, Clone::clone);
    let correlation = req
        .headers()
        .get(&CORRELATION_ID)
        .map(|v| parse_correlation(v, policy.dialect));
    let ctx = RequestContext {
        request_id: request_id.0,
        correlation,
        aggregator: std::sync::Arc::default(),
    };
    let token_sent = req.headers().contains_key(header::AUTHORIZATION);
    let echoed = ctx.effective_correlation();
    tracing::Span::current().record("correlation_id", echoed.as_str());
    req.extensions_mut().insert(ctx);
    req.extensions_mut().insert(policy);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut response = if declared.is_some_and(|n| n > policy.body_limit as u64) {
        ApiError::payload_too_large(policy.body_limit).render(policy.flavor)
    } else {
        match tokio::time::timeout(policy.timeout, next.run(req)).await {
            Ok(response) => policy.flavor.answer(response, policy.body_limit),
            Err(_) => ApiError::timeout().render(policy.flavor),
        }
    };
    if let Ok(v) = HeaderValue::from_str(&echoed) {
        response.headers_mut().insert(CORRELATION_ID.clone(), v);
    }
    if response.status() == StatusCode::UNAUTHORIZED {
        // RFC 6750 §3; why the token was refused is in the log only (crate::auth::Refusal).
        let challenge = if token_sent {
            HeaderValue::from_static("Bearer error=\"invalid_token\"")
        } else {
            HeaderValue::from_static("Bearer")
        };
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, challenge);
    }
    response
}

#[allow(clippy::needless_pass_by_value)]
fn panic_response(_payload: Box<dyn Any + Send + 'static>) -> Response {
    ApiError::internal(&"a handler panicked").into_response()
}
