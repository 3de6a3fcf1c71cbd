//! Consumer use cases on PostgreSQL. A write locks the consumer's row (`FOR UPDATE`) before
//! it reads anything it will act on, so that two nodes writing one consumer take turns.

use d1_domain::{
    ConsumerId, ConsumerState, IssuerId, OperationKind, OperationStatus, PersonalInformation,
    PiSource,
};
use deadpool_postgres::GenericClient;

use super::transaction::{exec, row, rows, Contended};
use crate::rows::ConsumerRow;
use crate::vault::{FreshConsumer, Vault};
use crate::{
    ChangeOutcome, ConsumerView, DeleteConsumer, OperationRecord, OperationsPage, RegisterConsumer,
    RegisterOutcome, StoreError, StoreResult, TrailContext, UpdateConsumer,
};

const COLUMNS: &str =
    "SELECT id, state, pi_source, wrapped_key, pi, created_at, updated_at, generation
     FROM consumers WHERE issuer_id = $1 AND consumer_id = $2";

fn read(r: &tokio_postgres::Row) -> ConsumerRow {
    ConsumerRow {
        id: r.get(0),
        state: ConsumerState::parse(r.get(1)).unwrap_or(ConsumerState::Deleted),
        pi_source: PiSource::parse(r.get(2)).unwrap_or(PiSource::Issuer),
        wrapped_key: r.get(3),
        pi: r.get(4),
        created_at: r.get(5),
        updated_at: r.get(6),
        generation: r.get(7),
    }
}

/// Reads a consumer without locking it.
pub(super) async fn find(
    c: &impl GenericClient,
    issuer: &IssuerId,
    consumer: &ConsumerId,
) -> StoreResult<Option<ConsumerRow>> {
    let found = row(c, COLUMNS, &[&issuer.as_str(), &consumer.as_str()]).await?;
    Ok(found.as_ref().map(read))
}

/// Reads a consumer and locks its row until the transaction ends.
pub(super) async fn lock(
    c: &impl GenericClient,
    issuer: &IssuerId,
    consumer: &ConsumerId,
) -> StoreResult<Option<ConsumerRow>> {
    let found = row(
        c,
        &format!("{COLUMNS} FOR UPDATE"),
        &[&issuer.as_str(), &consumer.as_str()],
    )
    .await?;
    Ok(found.as_ref().map(read))
}

/// What one trail entry records beyond its kind.
pub(super) struct Entry<'a> {
    pub kind: OperationKind,
    pub card_id: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub reason_code: Option<&'a str>,
}

impl Entry<'static> {
    pub(super) fn register() -> Self {
        Self::of(OperationKind::Register)
    }

    fn of(kind: OperationKind) -> Self {
        Self {
            kind,
            card_id: None,
            reason: None,
            reason_code: None,
        }
    }
}

pub(super) async fn record(
    c: &impl GenericClient,
    consumer_ref: i64,
    entry: &Entry<'_>,
    trail: &TrailContext,
    now: i64,
) -> StoreResult<()> {
    let operation_id = uuid::Uuid::now_v7();
    exec(
        c,
        "INSERT INTO operations (consumer_ref, operation_id, operation, status, start_time, end_time,
                                 card_id, reason, reason_code, correlation_id, user_id)
         VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9, $10)",
        &[
            &consumer_ref,
            &operation_id,
            &entry.kind.as_str(),
            &OperationStatus::Successful.as_str(),
            &now,
            &entry.card_id,
            &entry.reason,
            &entry.reason_code,
            &trail
                .correlation_id
                .as_ref()
                .map(d1_domain::CorrelationId::as_str),
            &trail.user_id.as_ref().map(d1_domain::UserId::as_str),
        ],
    )
    .await?;
    Ok(())
}

/// Gives a deleted consumerId a fresh life in its existing (locked) row.
pub(super) async fn restart(
    c: &impl GenericClient,
    id: i64,
    fresh: &FreshConsumer,
    source: PiSource,
    now: i64,
) -> StoreResult<()> {
    exec(
        c,
        "UPDATE consumers SET state = 'ACTIVE', pi_source = $2, wrapped_key = $3, pi = $4,
                              created_at = $5, updated_at = $5, generation = generation + 1
         WHERE id = $1",
        &[
            &id,
            &source.as_str(),
            &fresh.wrapped_key,
            &fresh.sealed_pi,
            &now,
        ],
    )
    .await?;
    Ok(())
}

/// Inserts a new consumer unless its id is taken; returns the new row's id.
pub(super) async fn insert_new(
    c: &impl GenericClient,
    issuer: &IssuerId,
    consumer: &ConsumerId,
    fresh: &FreshConsumer,
    source: PiSource,
    now: i64,
) -> StoreResult<Option<i64>> {
    let inserted = row(
        c,
        "INSERT INTO consumers (issuer_id, consumer_id, state, pi_source, wrapped_key, pi,
                                created_at, updated_at)
         VALUES ($1, $2, 'ACTIVE', $3, $4, $5, $6, $6)
         ON CONFLICT (issuer_id, consumer_id) DO NOTHING RETURNING id",
        &[
            &issuer.as_str(),
            &consumer.as_str(),
            &source.as_str(),
            &fresh.wrapped_key,
            &fresh.sealed_pi,
            &now,
        ],
    )
    .await?;
    Ok(inserted.map(|r| r.get(0)))
}

/// Replaces an active consumer's PI under its data key; false when nothing changes.
async fn replace_pi(
    c: &impl GenericClient,
    vault: &Vault,
    issuer: &IssuerId,
    consumer: &ConsumerId,
    row: &ConsumerRow,
    pi: &PersonalInformation,
    now: i64,
) -> StoreResult<bool> {
    let Some(sealed) = row.resealed(vault, issuer, consumer, pi)? else {
        return Ok(false);
    };
    exec(
        c,
        "UPDATE consumers SET pi_source = 'STORED', pi = $2, updated_at = $3 WHERE id = $1",
        &[&row.id, &sealed, &now],
    )
    .await?;
    Ok(true)
}

pub(super) async fn register(
    c: &impl GenericClient,
    vault: &Vault,
    cmd: &RegisterConsumer,
    fresh: &FreshConsumer,
    now: i64,
) -> StoreResult<RegisterOutcome> {
    let source = if cmd.pi.is_some() {
        PiSource::Stored
    } else {
        PiSource::Issuer
    };
    if let Some(id) = insert_new(c, &cmd.issuer_id, &cmd.consumer_id, fresh, source, now).await? {
        record(c, id, &Entry::register(), &cmd.trail, now).await?;
        return Ok(RegisterOutcome::Created);
    }
    // The insert waited for any transaction inserting the same id, so the row is visible.
    let row = lock(c, &cmd.issuer_id, &cmd.consumer_id)
        .await?
        .ok_or_else(|| StoreError::Other(Contended.into()))?;
    if row.state == ConsumerState::Deleted {
        restart(c, row.id, fresh, source, now).await?;
        record(c, row.id, &Entry::register(), &cmd.trail, now).await?;
        return Ok(RegisterOutcome::Created);
    }
    match &cmd.pi {
        Some(pi)
            if replace_pi(c, vault, &cmd.issuer_id, &cmd.consumer_id, &row, pi, now).await? =>
        {
            record(c, row.id, &Entry::register(), &cmd.trail, now).await?;
            super::clicktopay::queue_sync(c, &cmd.issuer_id, row.id, now).await?;
            Ok(RegisterOutcome::Updated)
        }
        _ => Ok(RegisterOutcome::Unchanged),
    }
}

pub(super) async fn update(
    c: &impl GenericClient,
    vault: &Vault,
    cmd: &UpdateConsumer,
    now: i64,
) -> StoreResult<ChangeOutcome> {
    let Some(row) = lock(c, &cmd.issuer_id, &cmd.consumer_id).await? else {
        return Ok(ChangeOutcome::NotFound);
    };
    if row.state == ConsumerState::Deleted {
        return Ok(ChangeOutcome::Deleted);
    }
    if !replace_pi(
        c,
        vault,
        &cmd.issuer_id,
        &cmd.consumer_id,
        &row,
        &cmd.pi,
        now,
    )
    .await?
    {
        return Ok(ChangeOutcome::Unchanged);
    }
    record(
        c,
        row.id,
        &Entry::of(OperationKind::Update),
        &cmd.trail,
        now,
    )
    .await?;
    super::clicktopay::queue_sync(c, &cmd.issuer_id, row.id, now).await?;
    Ok(ChangeOutcome::Applied)
}

pub(super) async fn delete(
    c: &impl GenericClient,
    cmd: &DeleteConsumer,
    now: i64,
) -> StoreResult<ChangeOutcome> {
    let Some(row) = lock(c, &cmd.issuer_id, &cmd.consumer_id).await? else {
        return Ok(ChangeOutcome::NotFound);
    };
    if row.state == ConsumerState::Deleted {
        return Ok(ChangeOutcome::Unchanged);
    }
    // Destroying the wrapped data key is what makes the PI and card data unrecoverable.
    exec(
        c,
        "UPDATE consumers SET state = 'DELETED', wrapped_key = NULL, pi = NULL, updated_at = $2
         WHERE id = $1",
        &[&row.id, &now],
    )
    .await?;
    let entry = Entry {
        kind: OperationKind::Delete,
        card_id: None,
        reason: cmd.reason.reason(),
        reason_code: Some(cmd.reason.code().as_str()),
    };
    record(c, row.id, &entry, &cmd.trail, now).await?;
    super::cards::delete_for_consumer(c, row.id, row.generation, &cmd.trail, now).await?;
    super::clicktopay::queue_sync(c, &cmd.issuer_id, row.id, now).await?;
    Ok(ChangeOutcome::Applied)
}

pub(super) async fn get(
    c: &impl GenericClient,
    vault: &Vault,
    issuer: &IssuerId,
    consumer: &ConsumerId,
) -> StoreResult<Option<ConsumerView>> {
    let Some(row) = find(c, issuer, consumer).await? else {
        return Ok(None);
    };
    row.view(vault, issuer, consumer).map(Some)
}

pub(super) async fn operations(
    c: &impl GenericClient,
    issuer: &IssuerId,
    consumer: &ConsumerId,
    limit: u32,
    before: Option<i64>,
) -> StoreResult<Option<OperationsPage>> {
    let Some(row) = find(c, issuer, consumer).await? else {
        return Ok(None);
    };
    let found = rows(
        c,
        "SELECT id, operation_id, operation, status, start_time, end_time, card_id, reason,
                reason_code, correlation_id, user_id
         FROM operations WHERE consumer_ref = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        &[
            &row.id,
            &before.unwrap_or(i64::MAX),
            &(i64::from(limit) + 1),
        ],
    )
    .await?;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let next = if found.len() > limit {
        found.get(limit.saturating_sub(1)).map(|r| r.get(0))
    } else {
        None
    };
    let operations = found
        .iter()
        .take(limit)
        .map(|r| OperationRecord {
            operation_id: r.get::<_, uuid::Uuid>(1).to_string(),
            operation: OperationKind::parse(r.get(2)).unwrap_or(OperationKind::Register),
            status: OperationStatus::parse(r.get(3)).unwrap_or(OperationStatus::Failed),
            start_time: r.get(4),
            end_time: r.get(5),
            card_id: r.get(6),
            reason: r.get(7),
            reason_code: r.get(8),
            correlation_id: r.get(9),
            user_id: r.get(10),
        })
        .collect();
    Ok(Some(OperationsPage { operations, next }))
}
