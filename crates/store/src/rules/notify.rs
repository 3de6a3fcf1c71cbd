//! Card operation notifications (contract section 9a): every card operation, whatever started
//! it, queues one item for the issuer backend in the transaction of the change, so that a
//! notification is never lost and never sent for a change that did not commit. Nothing is
//! queued for an issuer without a backend, or whose backend's `card_notifications` setting
//! leaves the operation out. Delivery claims many items at once under a tag and settles them
//! by it, so that the outbox costs few statements however many operations it carries.

use d1_domain::{ConsumerId, CorrelationId, IssuerId, OperationKind, OperationStatus};
use futures_util::future::try_join;

use super::trail::{self, Entry};
use crate::db::{locking, params, Db};
use crate::sql::notify as sql;
use crate::{
    CardNotifications, Delivery, NotificationClaim, NotificationRecord, NotificationSettlement,
    StoreError, StoreResult, TrailContext,
};

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

    /// What [`queue`] queues: the item, and the `card_notifications` setting other than
    /// `all` that takes it. `None` for an operation kind that is never notified.
    pub(crate) fn queued(&self) -> Option<(String, CardNotifications)> {
        let taken_by = if self.kind == OperationKind::ClickToPayEnrolment {
            CardNotifications::ClickToPay
        } else {
            CardNotifications::All
        };
        Some((self.item()?, taken_by))
    }

    /// The item of the `{"operations": [...]}` envelope, for a card operation kind.
    fn item(&self) -> Option<String> {
        let item = Item {
            operation_id: self.operation_id,
            operation: self.kind.notified_as()?,
            status: self.status.as_str(),
            start_time: d1_domain::clock::rfc3339(self.start_time),
            card_id: self.card_id,
            consumer_id: self.consumer_id.as_str(),
            reason_code: self.reason_code,
            end_time: self.end_time.map(d1_domain::clock::rfc3339),
        };
        serde_json::to_string(&item).ok()
    }
}

/// An item as the issuer backend reads it [D1 names the first five fields].
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Item<'a> {
    operation_id: &'a str,
    operation: &'static str,
    status: &'static str,
    start_time: String,
    card_id: &'a str,
    consumer_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<String>,
}

/// Records a synchronous card operation that commits at `now`: its trail entry on the
/// consumer `consumer_ref` and its notification, in the one transaction; the operation id
/// both carry.
pub(crate) async fn record_card_operation<D: Db>(
    db: &D,
    issuer: &IssuerId,
    consumer: (i64, &ConsumerId),
    entry: &Entry<'_>,
    trail: &TrailContext,
    now: i64,
) -> StoreResult<String> {
    let operation_id = trail::operation_id();
    record_card_operation_as(db, issuer, consumer, entry, &operation_id, trail, now).await?;
    Ok(operation_id)
}

/// [`record_card_operation`] under `operation_id` ([`trail::operation_id`]), for a caller
/// that sends a statement carrying the id with it. The trail entry and the notification (where
/// the issuer's backend takes it) go out together ([`Db`]).
pub(crate) async fn record_card_operation_as<D: Db>(
    db: &D,
    issuer: &IssuerId,
    consumer: (i64, &ConsumerId),
    entry: &Entry<'_>,
    operation_id: &str,
    trail: &TrailContext,
    now: i64,
) -> StoreResult<()> {
    let (consumer_ref, consumer_id) = consumer;
    let event = CardEvent::succeeded(issuer, consumer_id, entry, operation_id, now);
    let event = event.caused_by(trail);
    try_join(
        trail::record_as(db, consumer_ref, operation_id, entry, trail, now),
        queue(db, &event, now),
    )
    .await?;
    Ok(())
}

/// Queues the notification of `event` where its issuer's backend takes it: a backend is
/// set, and its `card_notifications` setting is `all`, or `click-to-pay` for an enrolment.
/// One statement, whether or not it queues anything.
pub(crate) async fn queue<D: Db>(db: &D, event: &CardEvent<'_>, now: i64) -> StoreResult<()> {
    let Some((item, taken_by)) = event.queued() else {
        return Ok(());
    };
    db.exec(
        &sql::QUEUE,
        params![
            event.issuer.as_str(),
            event.card_id,
            event.operation_id,
            &item,
            event.correlation_id,
            now,
            CardNotifications::All.as_str(),
            taken_by.as_str(),
        ],
    )
    .await?;
    Ok(())
}

/// Whether any item is due at `now`.
pub(crate) async fn due<D: Db>(db: &D, now: i64) -> StoreResult<bool> {
    Ok(db.query_opt(&sql::ANY_DUE, params![now]).await?.is_some())
}

/// Leases up to `limit` due items for `lease_ms` under a fresh tag, in one statement.
pub(crate) async fn claim<D: Db>(
    db: &D,
    lease_ms: i64,
    limit: u32,
    now: i64,
) -> StoreResult<NotificationClaim> {
    // Never 0, the tag of an unclaimed row.
    let tag = i64::from_ne_bytes(
        uuid::Uuid::new_v4().as_bytes()[..8]
            .try_into()
            .unwrap_or([1; 8]),
    ) | 1;
    let statement = locking(db, &sql::CLAIM, &sql::LOCK_CLAIM);
    let rows = db
        .query(statement, params![now + lease_ms, tag, now, limit])
        .await?;
    let mut items = Vec::with_capacity(rows.len());
    for mut n in rows {
        let id = n.int(0)?;
        let record = (|| {
            Ok::<_, StoreError>(NotificationRecord {
                id,
                issuer_id: n.parsed(1, IssuerId::parse)?,
                card_id: n.text(2)?,
                operation_id: n.text(3)?,
                item: n.text(4)?,
                correlation_id: n.opt_text(5)?,
                attempts: n.int_as(6)?,
                created_at: n.int(7)?,
            })
        })();
        // As for jobs: a row that does not decode is skipped, leased, and holds back no other.
        match record {
            Ok(record) => items.push(record),
            Err(e) => {
                tracing::error!(notification = id, error = %e, "a notification does not decode; skipped");
                db.exec(&sql::UNCLAIM, params![id]).await?;
            }
        }
    }
    items.sort_by_key(|n| n.id);
    Ok(NotificationClaim { tag, items })
}

/// Records how the delivery of a claim's items ended.
pub(crate) async fn settle<D: Db>(db: &D, s: &NotificationSettlement) -> StoreResult<()> {
    for (id, delivery) in &s.undelivered {
        match *delivery {
            Delivery::Delivered => {}
            Delivery::Retry(at) => {
                db.exec(&sql::RETRY, params![at, *id, s.tag]).await?;
            }
            Delivery::Dead => {
                db.exec(&sql::MARK_OPERATION_DEAD, params![*id, s.tag])
                    .await?;
                db.exec(&sql::MARK_DEAD, params![*id, s.tag]).await?;
            }
        }
    }
    db.exec(&sql::DELIVERED, params![s.ids.0, s.ids.1, s.tag])
        .await?;
    Ok(())
}

/// Voids every lease: at the start of the only node a backend can have (SQLite).
pub(crate) async fn release_leases<D: Db>(db: &D) -> StoreResult<()> {
    db.exec(&sql::RELEASE_LEASES, params![]).await?;
    Ok(())
}
