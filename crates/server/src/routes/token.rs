//! `POST /authz/v1/oauth2/token`: an RFC 7523 assertion in, an access token out. Errors are
//! always in the RFC 6749 §5.2 shape on this endpoint.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::TokenResponse;
use crate::error::{OAuthError, OAuthErrorBody};
use crate::extract::is_json;
use crate::listen::Peer;
use crate::state::AppState;

/// The token endpoint's path.
pub const TOKEN_PATH: &str = "/authz/v1/oauth2/token";
/// The only grant type accepted.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The token route. Another method, and any other path under `/authz`, is answered in the
/// RFC 6749 shape too (405 with `Allow: POST`, 404).
pub fn router() -> OpenApiRouter<AppState> {
    let (schemas, paths, method_router) = routes!(token);
    let method_router = method_router.fallback(|| async {
        let mut response =
            OAuthError::with_status(StatusCode::METHOD_NOT_ALLOWED, "use POST").into_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        response
    });
    OpenApiRouter::new()
        .routes((schemas, paths, method_router))
        .route(
            "/authz/{*rest}",
            axum::routing::any(|| async {
                OAuthError::with_status(StatusCode::NOT_FOUND, "no such endpoint")
            }),
        )
}

/// The form of the token request (also accepted as a JSON object).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TokenRequest {
    #[schema(example = "urn:ietf:params:oauth:grant-type:jwt-bearer")]
    pub grant_type: String,
    /// An ES256 JWT: header `kid`; claims `iss` = `sub` = the issuerId, `exp` at most 15 minutes ahead.
    pub assertion: String,
}

/// The request's parameters, each given once (RFC 6749 §3.2: parameters MUST NOT be
/// included more than once), as a form or a JSON object of strings.
fn params(headers: &HeaderMap, body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let pairs = if essence == "application/x-www-form-urlencoded" {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
            .map_err(|_| OAuthError::invalid_request("the form body cannot be parsed"))?
    } else if is_json(content_type) {
        let JsonPairs(pairs) = serde_json::from_slice(body)
            .map_err(|_| OAuthError::invalid_request("the JSON body cannot be parsed"))?;
        pairs
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => Ok((k, s)),
                _ => Err(OAuthError::invalid_request(format!(
                    "{} must be a string",
                    parameter_name(&k)
                ))),
            })
            .collect::<Result<_, _>>()?
    } else {
        return Err(OAuthError::with_status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/x-www-form-urlencoded or application/json",
        ));
    };
    let mut params = HashMap::with_capacity(pairs.len());
    for (k, v) in pairs {
        if params.contains_key(&k) {
            return Err(OAuthError::invalid_request(format!(
                "{} is given more than once",
                parameter_name(&k)
            )));
        }
        params.insert(k, v);
    }
    Ok(params)
}

/// A JSON object's members in order, a key given twice kept twice (a `Value` keeps the last).
struct JsonPairs(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for JsonPairs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = JsonPairs;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<JsonPairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry()? {
                    pairs.push(pair);
                }
                Ok(JsonPairs(pairs))
            }
        }
        d.deserialize_map(Members)
    }
}

/// Exchange an assertion for an access token.
#[utoipa::path(post, path = TOKEN_PATH, tag = "authorization",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = TokenResponse), (status = 400, body = OAuthErrorBody),
              (status = 413, body = OAuthErrorBody), (status = 415, body = OAuthErrorBody),
              (status = 429, body = OAuthErrorBody, headers(("Retry-After" = u64))), (status = 500, body = OAuthErrorBody)))]
pub async fn token(
    State(state): State<AppState>,
    peer: Option<Extension<Peer>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let body = body.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                OAuthError::with_status(StatusCode::PAYLOAD_TOO_LARGE, "the body is too large")
            } else {
                OAuthError::invalid_request("the body could not be read")
            }
        })?;
        if body.len() > state.config.server.body_limit_bytes {
            return Err(OAuthError::with_status(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the body is too large",
            ));
        }
        if let Some(Extension(peer)) = &peer {
            state
                .limits
                .token_from(peer.addr.ip())
                .map_err(OAuthError::slow_down)?;
        }
        let params = params(&headers, &body)?;
        let grant_type = params
            .get("grant_type")
            .ok_or_else(|| OAuthError::invalid_request("grant_type is missing"))?;
        if grant_type != JWT_BEARER {
            return Err(OAuthError::unsupported_grant_type());
        }
        let assertion = params
            .get("assertion")
            .filter(|a| !a.is_empty())
            .ok_or_else(|| OAuthError::invalid_request("assertion is missing"))?;
        let cert = peer.as_ref().and_then(|p| p.cert.as_deref());
        state.auth.exchange(assertion, cert, &state.limits).await
    }
    .await;
    match result {
        Ok(token) => {
            let mut response = Json(token).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => e.into_response(),
    }
}

/// A parameter's name as an error text may carry it: the client's own key only when it looks
/// like a name (it may be anything, a PAN included).
fn parameter_name(key: &str) -> &str {
    if crate::wire::json::printable_key(key) {
        key
    } else {
        "a parameter"
    }
}
