//! The router: the route groups, each under its policy (contract section 3: which error body,
//! which correlation-id pattern, which body limit), and the layers around them all.

use std::time::Duration;

use axum::middleware::from_fn_with_state;
use axum::routing::any;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::config::ServerConfig;
use crate::context;
use crate::error::{ApiError, Flavor};
use crate::policy::{Dialect, Policy};
use crate::routes;
use crate::state::AppState;

/// Builds the whole app on `state`.
pub fn router(state: AppState) -> Router {
    let server = &state.config.server;
    let (api, doc) = api(server).split_for_parts();
    let docs = policy(server, Flavor::V2, Dialect::V2, server.body_limit_bytes)
        .apply(routes::docs::router(doc));
    let mut app = api.merge(Router::from(docs));
    if state.config.portal.enabled {
        app = app.merge(crate::portal::router(&state));
    }
    app.fallback(|| async { ApiError::no_route() })
        .layer(CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(ApiError::internal(&"a layer panicked"))
        }))
        .layer(from_fn_with_state(state.clone(), context::middleware))
        .with_state(state)
}

/// Every route of the service but `/openapi.json`, in its group, with the document the routes
/// make. An unknown route answers 404 in the body of the group whose prefix it is under
/// (`/banking/v1`), else in the v2 body.
pub fn api(server: &ServerConfig) -> OpenApiRouter<AppState> {
    let general = server.body_limit_bytes;
    // Under /banking/v1, the section 7 routes speak the v1 body and the Click to Pay routes
    // (section 9) the v2 body; all of them read the v1 correlation-id pattern.
    let v1 = policy(server, Flavor::V1, Dialect::V1, general)
        .apply(routes::v1::router().fallback(|| async { ApiError::no_route() }))
        .merge(
            policy(
                server,
                Flavor::V1,
                Dialect::V1,
                server.batch_body_limit_bytes,
            )
            .apply(routes::v1::batch_router()),
        )
        .merge(
            policy(server, Flavor::V2, Dialect::V1, general).apply(routes::clicktopay::router()),
        );
    let v2 = policy(server, Flavor::V2, Dialect::V2, general)
        .apply(routes::consumers::router().merge(routes::cards::router()));
    // `nest` leaves the bare prefix with a trailing slash to the service's fallback, which
    // would answer it in the v2 body.
    let v1_root = policy(server, Flavor::V1, Dialect::V1, general)
        .apply(OpenApiRouter::new().route("/banking/v1/", any(|| async { ApiError::no_route() })));
    OpenApiRouter::with_openapi(routes::docs::ApiDoc::openapi())
        .merge(v1_root)
        .nest("/banking/v1", v1)
        .nest("/banking/v2", v2)
        .merge(policy(server, Flavor::OAuth, Dialect::V2, general).apply(routes::token::router()))
        .merge(policy(server, Flavor::V2, Dialect::V2, general).apply(routes::health::router()))
}

fn policy(server: &ServerConfig, flavor: Flavor, dialect: Dialect, body_limit: usize) -> Policy {
    Policy {
        flavor,
        dialect,
        body_limit,
        timeout: Duration::from_millis(server.request_timeout_ms),
    }
}
