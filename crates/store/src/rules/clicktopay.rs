//! Click to Pay: the issuer backend's settings, enrolment acceptance, the directory sync a
//! change queues, and job claiming and finishing. Jobs are claimed with a lease (and on
//! PostgreSQL `FOR UPDATE SKIP LOCKED`), so several nodes share the work and a node that dies
//! mid-job only delays it by the lease. An enrolment's end is notified through
//! [`super::notify`], like every card operation.

use d1_domain::{
    ConsumerId, ConsumerState, CorrelationId, IssuerId, OperationKind, OperationStatus, UserId,
};

use super::notify::{self, CardEvent};
use crate::db::{known, locking, params, Db};
use crate::jobs::{EnrolTarget, JobRow};
use crate::sql::{clicktopay as sql, issuers as issuer_sql};
use crate::{
    BackendRecord, CardNotifications, CardState, ClaimedJob, EnrolmentDetails, EnrolmentStart,
    FinishJob, JobOutcome, StartEnrolment, StoreError, StoreResult, Vault,
};

/// Sets where an issuer's backend is; `NotFound` for an unknown issuer.
pub(crate) async fn set_backend<D: Db>(db: &D, b: &BackendRecord, now: i64) -> StoreResult<()> {
    let issuer = b.issuer_id.as_str();
    if db
        .query_opt(&issuer_sql::EXISTS, params![issuer])
        .await?
        .is_none()
    {
        return Err(StoreError::NotFound);
    }
    db.exec(
        &sql::UPSERT_BACKEND,
        params![
            issuer,
            &b.url,
            b.client_id.as_ref(),
            b.sealed_secret.as_ref(),
            b.send_card_id,
            b.pi_cache_ttl_s,
            b.card_notifications.as_str(),
            b.notification_batch_size,
            now,
        ],
    )
    .await?;
    Ok(())
}

/// An issuer's backend, if one is set.
pub(crate) async fn backend<D: Db>(
    db: &D,
    issuer: &IssuerId,
) -> StoreResult<Option<BackendRecord>> {
    let Some(mut r) = db
        .query_opt(&sql::BACKEND, params![issuer.as_str()])
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(BackendRecord {
        issuer_id: issuer.clone(),
        url: r.text(0)?,
        client_id: r.opt_text(1)?,
        sealed_secret: r.opt_blob(2)?,
        send_card_id: r.bool(3)?,
        pi_cache_ttl_s: r.int_as(4)?,
        card_notifications: r.parsed(5, |s| known(CardNotifications::parse(s)))?,
        notification_batch_size: r.int_as(6)?,
    }))
}

/// Accepts an enrolment: a PENDING trail entry and its job, unless the card has a PENDING or
/// SUCCESSFUL enrolment already.
pub(crate) async fn start_enrolment<D: Db>(
    db: &D,
    vault: &Vault,
    cmd: &StartEnrolment,
    now: i64,
) -> StoreResult<EnrolmentStart> {
    let (issuer, card) = (cmd.issuer_id.as_str(), cmd.card_id.as_str());
    let statement = locking(db, &sql::ENROL_TARGET, &sql::LOCK_ENROL_TARGET);
    let Some(mut r) = db.query_opt(statement, params![issuer, card]).await? else {
        return Ok(EnrolmentStart::CardNotFound);
    };
    let target = EnrolTarget {
        card_state: r.parsed(0, |s| known(CardState::parse(s)))?,
        consumer_ref: r.int(1)?,
        consumer_id: r.parsed(2, |s| ConsumerId::parse(s).map(|(c, _)| c))?,
        consumer_state: r.parsed(3, |s| known(ConsumerState::parse(s)))?,
        wrapped_key: r.opt_blob(4)?,
    };
    if !target.active() {
        return Ok(EnrolmentStart::NotActive);
    }
    let existing = db
        .query_opt(&sql::EXISTING_ENROLMENT, params![target.consumer_ref, card])
        .await?;
    if let Some(mut r) = existing {
        let status = r.parsed(1, |s| known(OperationStatus::parse(s)))?;
        return Ok(EnrolmentStart::Existing(r.text(0)?, status));
    }
    let details = EnrolmentDetails {
        billing_address: cmd.billing.clone(),
        cardholder_name: cmd.cardholder_name.as_ref().map(|n| n.as_str().to_owned()),
    };
    let billing = target.seal_details(vault, &cmd.issuer_id, &details)?;
    let operation_id = super::trail::operation_id();
    db.exec(
        &sql::PENDING_ENROLMENT,
        params![
            target.consumer_ref,
            &operation_id,
            now,
            card,
            cmd.reason.reason(),
            cmd.reason.code().as_str(),
            cmd.trail.correlation_id.as_ref().map(CorrelationId::as_str),
            cmd.trail.user_id.as_ref().map(UserId::as_str),
            cmd.trail
                .aggregator_id
                .as_ref()
                .map(d1_domain::IssuerId::as_str),
        ],
    )
    .await?;
    db.exec(
        &sql::ENROL_JOB,
        params![
            issuer,
            target.consumer_ref,
            &operation_id,
            card,
            billing.as_ref(),
            &cmd.correlation_id,
            now,
        ],
    )
    .await?;
    Ok(EnrolmentStart::Started(operation_id))
}

/// Queues a directory sync of the consumer `consumer_ref` if it has ever been enrolled.
pub(crate) async fn queue_sync<D: Db>(
    db: &D,
    issuer: &IssuerId,
    consumer_ref: i64,
    now: i64,
) -> StoreResult<()> {
    db.exec(
        &sql::QUEUE_SYNC,
        params![issuer.as_str(), consumer_ref, now],
    )
    .await?;
    Ok(())
}

/// Whether any job may be claimed at `now`.
pub(crate) async fn job_due<D: Db>(db: &D, now: i64) -> StoreResult<bool> {
    Ok(db
        .query_opt(&sql::ANY_CLAIMABLE, params![now])
        .await?
        .is_some())
}

/// Leases up to `limit` due jobs for `lease_ms`, oldest first, with what each needs opened.
pub(crate) async fn claim_jobs<D: Db>(
    db: &D,
    vault: &Vault,
    lease_ms: i64,
    limit: u32,
    now: i64,
) -> StoreResult<Vec<ClaimedJob>> {
    let statement = locking(db, &sql::CLAIMABLE, &sql::LOCK_CLAIMABLE);
    let due = db.query(statement, params![now, limit]).await?;
    let mut jobs = Vec::with_capacity(due.len());
    for mut r in due {
        let id = r.int(0)?;
        db.exec(&sql::LEASE_JOB, params![now + lease_ms, id])
            .await?;
        let row = db
            .query_opt(&sql::JOB, params![id])
            .await?
            .ok_or_else(|| db.lost_race())?;
        // A row that does not decode stays leased and is skipped, so that it holds back no
        // other job (and, on SQLite, fails no group commit); its lease runs out and the next
        // claim logs it again.
        match JobRow::decode(row) {
            Ok(job) => jobs.push(job.open(vault)?),
            Err(e) => {
                tracing::error!(job = id, error = %e, "a queued job does not decode; skipped")
            }
        }
    }
    Ok(jobs)
}

/// Ends a job: its trail entries and, for an enrolment, its notification written, its row
/// gone, in one step.
pub(crate) async fn finish_job<D: Db>(db: &D, done: &FinishJob, now: i64) -> StoreResult<()> {
    let statement = locking(db, &sql::FINISHING, &sql::LOCK_FINISHING);
    // Gone: another node finished it after this one's lease ran out.
    let Some(mut job) = db.query_opt(statement, params![done.id]).await? else {
        return Ok(());
    };
    let consumer_ref = job.int(0)?;
    let operation_id = job.opt_text(1)?;
    let card_id = job.opt_text(2)?;
    let correlation = job.opt_text(3)?;
    let (status, reason) = match &done.outcome {
        JobOutcome::Enrolled | JobOutcome::Synced => (OperationStatus::Successful, None),
        JobOutcome::Failed(reason) => (OperationStatus::Failed, Some(reason.as_str())),
    };
    if let Some(operation_id) = &operation_id {
        db.exec(
            &sql::END_OPERATION,
            params![status.as_str(), now, reason, operation_id],
        )
        .await?;
    }
    if let Some(fetch) = &done.pi_fetch {
        let status = if fetch.failure.is_some() {
            OperationStatus::Failed
        } else {
            OperationStatus::Successful
        };
        let mut buffer = uuid::Uuid::encode_buffer();
        let fetch_id = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut buffer);
        db.exec(
            &sql::PI_FETCH,
            params![
                consumer_ref,
                &*fetch_id,
                status.as_str(),
                fetch.started_at,
                now,
                card_id.as_ref(),
                fetch.failure.as_ref(),
                correlation.as_ref(),
            ],
        )
        .await?;
    }
    // An enrolment (a sync has no operation of its own) is notified as it ended.
    if let (Some(operation_id), Some(card_id)) = (&operation_id, &card_id) {
        let issuer = job.parsed(4, IssuerId::parse)?;
        let consumer = job.parsed(5, |s| ConsumerId::parse(s).map(|(c, _)| c))?;
        let reason_code = job.opt_text(7)?;
        let event = CardEvent {
            issuer: &issuer,
            consumer_id: &consumer,
            card_id,
            operation_id,
            kind: OperationKind::ClickToPayEnrolment,
            status,
            start_time: job.int(6)?,
            end_time: Some(now),
            reason_code: reason_code.as_deref(),
            correlation_id: correlation.as_deref(),
        };
        notify::queue(db, &event, now).await?;
    }
    db.exec(&sql::DELETE_JOB, params![done.id]).await?;
    Ok(())
}

/// Voids every lease: at the start of the only node a backend can have (SQLite).
pub(crate) async fn release_leases<D: Db>(db: &D) -> StoreResult<()> {
    db.exec(&sql::RELEASE_JOB_LEASES, params![]).await?;
    notify::release_leases(db).await
}
