//! Consumer use cases: register, update, delete with its cascade, and the reads.

use d1_domain::{
    ConsumerId, ConsumerState, IssuerId, OperationKind, PersonalInformation, PiSource,
};

use super::clicktopay::queue_sync;
use super::notify;
use super::trail::{self, Entry};
use crate::db::{known, locking, params, Db, Row};
use crate::rows::ConsumerRow;
use crate::sql::{cards as card_sql, consumers as sql};
use crate::vault::{FreshConsumer, Vault};
use crate::{
    ChangeOutcome, ConsumerView, DeleteConsumer, OperationsPage, RegisterConsumer, RegisterOutcome,
    StoreResult, UpdateConsumer,
};

/// A consumer as [`sql::FIND`] and [`sql::LOCK`] read it.
pub(crate) fn consumer_row(mut r: Row) -> StoreResult<ConsumerRow> {
    Ok(ConsumerRow {
        id: r.int(0)?,
        state: r.parsed(1, |s| known(ConsumerState::parse(s)))?,
        pi_source: r.parsed(2, |s| known(PiSource::parse(s)))?,
        wrapped_key: r.opt_blob(3)?,
        pi: r.opt_blob(4)?,
        created_at: r.int(5)?,
        updated_at: r.int(6)?,
        generation: r.int(7)?,
    })
}

/// Reads a consumer without locking it.
pub(crate) async fn find<D: Db>(
    db: &D,
    issuer: &IssuerId,
    consumer: &ConsumerId,
) -> StoreResult<Option<ConsumerRow>> {
    db.query_opt(&sql::FIND, params![issuer.as_str(), consumer.as_str()])
        .await?
        .map(consumer_row)
        .transpose()
}

/// Reads a consumer for a write, locking its row until the transaction ends where rows are
/// locked: every write to a consumer, its cards and trail included, takes this lock first.
pub(crate) async fn lock<D: Db>(
    db: &D,
    issuer: &IssuerId,
    consumer: &ConsumerId,
) -> StoreResult<Option<ConsumerRow>> {
    let statement = locking(db, &sql::FIND, &sql::LOCK);
    db.query_opt(statement, params![issuer.as_str(), consumer.as_str()])
        .await?
        .map(consumer_row)
        .transpose()
}

/// Inserts a new consumer unless its consumerId is taken; the new row's id.
pub(crate) async fn insert_new<D: Db>(
    db: &D,
    issuer: &IssuerId,
    consumer: &ConsumerId,
    fresh: &FreshConsumer,
    source: PiSource,
    now: i64,
) -> StoreResult<Option<i64>> {
    db.insert_id(
        &sql::INSERT,
        &sql::INSERT_RETURNING_ID,
        params![
            issuer.as_str(),
            consumer.as_str(),
            source.as_str(),
            &fresh.wrapped_key,
            fresh.sealed_pi.as_ref(),
            now,
        ],
    )
    .await
}

/// Gives a deleted consumerId a fresh life in its existing (locked) row.
pub(crate) async fn restart<D: Db>(
    db: &D,
    id: i64,
    fresh: &FreshConsumer,
    source: PiSource,
    now: i64,
) -> StoreResult<()> {
    db.exec(
        &sql::RESTART,
        params![
            source.as_str(),
            &fresh.wrapped_key,
            fresh.sealed_pi.as_ref(),
            now,
            id,
        ],
    )
    .await?;
    Ok(())
}

/// Replaces an active consumer's PI under its data key; false when it equals the stored PI,
/// so that an identical retry writes nothing.
async fn replace_pi<D: Db>(
    db: &D,
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
    db.exec(&sql::REPLACE_PI, params![&sealed, now, row.id])
        .await?;
    Ok(true)
}

/// Register consumer. `fresh` was sealed in advance for the common case, a new consumerId;
/// an existing one takes the slower path and is read first.
pub(crate) async fn register<D: Db>(
    db: &D,
    vault: &Vault,
    cmd: &RegisterConsumer,
    fresh: &FreshConsumer,
    now: i64,
) -> StoreResult<RegisterOutcome> {
    let (issuer, consumer) = (&cmd.issuer_id, &cmd.consumer_id);
    let source = if cmd.pi.is_some() {
        PiSource::Stored
    } else {
        PiSource::Issuer
    };
    let registered = Entry::of(OperationKind::Register);
    if let Some(id) = insert_new(db, issuer, consumer, fresh, source, now).await? {
        trail::record(db, id, &registered, &cmd.trail, now).await?;
        return Ok(RegisterOutcome::Created);
    }
    // The insert waited for any transaction inserting the same id, so the row is visible.
    let row = lock(db, issuer, consumer)
        .await?
        .ok_or_else(|| db.lost_race())?;
    if row.state == ConsumerState::Deleted {
        restart(db, row.id, fresh, source, now).await?;
        trail::record(db, row.id, &registered, &cmd.trail, now).await?;
        return Ok(RegisterOutcome::Created);
    }
    let Some(pi) = &cmd.pi else {
        return Ok(RegisterOutcome::Unchanged);
    };
    if !replace_pi(db, vault, issuer, consumer, &row, pi, now).await? {
        return Ok(RegisterOutcome::Unchanged);
    }
    trail::record(db, row.id, &registered, &cmd.trail, now).await?;
    queue_sync(db, issuer, row.id, now).await?;
    Ok(RegisterOutcome::Updated)
}

/// Update consumer: the stored PI replaced whole.
pub(crate) async fn update<D: Db>(
    db: &D,
    vault: &Vault,
    cmd: &UpdateConsumer,
    now: i64,
) -> StoreResult<ChangeOutcome> {
    let (issuer, consumer) = (&cmd.issuer_id, &cmd.consumer_id);
    let Some(row) = lock(db, issuer, consumer).await? else {
        return Ok(ChangeOutcome::NotFound);
    };
    if row.state == ConsumerState::Deleted {
        return Ok(ChangeOutcome::Deleted);
    }
    if !replace_pi(db, vault, issuer, consumer, &row, &cmd.pi, now).await? {
        return Ok(ChangeOutcome::Unchanged);
    }
    let entry = Entry::of(OperationKind::Update);
    trail::record(db, row.id, &entry, &cmd.trail, now).await?;
    queue_sync(db, issuer, row.id, now).await?;
    Ok(ChangeOutcome::Applied)
}

/// Delete consumer: its data key destroyed, which makes its PI and card data unrecoverable,
/// every live card of its current life deleted, and a directory sync queued.
pub(crate) async fn delete<D: Db>(
    db: &D,
    cmd: &DeleteConsumer,
    now: i64,
) -> StoreResult<ChangeOutcome> {
    let Some(row) = lock(db, &cmd.issuer_id, &cmd.consumer_id).await? else {
        return Ok(ChangeOutcome::NotFound);
    };
    if row.state == ConsumerState::Deleted {
        return Ok(ChangeOutcome::Unchanged);
    }
    db.exec(&sql::SHRED, params![now, row.id]).await?;
    let entry = Entry {
        reason: cmd.reason.reason(),
        reason_code: Some(cmd.reason.code().as_str()),
        ..Entry::of(OperationKind::Delete)
    };
    trail::record(db, row.id, &entry, &cmd.trail, now).await?;
    delete_cards(db, cmd, row.id, row.generation, now).await?;
    queue_sync(db, &cmd.issuer_id, row.id, now).await?;
    Ok(ChangeOutcome::Applied)
}

/// The cascade of a delete: every live card of the consumer's life `generation`, its sealed
/// data shredded, and one CARD_DELETE entry and one DELETE notification per card.
async fn delete_cards<D: Db>(
    db: &D,
    cmd: &DeleteConsumer,
    consumer_ref: i64,
    generation: i64,
    now: i64,
) -> StoreResult<()> {
    let deleted = db
        .query(
            &card_sql::DELETE_OF_CONSUMER,
            params![now, consumer_ref, generation],
        )
        .await?;
    for mut r in deleted {
        let card_id = r.text(0)?;
        let entry = Entry::card(OperationKind::CardDelete, &card_id);
        let owner = (consumer_ref, &cmd.consumer_id);
        notify::record_card_operation(db, &cmd.issuer_id, owner, &entry, &cmd.trail, now).await?;
    }
    Ok(())
}

/// Get consumer.
pub(crate) async fn get<D: Db>(
    db: &D,
    vault: &Vault,
    issuer: &IssuerId,
    consumer: &ConsumerId,
) -> StoreResult<Option<ConsumerView>> {
    let Some(row) = find(db, issuer, consumer).await? else {
        return Ok(None);
    };
    row.view(vault, issuer, consumer).map(Some)
}

/// A page of a consumer's trail; `None` for an unknown consumer.
pub(crate) async fn operations<D: Db>(
    db: &D,
    issuer: &IssuerId,
    consumer: &ConsumerId,
    limit: u32,
    before: Option<i64>,
) -> StoreResult<Option<OperationsPage>> {
    let Some(row) = find(db, issuer, consumer).await? else {
        return Ok(None);
    };
    trail::page(db, row.id, limit, before).await.map(Some)
}
