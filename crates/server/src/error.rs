//! `ApiError`: every refusal the API gives, and the error bodies it is rendered in.
//!
//! A handler never chooses the body: an `ApiError` renders as the v2 body and keeps what it
//! said on the response, and the route group's policy ([`crate::policy`]) renders it again in
//! the group's [`Flavor`]. v2 routes answer `{"errorCode", "error"}`; v1 routes
//! `{"error": "<CODE>: <text>"}`; the token endpoint the RFC 6749 body. 401 is always
//! `{"error"}` with a text starting `AUTHORIZER_UNAUTHORIZED` and never saying why. Internal
//! errors become a 500 with a generic text and are logged once, here, inside the request's
//! span.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use d1_domain::{FieldError, FieldErrorKind};
use serde::Serialize;
use utoipa::ToSchema;

mod oauth;
pub use oauth::{OAuthError, OAuthErrorBody};

/// The v2 error body.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// A D1 error code such as `FIELD_INVALID_FORMAT`.
    #[schema(example = "FIELD_INVALID_FORMAT")]
    pub error_code: &'static str,
    /// A text for troubleshooting; for 400s it names the first field in error.
    #[schema(example = "personalInformation.firstName: must be 1 to 128 letters")]
    pub error: String,
}

/// The 401 body and the v1 error body: `error` only.
#[derive(Debug, Serialize, ToSchema)]
pub struct BareErrorBody {
    #[schema(example = "AUTHORIZER_UNAUTHORIZED")]
    pub error: String,
}

/// Which error body a route group speaks (contract section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `{"errorCode", "error"}`: the v2 routes, Click to Pay, the operational routes.
    V2,
    /// `{"error": "<CODE>: <text>"}`: the v1 routes of contract section 7.
    V1,
    /// `{"error", "error_description"}` (RFC 6749 §5.2): the token endpoint.
    OAuth,
}

/// What an [`ApiError`] said, kept on its response so that the group's policy can render it
/// in the group's body.
#[derive(Debug, Clone)]
struct Said {
    code: &'static str,
    message: String,
}

/// A refusal of the API.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 `FIELD_INVALID_FORMAT` naming `field`.
    pub fn format(field: &str, detail: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "FIELD_INVALID_FORMAT",
            format!("{field}: {detail}"),
        )
    }

    /// 400 `FIELD_INVALID_VALUE` naming `field`.
    pub fn value(field: &str, detail: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "FIELD_INVALID_VALUE",
            format!("{field}: {detail}"),
        )
    }

    /// 401, with nothing said about why.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "AUTHORIZER_UNAUTHORIZED",
            "AUTHORIZER_UNAUTHORIZED",
        )
    }

    /// 404 `CONSUMER_NOT_FOUND`.
    pub fn consumer_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "CONSUMER_NOT_FOUND",
            "consumer not found",
        )
    }

    /// 404 `CARD_NOT_FOUND`, in the text D1 publishes for it.
    pub fn card_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "CARD_NOT_FOUND", "Card not found.")
    }

    /// 404 `OPERATION_NOT_FOUND`.
    pub fn operation_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "OPERATION_NOT_FOUND",
            "operation not found",
        )
    }

    /// 409 `CARD_CONFLICT`.
    pub fn card_conflict(why: &str) -> Self {
        Self::new(StatusCode::CONFLICT, "CARD_CONFLICT", why.to_owned())
    }

    /// 403 `INVALID_STATE`.
    pub fn invalid_state(what: &str) -> Self {
        Self::new(StatusCode::FORBIDDEN, "INVALID_STATE", what.to_owned())
    }

    /// 403 `INVALID_STATE` for a DELETED consumer, in the text D1 publishes for it.
    pub fn consumer_deleted() -> Self {
        Self::invalid_state("check the state of the end user (consumer) is ACTIVE")
    }

    /// 404 `NOT_FOUND`: no such route.
    pub fn no_route() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route")
    }

    /// 405 `METHOD_NOT_ALLOWED`.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "method not allowed on this route",
        )
    }

    /// 413 `PAYLOAD_TOO_LARGE`.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("the body exceeds {limit} bytes"),
        )
    }

    /// 415 `UNSUPPORTED_MEDIA_TYPE`.
    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "Content-Type must be application/json",
        )
    }

    /// 503 `TIMEOUT`: the request ran past the server's limit.
    pub fn timeout() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "TIMEOUT",
            "the request took too long",
        )
    }

    /// 503 `OVERLOADED` with `Retry-After`: a queue of this node is full; nothing was written.
    pub fn overloaded() -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "OVERLOADED",
                "the service is overloaded; try again shortly",
            )
        }
    }

    /// 429 `RATE_LIMITED` with `Retry-After`: the issuer's rate limit is reached.
    pub fn rate_limited(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                "too many requests; try again after Retry-After seconds",
            )
        }
    }

    /// 500 `INTERNAL_ERROR`. The cause is logged here and never sent.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "internal error",
        )
    }

    /// The refusal that stands for a framework rejection, which has no D1 body: an unknown
    /// route, a wrong method, a body too large or of another media type, or a path, query or
    /// body the framework could not read. The framework's own text is never passed on: it may
    /// quote what was sent.
    #[must_use]
    pub fn rejection(status: StatusCode, body_limit: usize) -> Self {
        match status {
            StatusCode::NOT_FOUND => Self::no_route(),
            StatusCode::METHOD_NOT_ALLOWED => Self::method_not_allowed(),
            StatusCode::PAYLOAD_TOO_LARGE => Self::payload_too_large(body_limit),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::unsupported_media_type(),
            s if s.is_server_error() => {
                Self::internal(&format_args!("a rejection with status {s}"))
            }
            _ => Self::format("request", "could not be read"),
        }
    }

    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The D1 error code, such as `INVALID_STATE`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The error's text, as the v2 body's `error` carries it (the portal shows it).
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The response in `flavor`'s body.
    #[must_use]
    pub fn render(self, flavor: Flavor) -> Response {
        let said = Said {
            code: self.code,
            message: self.message.clone(),
        };
        let mut response = match flavor {
            _ if self.status == StatusCode::UNAUTHORIZED => (
                self.status,
                Json(BareErrorBody {
                    error: self.message,
                }),
            )
                .into_response(),
            Flavor::V2 => (
                self.status,
                Json(ErrorBody {
                    error_code: self.code,
                    error: self.message,
                }),
            )
                .into_response(),
            Flavor::V1 => {
                let text = if self.message.starts_with(self.code) {
                    self.message
                } else {
                    format!("{}: {}", self.code, self.message)
                };
                (self.status, Json(BareErrorBody { error: text })).into_response()
            }
            Flavor::OAuth => OAuthError::with_status(self.status, self.message).into_response(),
        };
        if let Some(seconds) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response.extensions_mut().insert(said);
        response
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        match e.kind {
            FieldErrorKind::Format => Self::format(&e.field, e.detail),
            FieldErrorKind::Value => Self::value(&e.field, e.detail),
        }
    }
}

impl From<d1_store::StoreError> for ApiError {
    fn from(e: d1_store::StoreError) -> Self {
        match e {
            d1_store::StoreError::Overloaded => Self::overloaded(),
            // Not a 500, which promises "not written": the contract's answer for an outcome
            // that is not known, which the caller may repeat.
            d1_store::StoreError::OutcomeUnknown => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "TIMEOUT",
                "the outcome of the write is unknown",
            ),
            // `Corrupt` names its table and column, never the value: one log line, a 500.
            e => Self::internal(&e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.render(Flavor::V2)
    }
}

impl Flavor {
    /// `response` as this flavour answers it. A D1 error is rendered again in this body; a
    /// framework rejection (an error status without a JSON body) becomes its D1 error
    /// ([`ApiError::rejection`]); anything else passes. Headers such as `Allow` and
    /// `Retry-After` are kept.
    #[must_use]
    pub fn answer(self, response: Response, body_limit: usize) -> Response {
        let status = response.status();
        let error = if let Some(said) = response.extensions().get::<Said>() {
            if self == Self::V2 {
                return response;
            }
            ApiError::new(status, said.code, said.message.clone())
        } else if (status.is_client_error() || status.is_server_error())
            && !has_json_body(&response)
        {
            ApiError::rejection(status, body_limit)
        } else {
            return response;
        };
        let (parts, _) = response.into_parts();
        let mut rendered = error.render(self);
        let headers = rendered.headers_mut();
        let own: Vec<_> = headers.keys().cloned().collect();
        for (name, value) in &parts.headers {
            if !own.contains(name) && name != header::CONTENT_LENGTH {
                headers.append(name.clone(), value.clone());
            }
        }
        rendered
    }
}

fn has_json_body(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("json"))
}

#[cfg(test)]
mod store_error_tests;
