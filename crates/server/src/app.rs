//! The router: every route, the fallbacks in D1's error format, and the layers around them.

use std::any::Any;

use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;

use crate::context;
use crate::error::ApiError;
use crate::routes;
use crate::state::AppState;

/// Builds the whole app on `state`.
pub fn router(state: AppState) -> Router {
    let limit = state
        .config
        .server
        .body_limit_bytes
        .max(state.config.server.batch_body_limit_bytes);
    Router::new()
        .merge(routes::token::router())
        .merge(routes::consumers::router())
        .merge(routes::cards::router())
        .merge(routes::v1::router())
        .merge(routes::clicktopay::router())
        .merge(routes::health::router())
        .merge(routes::docs::router())
        .fallback(|| async { ApiError::no_route() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(DefaultBodyLimit::max(limit))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(from_fn_with_state(state.clone(), context::middleware))
        .with_state(state)
}

#[allow(clippy::needless_pass_by_value)]
fn panic_response(_payload: Box<dyn Any + Send + 'static>) -> Response {
    ApiError::internal(&"a handler panicked").into_response()
}
