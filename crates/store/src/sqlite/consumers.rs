//! Consumer use cases on SQLite, run inside the writer's transaction or on a reader.

use d1_domain::{ConsumerId, ConsumerState, IssuerId, OperationKind, OperationStatus, PiSource};
use rusqlite::{params, Connection, OptionalExtension};

use super::sql;
use crate::rows::ConsumerRow;
use crate::vault::{FreshConsumer, Vault};
use crate::{
    ChangeOutcome, ConsumerView, DeleteConsumer, OperationRecord, OperationsPage, RegisterConsumer,
    RegisterOutcome, StoreError, StoreResult, TrailContext, UpdateConsumer,
};

pub(super) fn find(
    conn: &Connection,
    issuer: &IssuerId,
    consumer: &ConsumerId,
) -> StoreResult<Option<ConsumerRow>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, state, pi_source, wrapped_key, pi, created_at, updated_at, generation
             FROM consumers WHERE issuer_id = ?1 AND consumer_id = ?2",
        )
        .map_err(sql)?;
    stmt.query_row(params![issuer.as_str(), consumer.as_str()], |r| {
        let state: String = r.get(1)?;
        let source: String = r.get(2)?;
        Ok(ConsumerRow {
            id: r.get(0)?,
            state: ConsumerState::parse(&state).unwrap_or(ConsumerState::Deleted),
            pi_source: PiSource::parse(&source).unwrap_or(PiSource::Issuer),
            wrapped_key: r.get(3)?,
            pi: r.get(4)?,
            created_at: r.get(5)?,
            updated_at: r.get(6)?,
            generation: r.get(7)?,
        })
    })
    .optional()
    .map_err(sql)
}

/// What one trail entry records beyond its kind.
pub(super) struct Entry<'a> {
    pub kind: OperationKind,
    pub card_id: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub reason_code: Option<&'a str>,
}

pub(super) fn record(
    conn: &Connection,
    consumer_ref: i64,
    entry: &Entry<'_>,
    trail: &TrailContext,
    now: i64,
) -> StoreResult<String> {
    let operation_id = uuid::Uuid::now_v7().to_string();
    conn.prepare_cached(
        "INSERT INTO operations (consumer_ref, operation_id, operation, status, start_time, end_time,
                                 card_id, reason, reason_code, correlation_id, user_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut s| {
        s.execute(params![
            consumer_ref,
            operation_id,
            entry.kind.as_str(),
            OperationStatus::Successful.as_str(),
            now,
            entry.card_id,
            entry.reason,
            entry.reason_code,
            trail.correlation_id.as_ref().map(d1_domain::CorrelationId::as_str),
            trail.user_id.as_ref().map(d1_domain::UserId::as_str),
        ])
    })
    .map_err(sql)?;
    Ok(operation_id)
}

pub(super) fn register_entry() -> Entry<'static> {
    Entry {
        kind: OperationKind::Register,
        card_id: None,
        reason: None,
        reason_code: None,
    }
}

/// Gives a deleted consumerId a fresh life in its existing row: new data key, new PI, ACTIVE.
pub(super) fn restart(
    conn: &Connection,
    id: i64,
    fresh: &FreshConsumer,
    source: PiSource,
    now: i64,
) -> StoreResult<()> {
    conn.prepare_cached(
        "UPDATE consumers SET state = 'ACTIVE', pi_source = ?2, wrapped_key = ?3, pi = ?4,
                              created_at = ?5, updated_at = ?5, generation = generation + 1
         WHERE id = ?1",
    )
    .and_then(|mut s| {
        s.execute(params![
            id,
            source.as_str(),
            fresh.wrapped_key,
            fresh.sealed_pi,
            now
        ])
    })
    .map_err(sql)?;
    Ok(())
}

/// Inserts a new consumer unless its id is taken; returns the new row's id.
pub(super) fn insert_new(
    conn: &Connection,
    issuer: &IssuerId,
    consumer: &ConsumerId,
    fresh: &FreshConsumer,
    source: PiSource,
    now: i64,
) -> StoreResult<Option<i64>> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO consumers (issuer_id, consumer_id, state, pi_source, wrapped_key, pi, created_at, updated_at)
             VALUES (?1, ?2, 'ACTIVE', ?3, ?4, ?5, ?6, ?6)
             ON CONFLICT (issuer_id, consumer_id) DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![issuer.as_str(), consumer.as_str(), source.as_str(), fresh.wrapped_key, fresh.sealed_pi, now])
        })
        .map_err(sql)?;
    Ok((inserted == 1).then(|| conn.last_insert_rowid()))
}

/// Replaces an active consumer's PI under its data key. Returns false when the new PI equals
/// the stored one, so an identical retry writes nothing.
fn replace_pi(
    conn: &Connection,
    vault: &Vault,
    issuer: &IssuerId,
    consumer: &ConsumerId,
    row: &ConsumerRow,
    pi: &d1_domain::PersonalInformation,
    now: i64,
) -> StoreResult<bool> {
    let Some(sealed) = row.resealed(vault, issuer, consumer, pi)? else {
        return Ok(false);
    };
    conn.prepare_cached(
        "UPDATE consumers SET pi_source = 'STORED', pi = ?2, updated_at = ?3 WHERE id = ?1",
    )
    .and_then(|mut s| s.execute(params![row.id, sealed, now]))
    .map_err(sql)?;
    Ok(true)
}

/// Registers a consumer. `fresh` was sealed in advance for the common case, a new consumerId;
/// an existing one takes the slower path and is read first.
pub(super) fn register(
    conn: &Connection,
    vault: &Vault,
    cmd: &RegisterConsumer,
    fresh: FreshConsumer,
    now: i64,
) -> StoreResult<RegisterOutcome> {
    let source = if cmd.pi.is_some() {
        PiSource::Stored
    } else {
        PiSource::Issuer
    };
    if let Some(id) = insert_new(conn, &cmd.issuer_id, &cmd.consumer_id, &fresh, source, now)? {
        record(conn, id, &register_entry(), &cmd.trail, now)?;
        return Ok(RegisterOutcome::Created);
    }
    let row = find(conn, &cmd.issuer_id, &cmd.consumer_id)?.ok_or_else(|| {
        StoreError::Other(anyhow::anyhow!("consumer vanished inside its transaction"))
    })?;
    if row.state == ConsumerState::Deleted {
        restart(conn, row.id, &fresh, source, now)?;
        record(conn, row.id, &register_entry(), &cmd.trail, now)?;
        return Ok(RegisterOutcome::Created);
    }
    match &cmd.pi {
        Some(pi) if replace_pi(conn, vault, &cmd.issuer_id, &cmd.consumer_id, &row, pi, now)? => {
            record(conn, row.id, &register_entry(), &cmd.trail, now)?;
            super::clicktopay::queue_sync(conn, &cmd.issuer_id, row.id, now)?;
            Ok(RegisterOutcome::Updated)
        }
        _ => Ok(RegisterOutcome::Unchanged),
    }
}

pub(super) fn update(
    conn: &Connection,
    vault: &Vault,
    cmd: &UpdateConsumer,
    now: i64,
) -> StoreResult<ChangeOutcome> {
    let Some(row) = find(conn, &cmd.issuer_id, &cmd.consumer_id)? else {
        return Ok(ChangeOutcome::NotFound);
    };
    if row.state == ConsumerState::Deleted {
        return Ok(ChangeOutcome::Deleted);
    }
    if !replace_pi(
        conn,
        vault,
        &cmd.issuer_id,
        &cmd.consumer_id,
        &row,
        &cmd.pi,
        now,
    )? {
        return Ok(ChangeOutcome::Unchanged);
    }
    let entry = Entry {
        kind: OperationKind::Update,
        card_id: None,
        reason: None,
        reason_code: None,
    };
    record(conn, row.id, &entry, &cmd.trail, now)?;
    super::clicktopay::queue_sync(conn, &cmd.issuer_id, row.id, now)?;
    Ok(ChangeOutcome::Applied)
}

pub(super) fn delete(
    conn: &Connection,
    cmd: &DeleteConsumer,
    now: i64,
) -> StoreResult<ChangeOutcome> {
    let Some(row) = find(conn, &cmd.issuer_id, &cmd.consumer_id)? else {
        return Ok(ChangeOutcome::NotFound);
    };
    if row.state == ConsumerState::Deleted {
        return Ok(ChangeOutcome::Unchanged);
    }
    // Destroying the wrapped data key is what makes the PI (and card data) unrecoverable;
    // the ciphertexts go too, and secure_delete zeroes the freed bytes.
    conn.prepare_cached("UPDATE consumers SET state = 'DELETED', wrapped_key = NULL, pi = NULL, updated_at = ?2 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![row.id, now]))
        .map_err(sql)?;
    let entry = Entry {
        kind: OperationKind::Delete,
        card_id: None,
        reason: cmd.reason.reason(),
        reason_code: Some(cmd.reason.code().as_str()),
    };
    record(conn, row.id, &entry, &cmd.trail, now)?;
    super::cards::delete_for_consumer(conn, row.id, row.generation, &cmd.trail, now)?;
    super::clicktopay::queue_sync(conn, &cmd.issuer_id, row.id, now)?;
    Ok(ChangeOutcome::Applied)
}

pub(super) fn get(
    conn: &Connection,
    vault: &Vault,
    issuer: &IssuerId,
    consumer: &ConsumerId,
) -> StoreResult<Option<ConsumerView>> {
    let Some(row) = find(conn, issuer, consumer)? else {
        return Ok(None);
    };
    row.view(vault, issuer, consumer).map(Some)
}

pub(super) fn operations(
    conn: &Connection,
    issuer: &IssuerId,
    consumer: &ConsumerId,
    limit: u32,
    before: Option<i64>,
) -> StoreResult<Option<OperationsPage>> {
    let Some(row) = find(conn, issuer, consumer)? else {
        return Ok(None);
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, operation_id, operation, status, start_time, end_time, card_id, reason, reason_code,
                    correlation_id, user_id
             FROM operations WHERE consumer_ref = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
        )
        .map_err(sql)?;
    let rows = stmt
        .query_map(
            params![row.id, before.unwrap_or(i64::MAX), i64::from(limit) + 1],
            |r| {
                let kind: String = r.get(2)?;
                let status: String = r.get(3)?;
                Ok((
                    r.get::<_, i64>(0)?,
                    OperationRecord {
                        operation_id: r.get(1)?,
                        operation: OperationKind::parse(&kind).unwrap_or(OperationKind::Register),
                        status: OperationStatus::parse(&status).unwrap_or(OperationStatus::Failed),
                        start_time: r.get(4)?,
                        end_time: r.get(5)?,
                        card_id: r.get(6)?,
                        reason: r.get(7)?,
                        reason_code: r.get(8)?,
                        correlation_id: r.get(9)?,
                        user_id: r.get(10)?,
                    },
                ))
            },
        )
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(sql)?;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let next = if rows.len() > limit {
        rows.get(limit.saturating_sub(1)).map(|(id, _)| *id)
    } else {
        None
    };
    let operations = rows.into_iter().take(limit).map(|(_, op)| op).collect();
    Ok(Some(OperationsPage { operations, next }))
}
