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
}

impl OAuthError {
    /// `invalid_request`: a parameter missing or unparseable.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_request",
            description: description.into(),
        }
    }

    /// `unsupported_grant_type`.
    pub fn unsupported_grant_type() -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: "unsupported_grant_type",
            description: "grant_type must be urn:ietf:params:oauth:grant-type:jwt-bearer".into(),
        }
    }

    /// `invalid_grant`: any defect of the assertion.
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_grant",
            description: description.into(),
        }
    }

    /// A non-400 status in the same shape (413, 415, 500).
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
        response
    }
}
