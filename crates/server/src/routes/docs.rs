//! `/openapi.json`, generated from the route and DTO annotations.

use std::sync::Arc;

use axum::routing::get;
use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The document's frame: its title and the bearer scheme. The paths come from the routers
/// (`app::api`), each from its handler's `#[utoipa::path]`.
#[derive(OpenApi)]
#[openapi(
    info(title = "d1-registry", description = "End-user registration, wire-compatible with the Thales D1 banking API."),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// The route serving `doc`, with the rules the annotations do not state
/// ([`super::docs_rules`]).
pub fn router(doc: utoipa::openapi::OpenApi) -> OpenApiRouter<AppState> {
    let doc = Arc::new(super::docs_rules::declared(&doc));
    OpenApiRouter::new().route(
        "/openapi.json",
        get(move || {
            let doc = Arc::clone(&doc);
            async move { Json(doc.as_ref().clone()) }
        }),
    )
}
