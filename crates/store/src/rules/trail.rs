//! The operations trail: one entry per fact, never PI, and the pages it is read in.

use d1_domain::{CorrelationId, OperationKind, OperationStatus, UserId};

use crate::db::{known, params, Db, Row};
use crate::sql::{clicktopay as c2p, consumers as sql};
use crate::{OperationRecord, OperationsPage, StoreResult, TrailContext};

/// What one trail entry records beyond its kind.
pub(crate) struct Entry<'a> {
    pub kind: OperationKind,
    pub card_id: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub reason_code: Option<&'a str>,
}

impl Entry<'static> {
    /// An entry with nothing but its kind.
    pub(crate) fn of(kind: OperationKind) -> Self {
        Self {
            kind,
            card_id: None,
            reason: None,
            reason_code: None,
        }
    }
}

impl<'a> Entry<'a> {
    /// An entry about a card.
    pub(crate) fn card(kind: OperationKind, card_id: &'a str) -> Self {
        Self {
            card_id: Some(card_id),
            ..Entry::of(kind)
        }
    }
}

/// A fresh operation id: a UUIDv7, so that the trail sorts by time.
pub(crate) fn operation_id() -> String {
    operation_uuid().hyphenated().to_string()
}

/// [`operation_id`] as a UUID, for a statement that binds it as one.
pub(crate) fn operation_uuid() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

/// Records a successful entry for the consumer `consumer_ref`, under a fresh operation id;
/// that id.
pub(crate) async fn record<D: Db>(
    db: &D,
    consumer_ref: i64,
    entry: &Entry<'_>,
    trail: &TrailContext,
    now: i64,
) -> StoreResult<String> {
    let operation_id = operation_id();
    record_as(db, consumer_ref, &operation_id, entry, trail, now).await?;
    Ok(operation_id)
}

/// Records a successful entry for the consumer `consumer_ref` under `operation_id`, which
/// the entry's notification (if any) carries too.
pub(crate) async fn record_as<D: Db>(
    db: &D,
    consumer_ref: i64,
    operation_id: &str,
    entry: &Entry<'_>,
    trail: &TrailContext,
    now: i64,
) -> StoreResult<()> {
    db.exec(
        &sql::RECORD,
        params![
            consumer_ref,
            operation_id,
            entry.kind.as_str(),
            OperationStatus::Successful.as_str(),
            now,
            entry.card_id,
            entry.reason,
            entry.reason_code,
            trail.correlation_id.as_ref().map(CorrelationId::as_str),
            trail.user_id.as_ref().map(UserId::as_str),
            trail
                .aggregator_id
                .as_ref()
                .map(d1_domain::IssuerId::as_str),
        ],
    )
    .await?;
    Ok(())
}

/// An entry as read back, from `first` on: operation_id, operation, status, start_time,
/// end_time, card_id, reason, reason_code, correlation_id, user_id, aggregator_id.
fn entry(r: &mut Row, first: usize) -> StoreResult<OperationRecord> {
    Ok(OperationRecord {
        operation_id: r.text(first)?,
        operation: r.parsed(first + 1, |s| known(OperationKind::parse(s)))?,
        status: r.parsed(first + 2, |s| known(OperationStatus::parse(s)))?,
        start_time: r.int(first + 3)?,
        end_time: r.opt_int(first + 4)?,
        card_id: r.opt_text(first + 5)?,
        reason: r.opt_text(first + 6)?,
        reason_code: r.opt_text(first + 7)?,
        correlation_id: r.opt_text(first + 8)?,
        user_id: r.opt_text(first + 9)?,
        aggregator_id: r.opt_text(first + 10)?,
    })
}

/// A page of the consumer `consumer_ref`'s trail, newest first, before the cursor `before`.
pub(crate) async fn page<D: Db>(
    db: &D,
    consumer_ref: i64,
    limit: u32,
    before: Option<i64>,
) -> StoreResult<OperationsPage> {
    let rows = db
        .query(
            &sql::PAGE,
            params![
                consumer_ref,
                before.unwrap_or(i64::MAX),
                i64::from(limit) + 1
            ],
        )
        .await?;
    let mut found = Vec::with_capacity(rows.len());
    for mut r in rows {
        found.push((r.int(0)?, entry(&mut r, 1)?));
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let next = if found.len() > limit {
        found.get(limit.saturating_sub(1)).map(|(id, _)| *id)
    } else {
        None
    };
    let operations = found.into_iter().take(limit).map(|(_, op)| op).collect();
    Ok(OperationsPage { operations, next })
}

/// `count` entries of a consumer's trail, newest first, from `offset` on (0 is the most
/// recent entry; an offset past the end gives none); `None` for an unknown consumer.
pub(crate) async fn at_offset<D: Db>(
    db: &D,
    issuer: &d1_domain::IssuerId,
    consumer: &d1_domain::ConsumerId,
    offset: u64,
    count: u32,
) -> StoreResult<Option<Vec<OperationRecord>>> {
    let Some(row) = super::consumers::find(db, issuer, consumer).await? else {
        return Ok(None);
    };
    let offset = i64::try_from(offset).unwrap_or(i64::MAX);
    let rows = db
        .query(&sql::PAGE_AT, params![row.id, i64::from(count), offset])
        .await?;
    rows.into_iter()
        .map(|mut r| entry(&mut r, 0))
        .collect::<StoreResult<Vec<_>>>()
        .map(Some)
}

/// One entry of an issuer's trail by its operation id. Every id is a UUID, so anything else
/// names no entry.
pub(crate) async fn operation<D: Db>(
    db: &D,
    issuer: &d1_domain::IssuerId,
    operation_id: &str,
) -> StoreResult<Option<OperationRecord>> {
    if uuid::Uuid::parse_str(operation_id).is_err() {
        return Ok(None);
    }
    match db
        .query_opt(&c2p::OPERATION, params![operation_id, issuer.as_str()])
        .await?
    {
        Some(mut r) => entry(&mut r, 0).map(Some),
        None => Ok(None),
    }
}
