//! The token endpoint's errors, in the RFC 6749 §5.2 shape it keeps on every refusal.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// The RFC 6749 §5.2 error body of the token endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthErrorBody {
    #[schema(example = "invalid_grant")]
    pub error: &'static str,
    pub error_description: String,
}

/// A refusal of the token endpoint, always in the RFC 6749 shape.
#[derive(Debug)]
pub struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    retry_after: Option<u64>,
}

impl OAuthError {
    /// `invalid_request`: a parameter missing or unparseable.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_request",
            description: description.into(),
            retry_after: None,
        }
    }

    /// `unsupported_grant_type`.
    pub fn unsupported_grant_type() -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: "unsupported_grant_type",
            description: "grant_type must be urn:ietf:params:oauth:grant-type:jwt-bearer".into(),
            retry_after: None,
        }
    }

    /// `invalid_grant`: any defect of the assertion.
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_grant",
            description: description.into(),
            retry_after: None,
        }
    }

    /// 429 `slow_down` with `Retry-After`: a rate limit of the token endpoint is reached.
    pub fn slow_down(retry_after: u64) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            error: "slow_down",
            description: format!("too many token requests; try again in {retry_after} s"),
            retry_after: Some(retry_after),
        }
    }

    /// A non-400 status in the same shape (404, 405, 413, 415, 500).
    pub fn with_status(status: StatusCode, description: impl Into<String>) -> Self {
        let error = if status.is_server_error() {
            "server_error"
        } else {
            "invalid_request"
        };
        Self {
            status,
            error,
            description: description.into(),
            retry_after: None,
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(OAuthErrorBody {
                error: self.error,
                error_description: self.description,
            }),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
