//! The operator portal (contract section 11): server-rendered HTML for a bank's customer-care
//! operators at `/portal` (`[portal]`), outside the API's D1 policies: it answers HTML, not
//! D1 JSON, and is not in `/openapi.json`. Pages work without JavaScript and carry no script.
//!
//! Each page is a small module: [`sign_in`], [`search`], [`consumer`] (with its [`view`]),
//! [`actions`] and [`admin`]; [`session`] and [`form`] hold the session cookie and CSRF
//! checks, [`headers`] the layers every response passes, [`layout`] the shared look.

pub mod actions;
pub mod admin;
pub mod audit;
pub mod consumer;
pub mod form;
pub mod headers;
pub mod layout;
pub mod mask;
pub mod search;
pub mod session;
pub mod settings;
pub mod sign_in;
pub mod view;

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use d1_domain::IssuerId;
use d1_store::{OperatorIssuers, StoreError};
use maud::html;

use layout::Chrome;
use session::Operator;

use crate::state::AppState;

pub use settings::PortalConfig;

/// The stylesheet, served at `/portal/static/portal.css`.
pub const STYLESHEET: &str = include_str!("portal.css");

/// The portal's routes under `[portal].path`, with its layers.
pub fn router(state: &AppState) -> Router<AppState> {
    let base = state.config.portal.base();
    let at = |rest: &str| format!("{base}{rest}");
    let consumer = "/issuers/{issuerId}/consumers/{consumerId}";
    let routes = Router::new()
        .route(&base, get(home))
        .route(&at("/"), get(home))
        .route(&at("/static/portal.css"), get(stylesheet))
        .route(&at("/sign-in"), get(sign_in::show).post(sign_in::submit))
        .route(&at("/sign-out"), post(sign_in::sign_out))
        .route(
            &at("/password"),
            get(sign_in::show_password).post(sign_in::change_password),
        )
        .route(&at("/search"), get(to_home).post(search::search))
        .route(&at(consumer), get(consumer::show))
        .route(&at(&format!("{consumer}/reveal")), post(consumer::reveal))
        .route(&at(&format!("{consumer}/delete")), post(actions::delete))
        .route(
            &at(&format!("{consumer}/cards/{{cardId}}/{{operation}}")),
            post(actions::card),
        )
        .route(&at("/operators"), get(admin::list).post(admin::add))
        .route(&at("/operators/{username}/disable"), post(admin::disable))
        .route(&at("/audit"), get(admin::trail))
        .route(&at("/{*rest}"), get(not_found).post(not_found));
    let timeout = Duration::from_millis(state.config.server.request_timeout_ms);
    headers::apply(routes, timeout, &base)
}

/// `GET /`: the start page, with the search box in the header bar.
async fn home(
    axum::extract::State(state): axum::extract::State<AppState>,
    operator: Operator,
) -> Response {
    let chrome = operator.chrome(&state);
    let body = html! {
        section.panel #home {
            h1 { "Find an end user" }
            p { "Search by PAN, cardId or consumerId in the box above. A PAN is looked up, \
                 never kept nor logged." }
            p.muted { "You work for " (operator.issuers.to_string()) " as " (operator.role.as_str()) "." }
        }
    };
    chrome.page(StatusCode::OK, "Search", &body).into_response()
}

/// `GET /search`: a search is a POST; a typed or bookmarked URL goes to the start page.
async fn to_home(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    session::see_other(&format!("{}/", state.config.portal.base()))
}

async fn stylesheet() -> Response {
    let mut response = STYLESHEET.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    response
}

async fn not_found(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    Chrome {
        base: state.config.portal.base(),
        operator: None,
    }
    .not_found()
    .into_response()
}

/// The issuers of an operator's context: every issuer for `all`.
///
/// # Errors
/// The store's.
pub async fn context(
    state: &AppState,
    issuers: &OperatorIssuers,
) -> Result<Vec<IssuerId>, StoreError> {
    Ok(match issuers {
        OperatorIssuers::All => state
            .store
            .issuers()
            .await?
            .into_iter()
            .map(|i| i.issuer_id)
            .collect(),
        OperatorIssuers::Only(ids) => ids.clone(),
    })
}

/// A failure the operator cannot fix: logged once, here, and the generic error page.
pub fn failed(state: &AppState, cause: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %cause, "portal request failed");
    layout::internal_error(&state.config.portal.base()).into_response()
}
