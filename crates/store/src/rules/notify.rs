//! Card operation notifications (contract section 9a): every card operation, whatever started
//! it, queues one item for the issuer backend in the transaction of the change, so that a
//! notification is never lost and never sent for a change that did not commit. Nothing is
//! queued for an issuer without a backend.

use d1_domain::{ConsumerId, CorrelationId, IssuerId, OperationKind, OperationStatus};

use super::trail::Entry;
use crate::db::{params, Db};
use crate::sql::clicktopay as sql;
use crate::{StoreResult, TrailContext};

/// One card operation, as its notification item tells it. No PI in it.
pub(crate) struct CardEvent<'a> {
    pub issuer: &'a IssuerId,
    pub consumer_id: &'a ConsumerId,
    pub card_id: &'a str,
    /// The operation id of the trail entry, so the issuer can match and deduplicate.
    pub operation_id: &'a str,
    /// A card operation kind: one that [`OperationKind::notified_as`] names.
    pub kind: OperationKind,
    pub status: OperationStatus,
    pub start_time: i64,
    pub end_time: Option<i64>,
    pub reason_code: Option<&'a str>,
    /// The correlation id of the request that caused it, if it had one.
    pub correlation_id: Option<&'a str>,
}

impl<'a> CardEvent<'a> {
    /// A synchronous card operation that committed at `now`, as its trail `entry` tells it.
    pub(crate) fn succeeded(
        issuer: &'a IssuerId,
        consumer_id: &'a ConsumerId,
        entry: &Entry<'a>,
        operation_id: &'a str,
        now: i64,
    ) -> Self {
        Self {
            issuer,
            consumer_id,
            card_id: entry.card_id.unwrap_or_default(),
            operation_id,
            kind: entry.kind,
            status: OperationStatus::Successful,
            start_time: now,
            end_time: Some(now),
            reason_code: entry.reason_code,
            correlation_id: None,
        }
    }

    /// The event with the correlation id of the request that caused it.
    pub(crate) fn caused_by(self, trail: &'a TrailContext) -> Self {
        Self {
            correlation_id: trail.correlation_id.as_ref().map(CorrelationId::as_str),
            ..self
        }
    }

    /// The item of the `{"operations": [...]}` envelope.
    fn item(&self) -> Option<serde_json::Value> {
        let mut item = serde_json::json!({
            "operationId": self.operation_id,
            "operation": self.kind.notified_as()?,
            "status": self.status.as_str(),
            "startTime": d1_domain::clock::rfc3339(self.start_time),
            "cardId": self.card_id,
            "consumerId": self.consumer_id.as_str(),
        });
        if let Some(code) = self.reason_code {
            item["reasonCode"] = code.into();
        }
        if let Some(end) = self.end_time {
            item["endTime"] = d1_domain::clock::rfc3339(end).into();
        }
        Some(item)
    }
}

/// Queues the notification of `event`, unless its issuer has no backend to send it to.
pub(crate) async fn queue<D: Db>(db: &D, event: &CardEvent<'_>, now: i64) -> StoreResult<()> {
    let Some(item) = event.item() else {
        return Ok(());
    };
    if db
        .query_opt(&sql::BACKEND, params![event.issuer.as_str()])
        .await?
        .is_none()
    {
        return Ok(());
    }
    let body = serde_json::json!({ "operations": [item] }).to_string();
    db.exec(
        &sql::INSERT_NOTIFICATION,
        params![
            event.issuer.as_str(),
            event.card_id,
            event.operation_id,
            &body,
            now
        ],
    )
    .await?;
    Ok(())
}
