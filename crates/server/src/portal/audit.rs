//! Writing the operator audit trail (contract section 11): who did what, when, on which
//! issuer, consumer and card, and how it ended. Never a PAN, a query or PI.

use d1_store::{AuditEntry, StoreError};

/// The outcome of a form refused for its CSRF token.
pub const CSRF_REFUSED: &str = "csrf_refused";
/// The outcome of an action the operator's role does not allow.
pub const FORBIDDEN: &str = "forbidden";
/// The outcome of an action done.
pub const OK: &str = "ok";

/// An entry at the current time without ids.
#[must_use]
pub fn entry(operator: &str, action: &str, outcome: &str) -> AuditEntry {
    AuditEntry {
        at: d1_store::now_ms(),
        operator: operator.to_owned(),
        action: action.to_owned(),
        issuer_id: None,
        consumer_id: None,
        card_id: None,
        outcome: outcome.to_owned(),
    }
}

/// The same entry naming an issuer, a consumer and a card.
#[must_use]
pub fn with_ids(
    mut e: AuditEntry,
    issuer: Option<&str>,
    consumer: Option<&str>,
    card: Option<&str>,
) -> AuditEntry {
    e.issuer_id = issuer.map(str::to_owned);
    e.consumer_id = consumer.map(str::to_owned);
    e.card_id = card.map(str::to_owned);
    e
}

/// Writes an entry; a failure is logged (once) and does not stop what was done.
pub async fn write(state: &crate::state::AppState, e: AuditEntry) {
    if let Err(error) = strict(state, e).await {
        tracing::error!(%error, "the operator audit entry could not be written");
    }
}

/// Writes an entry that must be written before what it records is shown (a reveal).
///
/// # Errors
/// The store's.
pub async fn strict(state: &crate::state::AppState, e: AuditEntry) -> Result<(), StoreError> {
    state.store.append_audit(e).await
}
