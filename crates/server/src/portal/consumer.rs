//! The consumer page (contract section 11): `GET /issuers/{issuerId}/consumers/{consumerId}`
//! and its reveal. Anything outside the operator's issuers, or absent, is the one 404 page.
//! Nothing here calls the issuer backend: a consumer whose PI the issuer keeps is said to be so.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use d1_domain::consumer::OperationKind;
use d1_domain::{ConsumerId, IssuerId};
use d1_store::{CardView, ConsumerView, IssuerRecord, OperationsPage, OperatorRole, StoreError};
use serde::Deserialize;

use super::audit;
use super::form::{check_csrf, Fields};
use super::session::Operator;
use super::view::{self, Shown};
use crate::state::AppState;

/// Trail entries on one page.
pub const TRAIL_PAGE: u32 = 20;

/// The ids of a consumer page's path.
#[derive(Debug, Deserialize)]
pub struct ConsumerPath {
    #[serde(rename = "issuerId")]
    pub issuer_id: String,
    #[serde(rename = "consumerId")]
    pub consumer_id: String,
}

/// The consumer page's query: the trail's cursor and what the last action did.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    pub page: Option<String>,
    pub done: Option<String>,
}

/// Everything the consumer page shows, read from the store.
pub struct Loaded {
    pub issuer: IssuerRecord,
    pub consumer: ConsumerView,
    pub cards: Vec<CardView>,
    pub trail: OperationsPage,
    /// Each card's Click to Pay status, in the order of `cards`.
    pub click_to_pay: Vec<String>,
    /// The trail's cursor this page was read at.
    pub page: Option<i64>,
}

/// The ids of a path, if they name a consumer of one of the operator's issuers.
#[must_use]
pub fn in_context(operator: &Operator, path: &ConsumerPath) -> Option<(IssuerId, ConsumerId)> {
    let issuer = IssuerId::parse(&path.issuer_id).ok()?;
    let (consumer, _) = ConsumerId::parse(&path.consumer_id).ok()?;
    operator
        .issuers
        .allows(&issuer)
        .then_some((issuer, consumer))
}

/// Reads the page's data; `None` when the issuer or the consumer is not there.
///
/// # Errors
/// The store's.
pub async fn load(
    state: &AppState,
    issuer: &IssuerId,
    consumer: &ConsumerId,
    page: Option<i64>,
) -> Result<Option<Loaded>, StoreError> {
    let Some(settings) = state.issuer(issuer).await? else {
        return Ok(None);
    };
    let Some(view) = state.store.consumer(issuer, consumer).await? else {
        return Ok(None);
    };
    let cards = state
        .store
        .cards(issuer, consumer)
        .await?
        .unwrap_or_default();
    let trail = state
        .store
        .operations(issuer, consumer, TRAIL_PAGE, page)
        .await?
        .unwrap_or(OperationsPage {
            operations: Vec::new(),
            next: None,
        });
    let click_to_pay = click_to_pay(state, &settings, consumer, &cards).await?;
    Ok(Some(Loaded {
        issuer: settings,
        consumer: view,
        cards,
        trail,
        click_to_pay,
        page,
    }))
}

/// Each card's Click to Pay status: enrolled when the directory holds it, else the latest
/// enrolment of the trail's recent entries (PENDING, FAILED and its reason), else not enrolled.
async fn click_to_pay(
    state: &AppState,
    settings: &IssuerRecord,
    consumer: &ConsumerId,
    cards: &[CardView],
) -> Result<Vec<String>, StoreError> {
    if !settings.click_to_pay {
        return Ok(vec!["not offered by the issuer".to_owned(); cards.len()]);
    }
    let issuer = &settings.issuer_id;
    let enrolled = state
        .store
        .directory_profile(issuer, consumer)
        .await?
        .map(|p| p.card_ids)
        .unwrap_or_default();
    let recent = state
        .store
        .operations(issuer, consumer, 200, None)
        .await?
        .map(|p| p.operations)
        .unwrap_or_default();
    Ok(cards
        .iter()
        .map(|card| {
            let id = card.card_id.as_str();
            if enrolled.iter().any(|c| c == id) {
                return "ENROLLED".to_owned();
            }
            recent
                .iter()
                .find(|o| {
                    o.operation == OperationKind::ClickToPayEnrolment
                        && o.card_id.as_deref() == Some(id)
                })
                .map_or_else(
                    || "not enrolled".to_owned(),
                    |o| match &o.reason {
                        Some(reason) => format!("{} ({reason})", o.status.as_str()),
                        None => o.status.as_str().to_owned(),
                    },
                )
        })
        .collect())
}

/// Reads the trail cursor of `?page=`; anything but a positive number is the first page.
#[must_use]
pub fn cursor(raw: Option<&str>) -> Option<i64> {
    raw.and_then(|p| p.parse::<i64>().ok()).filter(|p| *p > 0)
}

/// `GET /issuers/{issuerId}/consumers/{consumerId}`.
pub async fn show(
    State(state): State<AppState>,
    operator: Operator,
    Path(path): Path<ConsumerPath>,
    Query(query): Query<PageQuery>,
) -> Response {
    let chrome = operator.chrome(&state);
    let Some((issuer, consumer)) = in_context(&operator, &path) else {
        return chrome.not_found().into_response();
    };
    let page = cursor(query.page.as_deref());
    match load(&state, &issuer, &consumer, page).await {
        Ok(Some(loaded)) => {
            let shown = Shown {
                revealed: false,
                notice: query
                    .done
                    .as_deref()
                    .and_then(view::done_text)
                    .map(|t| ("ok", t.to_owned())),
            };
            view::page(&chrome, &operator, &loaded, &shown, StatusCode::OK).into_response()
        }
        Ok(None) => chrome.not_found().into_response(),
        Err(e) => super::failed(&state, &e),
    }
}

/// `POST /issuers/{issuerId}/consumers/{consumerId}/reveal`: the page again with PI in
/// clear, for `manager` and `admin`; audited either way.
pub async fn reveal(
    State(state): State<AppState>,
    operator: Operator,
    Path(path): Path<ConsumerPath>,
    fields: Fields,
) -> Response {
    if let Err(refused) = check_csrf(&state, &operator, &fields, "reveal").await {
        return refused;
    }
    let chrome = operator.chrome(&state);
    let Some((issuer, consumer)) = in_context(&operator, &path) else {
        return chrome.not_found().into_response();
    };
    let loaded = match load(&state, &issuer, &consumer, None).await {
        Ok(Some(l)) => l,
        Ok(None) => return chrome.not_found().into_response(),
        Err(e) => return super::failed(&state, &e),
    };
    let ids = |outcome: &str| {
        audit::with_ids(
            audit::entry(&operator.username, "reveal", outcome),
            Some(issuer.as_str()),
            Some(consumer.as_str()),
            None,
        )
    };
    if operator.role < OperatorRole::Manager {
        audit::write(&state, ids(audit::FORBIDDEN)).await;
        return chrome
            .forbidden("Revealing personal information needs the manager or admin role.")
            .into_response();
    }
    // The entry is written before anything is shown: no reveal goes unrecorded.
    if let Err(e) = audit::strict(&state, ids(audit::OK)).await {
        return super::failed(&state, &e);
    }
    let shown = Shown {
        revealed: true,
        notice: None,
    };
    view::page(&chrome, &operator, &loaded, &shown, StatusCode::OK).into_response()
}
