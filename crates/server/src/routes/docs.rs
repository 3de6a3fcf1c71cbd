//! `/openapi.json`, generated from the route and DTO annotations.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

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

/// The OpenAPI document of the service.
#[derive(OpenApi)]
#[openapi(
    info(title = "d1-registry", description = "End-user registration, wire-compatible with the Thales D1 banking API."),
    paths(
        super::token::token,
        super::consumers::register,
        super::consumers::update,
        super::consumers::delete,
        super::consumers::get_consumer,
        super::consumers::operations,
        super::cards::register_card,
        super::cards::create_card,
        super::cards::get_card,
        super::cards::consumer_cards,
        super::v1::register,
        super::v1::register_with_cards,
        super::v1::delete,
        super::v1::get_card,
        super::clicktopay::enrol,
        super::clicktopay::operation,
        super::health::healthz,
        super::health::readyz,
        super::health::metrics,
        super::health::jwks,
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// The document route.
pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
}
