//! Sessions: the random session id in the `d1_portal` cookie (only its SHA-256 is stored),
//! the CSRF tokens, and [`Operator`], the extractor that turns a request's cookie into the
//! signed-in operator or sends the browser to the sign-in page.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use d1_store::{OperatorIssuers, OperatorRole};

use super::layout::{Chrome, SignedIn};
use crate::listen::Peer;
use crate::state::AppState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "d1_portal";
/// The sign-in form's double-submit cookie: the sign-in form has no session to hold its
/// CSRF token, so the token rides in this cookie and in the form, and both must match.
pub const SIGN_IN_COOKIE: &str = "d1_portal_csrf";

/// The signed-in operator of a request, its session checked against the store.
#[derive(Debug, Clone)]
pub struct Operator {
    pub username: String,
    pub role: OperatorRole,
    pub issuers: OperatorIssuers,
    /// The session's CSRF token, which every form carries.
    pub csrf: String,
    /// The SHA-256 of the session id, the session's key in the store.
    pub id_hash: Vec<u8>,
}

impl Operator {
    /// The header bar for this operator.
    #[must_use]
    pub fn chrome(&self, state: &AppState) -> Chrome {
        Chrome {
            base: state.config.portal.base(),
            operator: Some(SignedIn {
                username: self.username.clone(),
                role: self.role.as_str(),
                csrf: self.csrf.clone(),
                admin: self.role >= OperatorRole::Admin,
            }),
        }
    }

    /// Whether `sent` is this session's CSRF token, compared in constant time.
    #[must_use]
    pub fn csrf_matches(&self, sent: Option<&str>) -> bool {
        sent.is_some_and(|s| same(s, &self.csrf))
    }
}

/// Whether two tokens are equal, in time that does not depend on where they differ.
#[must_use]
pub fn same(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

/// A new random token (32 bytes from the OS, base64url): a session id or a CSRF token.
#[must_use]
pub fn new_token() -> String {
    crate::operators::random_token()
}

/// The SHA-256 of a session id as sent in its cookie: what the store keys sessions by.
#[must_use]
pub fn id_hash(token: &str) -> Vec<u8> {
    crate::operators::session_hash(token)
}

/// A cookie's value from the request's `Cookie` headers.
#[must_use]
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value for the portal: `HttpOnly`, `SameSite=Strict`, scoped to the
/// portal's path, `Secure` over TLS; an empty value with `Max-Age=0` clears it.
#[must_use]
pub fn set_cookie(base: &str, name: &str, value: &str, secure: bool) -> HeaderValue {
    let mut text = format!("{name}={value}; Path={base}; HttpOnly; SameSite=Strict");
    if value.is_empty() {
        text.push_str("; Max-Age=0");
    }
    if secure {
        text.push_str("; Secure");
    }
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Whether the request came over TLS this listener terminated: the `Secure` cookie flag.
#[derive(Debug, Clone, Copy)]
pub struct Tls(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for Tls {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.extensions.get::<Peer>().is_some_and(|p| p.tls)))
    }
}

/// A 303 to `to`.
#[must_use]
pub fn see_other(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// Whether a session id from a cookie has the shape this portal gives: 32 bytes, base64url.
fn well_formed(token: &str) -> bool {
    URL_SAFE_NO_PAD
        .decode(token)
        .is_ok_and(|bytes| bytes.len() == 32)
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let base = state.config.portal.base();
        let sign_in = || see_other(&format!("{base}/sign-in"));
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE).filter(|t| well_formed(t)) else {
            return Err(sign_in());
        };
        let hash = id_hash(token);
        let portal = &state.config.portal;
        let session = state
            .store
            .session(&hash, portal.idle_ms(), portal.absolute_ms())
            .await
            .map_err(|e| super::failed(state, &e))?;
        let Some(session) = session else {
            return Err(sign_in());
        };
        let record = state
            .store
            .operator(&session.username)
            .await
            .map_err(|e| super::failed(state, &e))?;
        let Some(record) = record.filter(|r| !r.disabled) else {
            let _ = state.store.delete_session(&hash).await;
            return Err(sign_in());
        };
        let path = parts.uri.path();
        let exempt = path.ends_with("/password") || path.ends_with("/sign-out");
        if record.must_change_password && !exempt {
            return Err(see_other(&format!("{base}/password")));
        }
        Ok(Self {
            username: record.username,
            role: record.role,
            issuers: record.issuers,
            csrf: session.csrf_token,
            id_hash: hash,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_name_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; d1_portal=xyz"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&h, "d1_portal"), Some("xyz"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "d1"), None);
    }

    #[test]
    fn the_session_cookie_is_http_only_strict_and_secure_over_tls() {
        let plain = set_cookie("/portal", SESSION_COOKIE, "v", false);
        assert_eq!(
            plain,
            "d1_portal=v; Path=/portal; HttpOnly; SameSite=Strict"
        );
        let tls = set_cookie("/portal", SESSION_COOKIE, "v", true);
        assert!(tls.to_str().unwrap().ends_with("; Secure"));
        let cleared = set_cookie("/portal", SESSION_COOKIE, "", false);
        assert!(cleared.to_str().unwrap().contains("Max-Age=0"));
    }

    #[test]
    fn tokens_are_32_random_bytes_and_compared_whole() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(well_formed(&a));
        assert!(!well_formed("short"));
        assert!(same(&a, &a.clone()));
        assert!(!same(&a, &b));
        assert!(!same(&a, &a[..10]));
        assert_eq!(id_hash(&a).len(), 32);
    }
}
