//! Reading the portal's forms (`application/x-www-form-urlencoded`) and the CSRF refusal
//! every POST but sign-in gives a form without its session's token.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use zeroize::Zeroize;

use super::audit;
use super::session::Operator;
use crate::state::AppState;

/// A form's fields, in their order. A body that is not a form reads as no field, so that its
/// CSRF check fails like a missing token's.
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// Fields from pairs, as a form would send them.
    #[must_use]
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }

    /// The first value of `name`, trimmed of surrounding whitespace.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The first value of `name` as sent, not trimmed (passwords).
    #[must_use]
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Drop for Fields {
    fn drop(&mut self) {
        // A sign-in or password form holds a password, and a search may hold a PAN.
        for (_, v) in &mut self.0 {
            v.zeroize();
        }
    }
}

impl FromRequest<AppState> for Fields {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self(
            serde_urlencoded::from_bytes(&bytes).unwrap_or_default(),
        ))
    }
}

/// Checks a signed-in operator's form token; on a mismatch, the 403 page, with an audit
/// entry of outcome `csrf_refused` for `action`.
///
/// # Errors
/// The refusal page.
pub async fn check_csrf(
    state: &AppState,
    operator: &Operator,
    fields: &Fields,
    action: &str,
) -> Result<(), Response> {
    if operator.csrf_matches(fields.get("csrf")) {
        return Ok(());
    }
    audit::write(
        state,
        audit::entry(&operator.username, action, audit::CSRF_REFUSED),
    )
    .await;
    Err(operator
        .chrome(state)
        .forbidden("This form has expired or did not come from the portal. Nothing was done.")
        .into_response())
}
