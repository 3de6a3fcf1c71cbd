//! The outermost middleware: request id, correlation id, the request's span and log line,
//! the early body-size check, the server-side timeout and the response headers.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use d1_domain::{CorrelationId, IdError};
use tracing::Instrument;

use crate::error::{ApiError, OAuthError};
use crate::routes::token::TOKEN_PATH;
use crate::state::AppState;

/// The correlation header.
pub static CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");
/// The request id header we add to every response.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Per-request facts, available to handlers as an extension.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    /// The `x-correlation-id` sent, parsed; `None` when absent.
    pub correlation: Option<Result<CorrelationId, IdError>>,
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

fn parse_correlation(value: &HeaderValue, v1: bool) -> Result<CorrelationId, IdError> {
    let text = value.to_str().map_err(|_| IdError::Format)?;
    if v1 {
        CorrelationId::parse_v1(text)
    } else {
        CorrelationId::parse_v2(text)
    }
}

/// Wraps every request.
pub async fn middleware(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let path = req.uri().path();
    let is_token = path == TOKEN_PATH;
    let v1 = path.starts_with("/banking/v1/");
    let v1_body = v1 && !is_click_to_pay(path);
    let correlation = req
        .headers()
        .get(&CORRELATION_ID)
        .map(|v| parse_correlation(v, v1));
    let echoed = match &correlation {
        Some(Ok(c)) => c.as_str().to_owned(),
        _ => request_id.clone(),
    };
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("-", MatchedPath::as_str)
        .to_owned();
    let span = tracing::info_span!("request", request_id = %request_id, correlation_id = %echoed, method = %req.method(), route = %route);
    req.extensions_mut().insert(RequestContext {
        request_id: request_id.clone(),
        correlation,
    });

    let limit = body_limit(&state.config.server, req.uri().path());
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let started = Instant::now();
    let mut response = if declared.is_some_and(|n| n > limit as u64) {
        too_large(is_token, v1_body, limit)
    } else {
        let budget = Duration::from_millis(state.config.server.request_timeout_ms);
        match tokio::time::timeout(budget, next.run(req).instrument(span.clone())).await {
            Ok(response) => response,
            Err(_) => ApiError::timeout().into_response(),
        }
    };
    let status = response.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE
        && response.headers().get(header::CONTENT_TYPE).is_none()
    {
        response = too_large(is_token, v1_body, limit);
    }
    state.metrics.request(status.as_u16());
    span.in_scope(|| {
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(
            status = status.as_u16(),
            latency_ms = format_args!("{latency_ms:.2}"),
            "request"
        );
    });
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&echoed) {
        headers.insert(CORRELATION_ID.clone(), v);
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert(REQUEST_ID.clone(), v);
    }
    response
}

/// Whether a `/banking/v1` path is one of the Click to Pay routes (contract section 9), which
/// answer in the v2 error body.
fn is_click_to_pay(path: &str) -> bool {
    let segments: Vec<&str> = path.split('/').collect();
    path.ends_with("/operations:clickToPayEnrolment") || segments.get(5) == Some(&"operations")
}

fn too_large(is_token: bool, v1: bool, limit: usize) -> Response {
    if is_token {
        OAuthError::with_status(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body exceeds {limit} bytes"),
        )
        .into_response()
    } else if v1 {
        ApiError::payload_too_large(limit).v1().into_response()
    } else {
        ApiError::payload_too_large(limit).into_response()
    }
}

/// The body limit of a path: the v1 card batch may carry up to 100 encrypted cards, more than
/// the general limit holds.
pub fn body_limit(config: &crate::config::ServerConfig, path: &str) -> usize {
    if path.starts_with("/banking/v1/") && path.ends_with("/cards") {
        config.batch_body_limit_bytes
    } else {
        config.body_limit_bytes
    }
}
