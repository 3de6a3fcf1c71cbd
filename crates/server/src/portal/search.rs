//! `POST /search` (contract section 11): one box for a PAN, a cardId or a consumerId, in the
//! operator's issuers only. A PAN is matched through the store's keyed hash, an index lookup;
//! it never reaches a URL, a log line or the audit trail.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use d1_domain::card::{CardId, Pan};
use d1_domain::guard::luhn_valid;
use d1_domain::{ConsumerId, IssuerId};
use d1_store::StoreError;

use super::audit;
use super::form::{check_csrf, Fields};
use super::session::{see_other, Operator};
use crate::state::AppState;

/// What a search text was taken for, as the audit trail names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pan,
    CardId,
    ConsumerId,
    /// Not a PAN, and neither a consumerId nor a cardId of the operator's issuers.
    Id,
}

impl Kind {
    fn action(self) -> &'static str {
        match self {
            Self::Pan => "search.pan",
            Self::CardId => "search.cardId",
            Self::ConsumerId => "search.consumerId",
            Self::Id => "search.id",
        }
    }
}

/// Whether a search text is to be read as a PAN: 12 to 19 digits passing Luhn.
#[must_use]
pub fn looks_like_pan(q: &str) -> bool {
    (12..=19).contains(&q.len()) && q.bytes().all(|b| b.is_ascii_digit()) && luhn_valid(q)
}

/// Where a search led: the issuer and consumer, and the card when one was matched.
struct Found {
    issuer: IssuerId,
    consumer: ConsumerId,
    card: Option<String>,
}

async fn find(
    state: &AppState,
    issuers: &[IssuerId],
    q: &str,
) -> Result<(Kind, Option<Found>), StoreError> {
    if looks_like_pan(q) {
        let Ok(pan) = Pan::parse(q, "q") else {
            return Ok((Kind::Pan, None));
        };
        for issuer in issuers {
            if let Some((consumer, card)) = state.store.locate_card_by_pan(issuer, &pan).await? {
                let found = Found {
                    issuer: issuer.clone(),
                    consumer,
                    card: Some(card),
                };
                return Ok((Kind::Pan, Some(found)));
            }
        }
        return Ok((Kind::Pan, None));
    }
    if let Ok((consumer, _)) = ConsumerId::parse(q) {
        for issuer in issuers {
            if state.store.consumer(issuer, &consumer).await?.is_some() {
                let found = Found {
                    issuer: issuer.clone(),
                    consumer,
                    card: None,
                };
                return Ok((Kind::ConsumerId, Some(found)));
            }
        }
    }
    if let Ok(card) = CardId::parse(q) {
        for issuer in issuers {
            if let Some(consumer) = state.store.locate_card(issuer, card.as_str()).await? {
                let found = Found {
                    issuer: issuer.clone(),
                    consumer,
                    card: Some(card.as_str().to_owned()),
                };
                return Ok((Kind::CardId, Some(found)));
            }
        }
    }
    Ok((Kind::Id, None))
}

/// `POST /search`: field `q`. Found, a 303 to the consumer's page; else the 404 page.
pub async fn search(State(state): State<AppState>, operator: Operator, fields: Fields) -> Response {
    if let Err(refused) = check_csrf(&state, &operator, &fields, "search").await {
        return refused;
    }
    let q = fields.get("q").unwrap_or_default();
    let issuers = match super::context(&state, &operator.issuers).await {
        Ok(i) => i,
        Err(e) => return super::failed(&state, &e),
    };
    let (kind, found) = match find(&state, &issuers, q).await {
        Ok(r) => r,
        Err(e) => return super::failed(&state, &e),
    };
    let entry = audit::entry(&operator.username, kind.action(), "not_found");
    let Some(found) = found else {
        audit::write(&state, entry).await;
        return operator.chrome(&state).not_found().into_response();
    };
    let mut entry = audit::with_ids(
        entry,
        Some(found.issuer.as_str()),
        Some(found.consumer.as_str()),
        found.card.as_deref(),
    );
    "found".clone_into(&mut entry.outcome);
    audit::write(&state, entry).await;
    see_other(&format!(
        "{}/issuers/{}/consumers/{}",
        state.config.portal.base(),
        found.issuer.as_str(),
        found.consumer.as_str()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_luhn_valid_runs_of_12_to_19_digits_are_pans() {
        assert!(looks_like_pan("4111111111111111"));
        assert!(!looks_like_pan("4111111111111112"));
        assert!(!looks_like_pan("41111111111"));
        assert!(!looks_like_pan("cons-4111111111111111"));
    }
}
