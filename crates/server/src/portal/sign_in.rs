//! Signing in and out, and the change of password a one-time password asks for (contract
//! section 11): Argon2id off the async workers, the same answer for an unknown user, a
//! wrong password and a disabled operator, and a lock after five failures in a row.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use d1_store::{NewSession, OperatorChange};
use maud::html;

use super::audit;
use super::form::{check_csrf, Fields};
use super::layout::{notice, Chrome};
use super::session::{
    cookie, new_token, same, see_other, set_cookie, Operator, Tls, SESSION_COOKIE, SIGN_IN_COOKIE,
};
use crate::state::AppState;

/// Failed sign-ins in a row that lock an operator.
pub const LOCK_AFTER: u32 = 5;
/// How long a lock lasts: 15 minutes.
pub const LOCK_MS: i64 = 15 * 60 * 1000;
/// The shortest new password.
pub const MIN_PASSWORD: usize = crate::operators::MIN_PASSWORD_LEN;

const WRONG: &str = "Wrong username or password.";
const LOCKED: &str = "This account is locked after too many failed sign-ins. Try later.";

fn bare(state: &AppState) -> Chrome {
    Chrome {
        base: state.config.portal.base(),
        operator: None,
    }
}

/// The sign-in page, with a fresh double-submit token in its form and cookie.
fn sign_in_page(
    state: &AppState,
    tls: bool,
    status: StatusCode,
    message: Option<&str>,
) -> Response {
    let chrome = bare(state);
    let token = new_token();
    let body = html! {
        section.panel.narrow {
            h1 { "Sign in" }
            @if let Some(text) = message { (notice("error", text)) }
            form #sign-in method="post" action=(chrome.href("/sign-in")) {
                input type="hidden" name="csrf" value=(token);
                label for="username" { "Username" }
                input #username type="text" name="username" required autocomplete="username"
                    autocapitalize="none" spellcheck="false";
                label for="password" { "Password" }
                input #password type="password" name="password" required
                    autocomplete="current-password";
                button type="submit" { "Sign in" }
            }
        }
    };
    let mut response = chrome.page(status, "Sign in", &body).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&chrome.base, SIGN_IN_COOKIE, &token, tls),
    );
    response
}

/// `GET /sign-in`.
pub async fn show(State(state): State<AppState>, Tls(tls): Tls) -> Response {
    sign_in_page(&state, tls, StatusCode::OK, None)
}

/// `POST /sign-in`: `username`, `password` and the double-submit `csrf`.
pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Tls(tls): Tls,
    fields: Fields,
) -> Response {
    let name = fields.get("username").unwrap_or_default().to_owned();
    let password = fields.raw("password").unwrap_or_default().to_owned();
    let pre = cookie(&headers, SIGN_IN_COOKIE);
    let csrf_ok = match (pre, fields.get("csrf")) {
        (Some(c), Some(f)) => same(c, f),
        _ => false,
    };
    let record = match state.store.operator(&name).await {
        Ok(r) => r,
        Err(e) => return super::failed(&state, &e),
    };
    // Only a known operator's name enters the trail: a password typed into the username
    // field must not.
    let who = record
        .as_ref()
        .map_or_else(|| "(unknown)".to_owned(), |r| r.username.clone());
    let who = who.as_str();
    if !csrf_ok {
        audit::write(&state, audit::entry(who, "sign-in", audit::CSRF_REFUSED)).await;
        return bare(&state)
            .forbidden("This form has expired or did not come from the portal. Nothing was done.")
            .into_response();
    }
    let now = d1_store::now_ms();
    let Some(record) = record.filter(|r| !r.disabled) else {
        let _ =
            tokio::task::spawn_blocking(move || crate::operators::dummy_verify(&password)).await;
        let outcome = if who == "(unknown)" {
            "wrong_password"
        } else {
            "disabled"
        };
        audit::write(&state, audit::entry(who, "sign-in", outcome)).await;
        return sign_in_page(&state, tls, StatusCode::UNAUTHORIZED, Some(WRONG));
    };
    if record.is_locked(now) {
        audit::write(&state, audit::entry(who, "sign-in", "locked")).await;
        return sign_in_page(&state, tls, StatusCode::FORBIDDEN, Some(LOCKED));
    }
    let phc = record.password_hash.clone();
    let verified =
        tokio::task::spawn_blocking(move || crate::operators::verify_password(&password, &phc))
            .await
            .unwrap_or(false);
    if !verified {
        if let Err(e) = state
            .store
            .record_failed_sign_in(&record.username, LOCK_AFTER, LOCK_MS)
            .await
        {
            return super::failed(&state, &e);
        }
        audit::write(&state, audit::entry(who, "sign-in", "wrong_password")).await;
        return sign_in_page(&state, tls, StatusCode::UNAUTHORIZED, Some(WRONG));
    }
    if let Err(e) = state.store.record_sign_in(&record.username).await {
        return super::failed(&state, &e);
    }
    let session = match start_session(&state, &record.username, tls).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    audit::write(&state, audit::entry(who, "sign-in", audit::OK)).await;
    let base = state.config.portal.base();
    let next = if record.must_change_password {
        format!("{base}/password")
    } else {
        format!("{base}/")
    };
    let mut redirect = see_other(&next);
    let headers = redirect.headers_mut();
    headers.append(header::SET_COOKIE, session);
    headers.append(
        header::SET_COOKIE,
        set_cookie(&base, SIGN_IN_COOKIE, "", tls),
    );
    redirect
}

/// A new session for `username`: its id in the cookie, its hash and CSRF token in the store.
async fn start_session(
    state: &AppState,
    username: &str,
    tls: bool,
) -> Result<header::HeaderValue, Response> {
    let id = new_token();
    state
        .store
        .create_session(NewSession {
            id_hash: super::session::id_hash(&id),
            username: username.to_owned(),
            csrf_token: new_token(),
        })
        .await
        .map_err(|e| super::failed(state, &e))?;
    Ok(set_cookie(
        &state.config.portal.base(),
        SESSION_COOKIE,
        &id,
        tls,
    ))
}

/// `POST /sign-out`: ends the session.
pub async fn sign_out(
    State(state): State<AppState>,
    operator: Operator,
    Tls(tls): Tls,
    fields: Fields,
) -> Response {
    if let Err(refused) = check_csrf(&state, &operator, &fields, "sign-out").await {
        return refused;
    }
    if let Err(e) = state.store.delete_session(&operator.id_hash).await {
        return super::failed(&state, &e);
    }
    audit::write(
        &state,
        audit::entry(&operator.username, "sign-out", audit::OK),
    )
    .await;
    let base = state.config.portal.base();
    let mut response = see_other(&format!("{base}/sign-in"));
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&base, SESSION_COOKIE, "", tls),
    );
    response
}

fn password_page(chrome: &Chrome, status: StatusCode, message: Option<&str>) -> Response {
    let body = html! {
        section.panel.narrow {
            h1 { "Choose a new password" }
            p.muted { "At least " (MIN_PASSWORD) " characters, typed twice." }
            @if let Some(text) = message { (notice("error", text)) }
            form #password-change method="post" action=(chrome.href("/password")) {
                (chrome.csrf_field())
                label for="new-password" { "New password" }
                input #new-password type="password" name="password" required
                    minlength=(MIN_PASSWORD) autocomplete="new-password";
                label for="new-password-again" { "New password again" }
                input #new-password-again type="password" name="password_again" required
                    minlength=(MIN_PASSWORD) autocomplete="new-password";
                button type="submit" { "Change password" }
            }
        }
    };
    chrome.page(status, "New password", &body).into_response()
}

/// `GET /password`.
pub async fn show_password(State(state): State<AppState>, operator: Operator) -> Response {
    password_page(&operator.chrome(&state), StatusCode::OK, None)
}

/// `POST /password`: `password` twice; every session of the operator ends and a new one
/// starts.
pub async fn change_password(
    State(state): State<AppState>,
    operator: Operator,
    Tls(tls): Tls,
    fields: Fields,
) -> Response {
    if let Err(refused) = check_csrf(&state, &operator, &fields, "password.change").await {
        return refused;
    }
    let chrome = operator.chrome(&state);
    let new = fields.raw("password").unwrap_or_default().to_owned();
    if crate::operators::check_password(&new).is_err() {
        let text = format!("The new password must be at least {MIN_PASSWORD} characters.");
        return password_page(&chrome, StatusCode::BAD_REQUEST, Some(&text));
    }
    if fields.raw("password_again") != Some(new.as_str()) {
        return password_page(
            &chrome,
            StatusCode::BAD_REQUEST,
            Some("The two passwords differ."),
        );
    }
    let hashed = tokio::task::spawn_blocking(move || crate::operators::hash_password(&new)).await;
    let Ok(Ok(phc)) = hashed else {
        return super::failed(&state, &"hashing a password failed");
    };
    let change = OperatorChange {
        password_hash: Some(phc),
        must_change_password: Some(false),
        ..OperatorChange::default()
    };
    if let Err(e) = state
        .store
        .change_operator(&operator.username, change)
        .await
    {
        return super::failed(&state, &e);
    }
    if let Err(e) = state.store.delete_sessions_of(&operator.username).await {
        return super::failed(&state, &e);
    }
    audit::write(
        &state,
        audit::entry(&operator.username, "password.change", audit::OK),
    )
    .await;
    let session = match start_session(&state, &operator.username, tls).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut redirect = see_other(&format!("{}/", state.config.portal.base()));
    redirect.headers_mut().append(header::SET_COOKIE, session);
    redirect
}
