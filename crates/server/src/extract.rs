//! Extractors that keep D1's order of checks: the caller's token and issuer first (401),
//! then the media type (415) and size (413) of the body; formats and values are the
//! handlers' next steps, the body's through [`JsonBody::read`].

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use d1_domain::{FieldError, IssuerId};

use crate::auth::Refusal;
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::listen::peer::{admits, Peer};
use crate::state::AppState;

/// The issuer of the path, proven by the caller's access token, within the issuer's rate
/// limit. A token for another issuer (or an aggregator's token for an issuer it does not
/// sign for) gets 401, which says nothing about the resource; over the limit, 429. An
/// aggregator's token is noted on the request context, for the trail.
#[derive(Debug, Clone)]
pub struct Caller(pub IssuerId);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let authorization = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let principal = state.auth.authenticate(authorization).await?;
        // Read from the raw path: a malformed consumerId elsewhere in it is a format error for
        // the handler, not a reason to refuse the caller. An issuerId is alphanumeric, so its
        // raw form is its value.
        let mut segments = parts.uri.path().split('/');
        let path_issuer = segments
            .by_ref()
            .find(|s| *s == "issuers")
            .and_then(|_| segments.next());
        let issuer = match path_issuer.map(IssuerId::parse) {
            Some(Ok(issuer)) if principal.acts_for(issuer.as_str()) => issuer,
            _ => return Err(Refusal::WrongIssuer.log()),
        };
        // An issuer bound to client certificates acts only over one of them (contract
        // section 4). The issuer's settings are cached: no database read per request.
        let cert = parts
            .extensions
            .get::<Peer>()
            .and_then(|p| p.cert.as_deref());
        if let Some(record) = state.issuer(&issuer).await? {
            let bound = &record.client_certs;
            if !admits(cert, &bound.subjects, &bound.sans) {
                return Err(Refusal::WrongCertificate.log());
            }
        }
        state
            .limits
            .issuer_request(issuer.as_str())
            .map_err(ApiError::rate_limited)?;
        if let (Some(aggregator), Some(ctx)) = (
            principal.aggregator(),
            parts.extensions.get::<RequestContext>(),
        ) {
            let _ = ctx.aggregator.set(aggregator.clone());
        }
        Ok(Self(issuer))
    }
}

/// A request body that is empty or declared `application/json`, read within the size limit.
#[derive(Debug)]
pub struct JsonBody(pub Bytes);

impl JsonBody {
    /// Whether no body was sent. A body of whitespace alone is a body, and not JSON.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Reads the body as its route's serde type, D1's way (see [`crate::wire::json`]).
    ///
    /// # Errors
    /// `FIELD_INVALID_FORMAT` naming the first field in error.
    pub fn read<T: serde::de::DeserializeOwned>(&self) -> Result<T, FieldError> {
        crate::wire::json::read(&self.0)
    }
}

/// Whether a `Content-Type` value is JSON (`application/json`, any parameters, or `+json`).
pub fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("").to_owned());
        let limit = crate::policy::body_limit(req.extensions())
            .unwrap_or(state.config.server.body_limit_bytes);
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::payload_too_large(limit)
            } else {
                ApiError::format("body", "could not be read")
            }
        })?;
        let body = Self(bytes);
        // An empty body needs no Content-Type.
        if !body.is_empty() && !content_type.as_deref().is_some_and(is_json) {
            return Err(ApiError::unsupported_media_type());
        }
        Ok(body)
    }
}
