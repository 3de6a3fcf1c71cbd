//! The layers around every portal response: the security headers (contract section 11), the
//! request timeout, the body limit and a panic turned into the portal's own error page.

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;

use crate::state::AppState;

/// The portal's Content-Security-Policy: no script at all, styles from the stylesheet only.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The largest form the portal reads; its forms are a few short fields.
pub const BODY_LIMIT: usize = 16 * 1024;

/// Every header the portal puts on each response, pages, redirects and the stylesheet alike.
pub const HEADERS: [(HeaderName, &str); 5] = [
    (header::CONTENT_SECURITY_POLICY, CSP),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::CACHE_CONTROL, "no-store"),
];

/// Puts the layers on the portal's router.
pub fn apply(router: Router<AppState>, timeout: Duration, base: &str) -> Router<AppState> {
    let (panic_base, slow_base) = (base.to_owned(), base.to_owned());
    router
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(CatchPanicLayer::custom(move |_| {
            super::layout::internal_error(&panic_base).into_response()
        }))
        .layer(axum::middleware::from_fn(
            move |req: Request, next: Next| {
                let base = slow_base.clone();
                async move { secure(req, next, timeout, &base).await }
            },
        ))
}

async fn secure(req: Request, next: Next, timeout: Duration, base: &str) -> Response {
    let mut response = match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => super::layout::unavailable(base).into_response(),
    };
    let headers = response.headers_mut();
    for (name, value) in &HEADERS {
        headers.insert(name.clone(), HeaderValue::from_static(value));
    }
    response
}
