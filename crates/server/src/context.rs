//! The outermost middleware: the request id, the request's span and log line, the counters
//! and the `x-request-id` header. What depends on the route group (the correlation id's
//! pattern, the body limit, the timeout, the error body) is the group's policy
//! ([`crate::policy`]).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use d1_domain::{CorrelationId, IdError};
use tracing::Instrument;

use crate::state::AppState;

/// The correlation header.
pub static CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");
/// The request id header we add to every response.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Per-request facts, available to handlers as an extension that the route group's policy
/// inserts.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    /// The `x-correlation-id` sent, parsed; `None` when absent.
    pub correlation: Option<Result<CorrelationId, IdError>>,
    /// The aggregator whose token the request came with, once the token is checked; shared
    /// by every copy of the context, so that the trail sees it whichever extractor ran first.
    pub aggregator: std::sync::Arc<std::sync::OnceLock<d1_domain::IssuerId>>,
}

impl RequestContext {
    /// The correlation id to record: the one sent, if valid.
    #[must_use]
    pub fn valid_correlation(&self) -> Option<CorrelationId> {
        self.correlation
            .as_ref()
            .and_then(|c| c.as_ref().ok())
            .cloned()
    }

    /// The correlation id this request answers with: the one sent, else the request id. It is
    /// passed on to the issuer backend by work the request starts.
    #[must_use]
    pub fn effective_correlation(&self) -> String {
        self.valid_correlation()
            .map_or_else(|| self.request_id.clone(), |c| c.as_str().to_owned())
    }
}

/// The id of one request, made by [`middleware`] for the response's `x-request-id`.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl RequestId {
    /// A new random id.
    #[must_use]
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }
}

impl Default for RequestId {
    fn default() -> Self {
        Self::new()
    }
}

/// Wraps every request. The route group's policy ([`crate::policy`]) reads the correlation
/// id, records it on the span and echoes it; a request no group answers (an unknown route)
/// echoes its request id.
pub async fn middleware(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let request_id = RequestId::new();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("-", MatchedPath::as_str)
        .to_owned();
    let span = tracing::info_span!("request", request_id = %request_id.0, correlation_id = tracing::field::Empty, method = %req.method(), route = %route);
    req.extensions_mut().insert(request_id.clone());
    let started = Instant::now();
    let mut response = next.run(req).instrument(span.clone()).await;
    let status = response.status();
    let headers = response.headers_mut();
    if !headers.contains_key(&CORRELATION_ID) {
        span.record("correlation_id", request_id.0.as_str());
        if let Ok(v) = HeaderValue::from_str(&request_id.0) {
            headers.insert(CORRELATION_ID.clone(), v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&request_id.0) {
        headers.insert(REQUEST_ID.clone(), v);
    }
    state.metrics.request(status.as_u16());
    state.metrics.answered_in(started.elapsed());
    span.in_scope(|| {
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(
            status = status.as_u16(),
            latency_ms = format_args!("{latency_ms:.2}"),
            "request"
        );
    });
    response
}
