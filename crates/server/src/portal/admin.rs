//! What only `admin` does in the portal (contract section 11): the operators of its issuers
//! (list, add with a one-time password shown once, disable) and the operator audit trail.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use d1_store::{
    AuditEntry, AuditQuery, NewOperator, OperatorIssuers, OperatorRecord, OperatorRole, StoreError,
};
use maud::{html, Markup};
use serde::Deserialize;

use super::audit;
use super::form::{check_csrf, Fields};
use super::layout::{badge, notice, time, Chrome};
use super::session::{see_other, Operator};
use crate::state::AppState;

/// Audit entries on one page.
pub const AUDIT_PAGE: u32 = 50;
/// The deepest audit page: the store reads newest first from the top, so a page costs its
/// depth.
pub const AUDIT_PAGES: u32 = 100;

/// Whether `issuers` lie within the admin's own context.
#[must_use]
pub fn within(admin: &OperatorIssuers, issuers: &OperatorIssuers) -> bool {
    match (admin, issuers) {
        (OperatorIssuers::All, _) => true,
        (OperatorIssuers::Only(_), OperatorIssuers::All) => false,
        (OperatorIssuers::Only(_), OperatorIssuers::Only(ids)) => {
            ids.iter().all(|i| admin.allows(i))
        }
    }
}

/// Whether an audit entry is about the admin's issuers (entries naming no issuer, such as
/// sign-ins, are shown to every admin).
fn visible(admin: &OperatorIssuers, e: &AuditEntry) -> bool {
    e.issuer_id
        .as_deref()
        .is_none_or(|id| d1_domain::IssuerId::parse(id).is_ok_and(|id| admin.allows(&id)))
}

/// The admin's view refused to others: the 403 page, audited.
async fn admins_only(state: &AppState, operator: &Operator, action: &str) -> Result<(), Response> {
    if operator.role >= OperatorRole::Admin {
        return Ok(());
    }
    audit::write(
        state,
        audit::entry(&operator.username, action, audit::FORBIDDEN),
    )
    .await;
    Err(operator
        .chrome(state)
        .forbidden("This page is for the admin role.")
        .into_response())
}

async fn operators_page(
    state: &AppState,
    operator: &Operator,
    status: StatusCode,
    message: Option<(&str, &str)>,
) -> Result<Response, StoreError> {
    let chrome = operator.chrome(state);
    let list: Vec<OperatorRecord> = state
        .store
        .operators()
        .await?
        .into_iter()
        .filter(|o| within(&operator.issuers, &o.issuers))
        .collect();
    let now = d1_store::now_ms();
    let body = html! {
        h1 { "Operators" }
        @if let Some((kind, text)) = message { (notice(kind, text)) }
        table #operators {
            thead { tr { th { "Username" } th { "Role" } th { "Issuers" } th { "State" } th { "Created" } th {} } }
            tbody {
                @for o in &list {
                    tr data-username=(o.username) {
                        td.mono { (o.username) }
                        td { (o.role.as_str()) }
                        td.mono { (o.issuers.to_string()) }
                        td { (operator_state(o, now)) }
                        td { (time(o.created_at)) }
                        td {
                            @if !o.disabled && o.username != operator.username {
                                form.disable-operator method="post"
                                    action=(chrome.href(&format!("/operators/{}/disable", o.username))) {
                                    (chrome.csrf_field())
                                    button.danger type="submit" { "Disable" }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Add an operator" }
        section.panel { (add_form(&chrome)) }
    };
    Ok(chrome.page(status, "Operators", &body).into_response())
}

fn operator_state(o: &OperatorRecord, now: i64) -> Markup {
    html! {
        @if o.disabled { (badge("DISABLED")) }
        @else if o.is_locked(now) { (badge("LOCKED")) }
        @else { (badge("ACTIVE")) }
        @if o.must_change_password && !o.disabled { " " span.muted { "one-time password" } }
    }
}

fn add_form(chrome: &Chrome) -> Markup {
    html! {
        form #add-operator.actions method="post" action=(chrome.href("/operators")) {
            (chrome.csrf_field())
            label for="new-username" { "Username" }
            input #new-username type="text" name="username" required autocomplete="off";
            label for="new-role" { "Role" }
            select #new-role name="role" {
                @for role in [OperatorRole::Cci, OperatorRole::Manager, OperatorRole::Admin] {
                    option value=(role.as_str()) { (role.as_str()) }
                }
            }
            label for="new-issuers" { "Issuers" }
            input #new-issuers type="text" name="issuers" required placeholder="ID,ID or all";
            button type="submit" { "Add" }
        }
    }
}

/// `GET /operators`.
pub async fn list(State(state): State<AppState>, operator: Operator) -> Response {
    if let Err(refused) = admins_only(&state, &operator, "operator.list").await {
        return refused;
    }
    operators_page(&state, &operator, StatusCode::OK, None)
        .await
        .unwrap_or_else(|e| super::failed(&state, &e))
}

/// `POST /operators`: `username`, `role`, `issuers`; the one-time password is shown once.
pub async fn add(State(state): State<AppState>, operator: Operator, fields: Fields) -> Response {
    if let Err(refused) = check_csrf(&state, &operator, &fields, "operator.add").await {
        return refused;
    }
    if let Err(refused) = admins_only(&state, &operator, "operator.add").await {
        return refused;
    }
    let name = fields.get("username").unwrap_or_default().to_owned();
    let role = fields
        .get("role")
        .and_then(|r| r.parse::<OperatorRole>().ok());
    let issuers = fields
        .get("issuers")
        .and_then(|i| i.parse::<OperatorIssuers>().ok());
    let refuse = |text: &str| {
        let text = text.to_owned();
        let (state, operator) = (&state, &operator);
        async move {
            operators_page(
                state,
                operator,
                StatusCode::BAD_REQUEST,
                Some(("error", &text)),
            )
            .await
            .unwrap_or_else(|e| super::failed(state, &e))
        }
    };
    if let Err(why) = crate::operators::check_username(&name) {
        return refuse(&format!("Not added: {why}.")).await;
    }
    let (Some(role), Some(issuers)) = (role, issuers) else {
        return refuse("Choose a role, and issuers as `all` or ids like ID,ID.").await;
    };
    if !within(&operator.issuers, &issuers) {
        return refuse("You can only give issuers of your own organization.").await;
    }
    let password = crate::operators::one_time_password();
    let secret = password.clone();
    let hashed =
        tokio::task::spawn_blocking(move || crate::operators::hash_password(&secret)).await;
    let Ok(Ok(password_hash)) = hashed else {
        return super::failed(&state, &"hashing a password failed");
    };
    let added = state
        .store
        .add_operator(NewOperator {
            username: name.clone(),
            role,
            issuers,
            password_hash,
            must_change_password: true,
        })
        .await;
    let action = format!("operator.add:{name}");
    let entry = |outcome: &str| audit::entry(&operator.username, &action, outcome);
    match added {
        Ok(()) => {
            audit::write(&state, entry(audit::OK)).await;
            let text = format!(
                "Operator {name} added. Its one-time password, shown this once: {password}"
            );
            operators_page(&state, &operator, StatusCode::OK, Some(("ok", &text)))
                .await
                .unwrap_or_else(|e| super::failed(&state, &e))
        }
        Err(StoreError::Conflict(_)) => {
            audit::write(&state, entry("conflict")).await;
            refuse("An operator with this username exists.").await
        }
        Err(e) => super::failed(&state, &e),
    }
}

/// `POST /operators/{username}/disable`: the operator can no longer sign in, and its
/// sessions end (the store deletes them with the change).
pub async fn disable(
    State(state): State<AppState>,
    operator: Operator,
    Path(username): Path<String>,
    fields: Fields,
) -> Response {
    if let Err(refused) = check_csrf(&state, &operator, &fields, "operator.disable").await {
        return refused;
    }
    if let Err(refused) = admins_only(&state, &operator, "operator.disable").await {
        return refused;
    }
    let target = match state.store.operator(&username).await {
        Ok(t) => t.filter(|t| within(&operator.issuers, &t.issuers)),
        Err(e) => return super::failed(&state, &e),
    };
    if target.is_none() || username == operator.username {
        return operator.chrome(&state).not_found().into_response();
    }
    if let Err(e) = state.store.disable_operator(&username).await {
        return super::failed(&state, &e);
    }
    let action = format!("operator.disable:{username}");
    audit::write(&state, audit::entry(&operator.username, &action, audit::OK)).await;
    see_other(&format!("{}/operators", state.config.portal.base()))
}

/// The audit page's query.
#[derive(Debug, Default, Deserialize)]
pub struct AuditPageQuery {
    pub page: Option<u32>,
}

/// `GET /audit?page=N`: the operator audit trail, newest first.
pub async fn trail(
    State(state): State<AppState>,
    operator: Operator,
    Query(query): Query<AuditPageQuery>,
) -> Response {
    if let Err(refused) = admins_only(&state, &operator, "audit.read").await {
        return refused;
    }
    let page = query.page.unwrap_or(0).min(AUDIT_PAGES - 1);
    let read = state
        .store
        .audit(AuditQuery {
            operator: None,
            since: None,
            limit: (page + 1) * AUDIT_PAGE + 1,
        })
        .await;
    let entries: Vec<AuditEntry> = match read {
        Ok(all) => all
            .into_iter()
            .filter(|e| visible(&operator.issuers, e))
            .collect(),
        Err(e) => return super::failed(&state, &e),
    };
    let start = (page * AUDIT_PAGE) as usize;
    let shown: Vec<&AuditEntry> = entries
        .iter()
        .skip(start)
        .take(AUDIT_PAGE as usize)
        .collect();
    let more = entries.len() > start + shown.len() && page + 1 < AUDIT_PAGES;
    let chrome = operator.chrome(&state);
    let body = html! {
        h1 { "Audit trail" }
        @if shown.is_empty() {
            section.panel { p { "No entries on this page." } }
        } @else {
            table #audit {
                thead { tr {
                    th { "When" } th { "Operator" } th { "Action" } th { "Issuer" }
                    th { "Consumer" } th { "Card" } th { "Outcome" }
                } }
                tbody {
                    @for e in &shown {
                        tr data-action=(e.action) {
                            td { (time(e.at)) }
                            td.mono { (e.operator) }
                            td { (e.action) }
                            td.mono { (e.issuer_id.as_deref().unwrap_or("–")) }
                            td.mono { (e.consumer_id.as_deref().unwrap_or("–")) }
                            td.mono { (e.card_id.as_deref().unwrap_or("–")) }
                            td.outcome { (e.outcome) }
                        }
                    }
                }
            }
        }
        p.pager {
            @if page > 0 { a #newer-page href=(chrome.href(&format!("/audit?page={}", page - 1))) { "← Newer" } " " }
            @if more { a #older-page href=(chrome.href(&format!("/audit?page={}", page + 1))) { "Older →" } }
        }
    };
    chrome
        .page(StatusCode::OK, "Audit trail", &body)
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_admin_of_some_issuers_gives_only_those() {
        let a: OperatorIssuers = "BANK000001".parse().unwrap();
        let both: OperatorIssuers = "BANK000001,BANK000002".parse().unwrap();
        assert!(within(&OperatorIssuers::All, &both));
        assert!(within(&a, &a));
        assert!(!within(&a, &both));
        assert!(!within(&a, &OperatorIssuers::All));
    }
}
