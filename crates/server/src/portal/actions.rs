//! The portal's card and consumer actions (contract section 11), each through the API's own
//! use case ([`operate_card`], [`delete_consumer`]) so that a portal action writes the same
//! trail entry and notification as an API call; the trail's `userId` is the operator's
//! username when it fits that field. A refusal shows the D1 error's message on the page.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use d1_domain::card::lifecycle::CardOperation;
use d1_domain::card::CardId;
use d1_domain::{ConsumerId, IssuerId, UserId};
use d1_store::{OperatorRole, TrailContext};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::audit;
use super::consumer::{in_context, load, ConsumerPath};
use super::form::{check_csrf, Fields};
use super::session::{see_other, Operator};
use super::view::{self, Shown};
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::routes::cards::operate_card;
use crate::routes::consumers::delete_consumer;
use crate::state::AppState;
use crate::wire::checks::Checked;

/// The path of a card action.
#[derive(Debug, Deserialize)]
pub struct CardActionPath {
    #[serde(rename = "issuerId")]
    pub issuer_id: String,
    #[serde(rename = "consumerId")]
    pub consumer_id: String,
    #[serde(rename = "cardId")]
    pub card_id: String,
    pub operation: String,
}

/// The role an operation needs: suspend and resume for every role, the rest for managers.
#[must_use]
pub fn role_for(op: CardOperation) -> Option<OperatorRole> {
    match op {
        CardOperation::Suspend | CardOperation::Resume => Some(OperatorRole::Cci),
        CardOperation::Delete | CardOperation::Replace => Some(OperatorRole::Manager),
        CardOperation::Renew | CardOperation::Activate => None,
    }
}

/// The trail context of a portal action: no correlation id, the operator as the user.
fn trail(operator: &Operator) -> TrailContext {
    TrailContext {
        correlation_id: None,
        user_id: UserId::parse(&operator.username).ok(),
        aggregator_id: None,
    }
}

/// The API body a form stands for: the fields named, those left empty out.
fn body(fields: &Fields, names: &[&str]) -> JsonBody {
    let mut map = Map::new();
    for name in names {
        if let Some(v) = fields.get(name) {
            map.insert((*name).to_owned(), Value::String(v.to_owned()));
        }
    }
    JsonBody(
        serde_json::to_vec(&Value::Object(map))
            .unwrap_or_default()
            .into(),
    )
}

/// Shows the consumer page again with a refusal's message, with its status.
async fn refused(
    state: &AppState,
    operator: &Operator,
    issuer: &IssuerId,
    consumer: &ConsumerId,
    error: &ApiError,
) -> Response {
    let chrome = operator.chrome(state);
    match load(state, issuer, consumer, None).await {
        Ok(Some(loaded)) => {
            let shown = Shown {
                revealed: false,
                notice: Some(("error", error.message().to_owned())),
            };
            view::page(&chrome, operator, &loaded, &shown, error.status()).into_response()
        }
        Ok(None) => chrome.not_found().into_response(),
        Err(e) => super::failed(state, &e),
    }
}

fn consumer_page(
    state: &AppState,
    issuer: &IssuerId,
    consumer: &ConsumerId,
    done: &str,
) -> Response {
    see_other(&format!(
        "{}/issuers/{}/consumers/{}?done={done}",
        state.config.portal.base(),
        issuer.as_str(),
        consumer.as_str()
    ))
}

/// `POST /issuers/{issuerId}/consumers/{consumerId}/cards/{cardId}/{operation}`, operation
/// `suspend`, `resume`, `delete` or `replace`: fields `reasonCode`, `reason`, and `newCardId`
/// for a replace.
pub async fn card(
    State(state): State<AppState>,
    operator: Operator,
    Path(path): Path<CardActionPath>,
    fields: Fields,
) -> Response {
    let chrome = operator.chrome(&state);
    let op = CardOperation::parse(&path.operation).filter(|op| role_for(*op).is_some());
    let Some(op) = op else {
        return chrome.not_found().into_response();
    };
    let action = format!("card.{}", op.as_str());
    if let Err(refused) = check_csrf(&state, &operator, &fields, &action).await {
        return refused;
    }
    let ids = ConsumerPath {
        issuer_id: path.issuer_id,
        consumer_id: path.consumer_id,
    };
    let Some((issuer, consumer)) = in_context(&operator, &ids) else {
        return chrome.not_found().into_response();
    };
    let owned = match CardId::parse(&path.card_id) {
        Ok(card) => match state.store.card(&issuer, &card).await {
            Ok(view) => view.is_some_and(|v| v.consumer_id == consumer),
            Err(e) => return super::failed(&state, &e),
        },
        Err(_) => false,
    };
    if !owned {
        return chrome.not_found().into_response();
    }
    let entry = |outcome: &str| {
        audit::with_ids(
            audit::entry(&operator.username, &action, outcome),
            Some(issuer.as_str()),
            Some(consumer.as_str()),
            Some(&path.card_id),
        )
    };
    if role_for(op).is_some_and(|needed| operator.role < needed) {
        audit::write(&state, entry(audit::FORBIDDEN)).await;
        let why = format!("To {} a card needs the manager or admin role.", op.as_str());
        return chrome.forbidden(&why).into_response();
    }
    let json = body(&fields, &["reasonCode", "reason", "newCardId"]);
    let context = trail(&operator);
    let result = operate_card(
        &state,
        issuer.clone(),
        &path.card_id,
        op,
        || Ok(Checked::ok(context)),
        &json,
    )
    .await;
    match result {
        Ok(_) => {
            audit::write(&state, entry(audit::OK)).await;
            consumer_page(&state, &issuer, &consumer, op.as_str())
        }
        Err(error) => {
            audit::write(&state, entry(error.code())).await;
            refused(&state, &operator, &issuer, &consumer, &error).await
        }
    }
}

/// `POST /issuers/{issuerId}/consumers/{consumerId}/delete`, for managers: field
/// `reasonCode` (`ISSUER_DECISION` or `USER_DECISION`), and `reason`.
pub async fn delete(
    State(state): State<AppState>,
    operator: Operator,
    Path(path): Path<ConsumerPath>,
    fields: Fields,
) -> Response {
    if let Err(refused) = check_csrf(&state, &operator, &fields, "consumer.delete").await {
        return refused;
    }
    let chrome = operator.chrome(&state);
    let Some((issuer, consumer)) = in_context(&operator, &path) else {
        return chrome.not_found().into_response();
    };
    match state.store.consumer(&issuer, &consumer).await {
        Ok(Some(_)) => {}
        Ok(None) => return chrome.not_found().into_response(),
        Err(e) => return super::failed(&state, &e),
    }
    let entry = |outcome: &str| {
        audit::with_ids(
            audit::entry(&operator.username, "consumer.delete", outcome),
            Some(issuer.as_str()),
            Some(consumer.as_str()),
            None,
        )
    };
    if operator.role < OperatorRole::Manager {
        audit::write(&state, entry(audit::FORBIDDEN)).await;
        return chrome
            .forbidden("Deleting a consumer needs the manager or admin role.")
            .into_response();
    }
    let json = body(&fields, &["reasonCode", "reason"]);
    let context = trail(&operator);
    let result = delete_consumer(
        &state,
        issuer.clone(),
        consumer.as_str(),
        || Ok(Checked::ok(context)),
        &json,
    )
    .await;
    match result {
        Ok(_) => {
            audit::write(&state, entry(audit::OK)).await;
            consumer_page(&state, &issuer, &consumer, "delete-consumer")
        }
        Err(error) => {
            audit::write(&state, entry(error.code())).await;
            refused(&state, &operator, &issuer, &consumer, &error).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cci_suspends_and_resumes_and_a_manager_also_deletes_and_replaces() {
        assert_eq!(role_for(CardOperation::Suspend), Some(OperatorRole::Cci));
        assert_eq!(role_for(CardOperation::Resume), Some(OperatorRole::Cci));
        assert_eq!(role_for(CardOperation::Delete), Some(OperatorRole::Manager));
        assert_eq!(
            role_for(CardOperation::Replace),
            Some(OperatorRole::Manager)
        );
        assert_eq!(role_for(CardOperation::Renew), None);
    }

    #[test]
    fn a_form_becomes_the_api_body_without_its_empty_fields() {
        let fields = Fields::from_pairs(vec![
            ("reasonCode".into(), "CARD_LOST".into()),
            ("newCardId".into(), " ".into()),
            ("csrf".into(), "t".into()),
        ]);
        use serde_json::json;
        let json: Value =
            serde_json::from_slice(&body(&fields, &["reasonCode", "newCardId"]).0).unwrap();
        assert_eq!(json, json!({"reasonCode": "CARD_LOST"}));
    }
}
