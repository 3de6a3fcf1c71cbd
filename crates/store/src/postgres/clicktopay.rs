//! Click to Pay on PostgreSQL: the same use cases as `sqlite/clicktopay.rs`. Jobs and
//! notifications are claimed with `FOR UPDATE SKIP LOCKED` and a lease, so several nodes
//! share the work and a node that dies mid-job only delays it by the lease.

use d1_domain::{ConsumerId, ConsumerState, IssuerId, OperationKind, OperationStatus};
use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::transaction::{exec, row, rows};
use crate::jobs::{
    EnrolTarget, JobRow, CLAIMABLE, DUE_NOTIFICATIONS, ENROL_TARGET, EXISTING_ENROLMENT,
    JOB_COLUMNS, QUEUE_SYNC,
};
use crate::{
    BackendRecord, CardState, ClaimedJob, Delivery, DirectoryRecord, DirectoryWrite,
    EnrolmentStart, FinishJob, JobOutcome, NotificationRecord, OperationRecord, Sealed,
    StartEnrolment, StoreError, StoreResult, Vault,
};

fn uuid(id: &str) -> StoreResult<Uuid> {
    Uuid::parse_str(id)
        .map_err(|_| StoreError::Other(anyhow::anyhow!("an operation id is not a UUID")))
}

pub(super) async fn set_backend(
    c: &impl GenericClient,
    b: &BackendRecord,
    now: i64,
) -> StoreResult<()> {
    if row(
        c,
        "SELECT 1 FROM issuers WHERE issuer_id = $1",
        &[&b.issuer_id.as_str()],
    )
    .await?
    .is_none()
    {
        return Err(StoreError::NotFound);
    }
    exec(
        c,
        "INSERT INTO issuer_backends (issuer_id, url, client_id, secret, send_card_id,
                                      pi_cache_ttl_s, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (issuer_id) DO UPDATE SET url = excluded.url, client_id = excluded.client_id,
            secret = excluded.secret, send_card_id = excluded.send_card_id,
            pi_cache_ttl_s = excluded.pi_cache_ttl_s, updated_at = excluded.updated_at",
        &[
            &b.issuer_id.as_str(),
            &b.url,
            &b.client_id,
            &b.sealed_secret,
            &b.send_card_id,
            &i64::from(b.pi_cache_ttl_s),
            &now,
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn backend(
    c: &impl GenericClient,
    issuer: &IssuerId,
) -> StoreResult<Option<BackendRecord>> {
    let found = row(
        c,
        "SELECT url, client_id, secret, send_card_id, pi_cache_ttl_s
         FROM issuer_backends WHERE issuer_id = $1",
        &[&issuer.as_str()],
    )
    .await?;
    Ok(found.map(|r| BackendRecord {
        issuer_id: issuer.clone(),
        url: r.get(0),
        client_id: r.get(1),
        sealed_secret: r.get(2),
        send_card_id: r.get(3),
        pi_cache_ttl_s: u32::try_from(r.get::<_, i64>(4)).unwrap_or(0),
    }))
}

pub(super) async fn start_enrolment(
    c: &impl GenericClient,
    vault: &Vault,
    cmd: &StartEnrolment,
    now: i64,
) -> StoreResult<EnrolmentStart> {
    // Locking the consumer makes two enrolments of one card take turns, so the second sees
    // the first's PENDING entry.
    let found = row(
        c,
        &format!("{ENROL_TARGET} FOR UPDATE OF c"),
        &[&cmd.issuer_id.as_str(), &cmd.card_id.as_str()],
    )
    .await?;
    let Some(r) = found else {
        return Ok(EnrolmentStart::CardNotFound);
    };
    let target = EnrolTarget {
        card_state: CardState::parse(r.get(0)).unwrap_or(CardState::Deleted),
        consumer_ref: r.get(1),
        consumer_id: r.get(2),
        consumer_state: ConsumerState::parse(r.get(3)).unwrap_or(ConsumerState::Deleted),
        wrapped_key: r.get(4),
    };
    if !target.active() {
        return Ok(EnrolmentStart::NotActive);
    }
    if let Some(r) = row(
        c,
        EXISTING_ENROLMENT,
        &[&target.consumer_ref, &cmd.card_id.as_str()],
    )
    .await?
    {
        return Ok(EnrolmentStart::Existing(r.get(0)));
    }
    let billing = target.seal_billing(vault, &cmd.issuer_id, cmd.billing.as_ref())?;
    let operation_id = Uuid::now_v7();
    let correlation = cmd
        .trail
        .correlation_id
        .as_ref()
        .map(d1_domain::CorrelationId::as_str);
    exec(
        c,
        "INSERT INTO operations (consumer_ref, operation_id, operation, status, start_time,
                                 card_id, correlation_id, user_id)
         VALUES ($1, $2, $3, 'PENDING', $4, $5, $6, $7)",
        &[
            &target.consumer_ref,
            &operation_id,
            &OperationKind::ClickToPayEnrolment.as_str(),
            &now,
            &cmd.card_id.as_str(),
            &correlation,
            &cmd.trail.user_id.as_ref().map(d1_domain::UserId::as_str),
        ],
    )
    .await?;
    exec(
        c,
        "INSERT INTO c2p_jobs (kind, issuer_id, consumer_ref, operation_id, card_id, billing,
                               correlation_id, created_at)
         VALUES ('ENROL', $1, $2, $3, $4, $5, $6, $7)",
        &[
            &cmd.issuer_id.as_str(),
            &target.consumer_ref,
            &operation_id,
            &cmd.card_id.as_str(),
            &billing,
            &cmd.correlation_id,
            &now,
        ],
    )
    .await?;
    Ok(EnrolmentStart::Started(operation_id.to_string()))
}

/// Queues a directory sync of the consumer `consumer_ref` if it has ever been enrolled.
pub(super) async fn queue_sync(
    c: &impl GenericClient,
    issuer: &IssuerId,
    consumer_ref: i64,
    now: i64,
) -> StoreResult<()> {
    exec(c, QUEUE_SYNC, &[&issuer.as_str(), &consumer_ref, &now]).await?;
    Ok(())
}

fn read_job(r: &tokio_postgres::Row) -> JobRow {
    JobRow {
        id: r.get(0),
        kind: r.get(1),
        issuer_id: r.get(2),
        consumer_id: r.get(3),
        operation_id: r.get(4),
        card_id: r.get(5),
        billing: r.get(6),
        correlation_id: r.get(7),
        attempts: r.get(8),
        created_at: r.get(9),
        consumer_state: r.get(10),
        pi_source: r.get(11),
        wrapped_key: r.get(12),
        pi: r.get(13),
        card_state: r.get(14),
        card_sealed: r.get(15),
    }
}

pub(super) async fn claim_jobs(
    c: &impl GenericClient,
    vault: &Vault,
    lease_ms: i64,
    limit: u32,
    now: i64,
) -> StoreResult<Vec<ClaimedJob>> {
    let ids: Vec<i64> = rows(
        c,
        &format!(
            "SELECT j.id FROM c2p_jobs j WHERE {CLAIMABLE} ORDER BY j.id LIMIT $2
             FOR UPDATE OF j SKIP LOCKED"
        ),
        &[&now, &i64::from(limit)],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    exec(
        c,
        "UPDATE c2p_jobs SET lease_until = $2, attempts = attempts + 1 WHERE id = ANY($1)",
        &[&ids, &(now + lease_ms)],
    )
    .await?;
    rows(
        c,
        &format!("{JOB_COLUMNS} WHERE j.id = ANY($1) ORDER BY j.id"),
        &[&ids],
    )
    .await?
    .iter()
    .map(|r| read_job(r).open(vault))
    .collect()
}

pub(super) async fn finish_job(
    c: &impl GenericClient,
    done: &FinishJob,
    now: i64,
) -> StoreResult<()> {
    let job = row(
        c,
        "SELECT consumer_ref, operation_id, card_id, correlation_id FROM c2p_jobs
         WHERE id = $1 FOR UPDATE",
        &[&done.id],
    )
    .await?;
    // Gone: another node finished it after this one's lease ran out.
    let Some(job) = job else {
        return Ok(());
    };
    let consumer_ref: i64 = job.get(0);
    let operation_id: Option<Uuid> = job.get(1);
    let card_id: Option<String> = job.get(2);
    let correlation: Option<String> = job.get(3);
    let (status, reason) = match &done.outcome {
        JobOutcome::Enrolled | JobOutcome::Synced => (OperationStatus::Successful, None),
        JobOutcome::Failed(reason) => (OperationStatus::Failed, Some(reason.as_str())),
    };
    if let Some(operation_id) = &operation_id {
        exec(
            c,
            "UPDATE operations SET status = $2, end_time = $3, reason = $4 WHERE operation_id = $1",
            &[operation_id, &status.as_str(), &now, &reason],
        )
        .await?;
    }
    if let Some(fetch) = &done.pi_fetch {
        let status = if fetch.failure.is_some() {
            OperationStatus::Failed
        } else {
            OperationStatus::Successful
        };
        exec(
            c,
            "INSERT INTO operations (consumer_ref, operation_id, operation, status, start_time,
                                     end_time, card_id, reason, correlation_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &consumer_ref,
                &Uuid::now_v7(),
                &OperationKind::PiFetch.as_str(),
                &status.as_str(),
                &fetch.started_at,
                &now,
                &card_id,
                &fetch.failure,
                &correlation,
            ],
        )
        .await?;
    }
    if let Some(n) = &done.notification {
        exec(
            c,
            "INSERT INTO notifications (issuer_id, card_id, operation_id, body, state,
                                        next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, 'PENDING', $5, $5)",
            &[
                &n.issuer_id.as_str(),
                &n.card_id,
                &uuid(&n.operation_id)?,
                &n.body,
                &now,
            ],
        )
        .await?;
    }
    exec(c, "DELETE FROM c2p_jobs WHERE id = $1", &[&done.id]).await?;
    Ok(())
}

pub(super) async fn operation(
    c: &impl GenericClient,
    issuer: &IssuerId,
    operation_id: &str,
) -> StoreResult<Option<OperationRecord>> {
    let Ok(operation_id) = Uuid::parse_str(operation_id) else {
        return Ok(None);
    };
    let found = row(
        c,
        "SELECT o.operation_id, o.operation, o.status, o.start_time, o.end_time, o.card_id,
                o.reason, o.reason_code, o.correlation_id, o.user_id
         FROM operations o JOIN consumers c ON c.id = o.consumer_ref
         WHERE o.operation_id = $1 AND c.issuer_id = $2",
        &[&operation_id, &issuer.as_str()],
    )
    .await?;
    Ok(found.map(|r| OperationRecord {
        operation_id: r.get::<_, Uuid>(0).to_string(),
        operation: OperationKind::parse(r.get(1)).unwrap_or(OperationKind::Register),
        status: OperationStatus::parse(r.get(2)).unwrap_or(OperationStatus::Failed),
        start_time: r.get(3),
        end_time: r.get(4),
        card_id: r.get(5),
        reason: r.get(6),
        reason_code: r.get(7),
        correlation_id: r.get(8),
        user_id: r.get(9),
    }))
}

pub(super) async fn directory_put(
    c: &impl GenericClient,
    w: &DirectoryWrite,
    create: bool,
    now: i64,
) -> StoreResult<bool> {
    let keys: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
        [&w.issuer_id.as_str(), &w.consumer_id.as_str()];
    let exists = row(
        c,
        "SELECT 1 FROM directory_profiles WHERE issuer_id = $1 AND consumer_id = $2 FOR UPDATE",
        &keys,
    )
    .await?
    .is_some();
    if !exists && !create {
        return Ok(false);
    }
    exec(
        c,
        "INSERT INTO directory_profiles (issuer_id, consumer_id, wrapped_key, profile, created_at,
                                         updated_at)
         VALUES ($1, $2, $3, $4, $5, $5)
         ON CONFLICT (issuer_id, consumer_id) DO UPDATE SET wrapped_key = excluded.wrapped_key,
            profile = excluded.profile, updated_at = excluded.updated_at",
        &[
            &w.issuer_id.as_str(),
            &w.consumer_id.as_str(),
            &w.profile.wrapped_key,
            &w.profile.sealed,
            &now,
        ],
    )
    .await?;
    if let Some((card_id, card)) = &w.card {
        exec(
            c,
            "INSERT INTO directory_cards (issuer_id, consumer_id, card_id, wrapped_key, sealed,
                                          created_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (issuer_id, consumer_id, card_id) DO UPDATE SET
                wrapped_key = excluded.wrapped_key, sealed = excluded.sealed",
            &[
                &w.issuer_id.as_str(),
                &w.consumer_id.as_str(),
                card_id,
                &card.wrapped_key,
                &card.sealed,
                &now,
            ],
        )
        .await?;
    }
    Ok(exists)
}

pub(super) async fn directory_remove(
    c: &impl GenericClient,
    issuer: &IssuerId,
    consumer: &ConsumerId,
) -> StoreResult<bool> {
    let keys: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
        [&issuer.as_str(), &consumer.as_str()];
    exec(
        c,
        "DELETE FROM directory_cards WHERE issuer_id = $1 AND consumer_id = $2",
        &keys,
    )
    .await?;
    let removed = exec(
        c,
        "DELETE FROM directory_profiles WHERE issuer_id = $1 AND consumer_id = $2",
        &keys,
    )
    .await?;
    Ok(removed > 0)
}

pub(super) async fn directory_profile(
    c: &impl GenericClient,
    issuer: &IssuerId,
    consumer: &ConsumerId,
) -> StoreResult<Option<DirectoryRecord>> {
    let keys: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
        [&issuer.as_str(), &consumer.as_str()];
    let Some(r) = row(
        c,
        "SELECT wrapped_key, profile, created_at, updated_at FROM directory_profiles
         WHERE issuer_id = $1 AND consumer_id = $2",
        &keys,
    )
    .await?
    else {
        return Ok(None);
    };
    let card_ids = rows(
        c,
        "SELECT card_id FROM directory_cards WHERE issuer_id = $1 AND consumer_id = $2
         ORDER BY created_at, card_id",
        &keys,
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect();
    Ok(Some(DirectoryRecord {
        profile: Sealed {
            wrapped_key: r.get(0),
            sealed: r.get(1),
        },
        card_ids,
        created_at: r.get(2),
        updated_at: r.get(3),
    }))
}

pub(super) async fn claim_notifications(
    c: &impl GenericClient,
    lease_ms: i64,
    limit: u32,
    now: i64,
) -> StoreResult<Vec<NotificationRecord>> {
    let ids: Vec<i64> = rows(
        c,
        &format!("{DUE_NOTIFICATIONS} FOR UPDATE OF n SKIP LOCKED"),
        &[&now, &i64::from(limit)],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    rows(
        c,
        "UPDATE notifications SET lease_until = $2 WHERE id = ANY($1)
         RETURNING id, issuer_id, card_id, operation_id, body, attempts, created_at",
        &[&ids, &(now + lease_ms)],
    )
    .await?
    .iter()
    .map(|r| {
        let issuer_id = IssuerId::parse(r.get(1))
            .map_err(|_| StoreError::Other(anyhow::anyhow!("a stored issuerId does not parse")))?;
        Ok(NotificationRecord {
            id: r.get(0),
            issuer_id,
            card_id: r.get(2),
            operation_id: r.get::<_, Uuid>(3).to_string(),
            body: r.get(4),
            attempts: u32::try_from(r.get::<_, i64>(5)).unwrap_or(u32::MAX),
            created_at: r.get(6),
        })
    })
    .collect::<StoreResult<Vec<_>>>()
    .map(|mut claimed| {
        claimed.sort_by_key(|n| n.id);
        claimed
    })
}

pub(super) async fn settle_notification(
    c: &impl GenericClient,
    id: i64,
    delivery: Delivery,
) -> StoreResult<()> {
    match delivery {
        Delivery::Delivered => {
            exec(c, "DELETE FROM notifications WHERE id = $1", &[&id]).await?;
        }
        Delivery::Retry(at) => {
            exec(
                c,
                "UPDATE notifications SET attempts = attempts + 1, next_attempt_at = $2,
                        lease_until = 0 WHERE id = $1",
                &[&id, &at],
            )
            .await?;
        }
        Delivery::Dead => {
            exec(
                c,
                "UPDATE operations SET reason_code = 'NOTIFICATION_DEAD' WHERE operation_id =
                    (SELECT operation_id FROM notifications WHERE id = $1)",
                &[&id],
            )
            .await?;
            exec(
                c,
                "UPDATE notifications SET state = 'DEAD', attempts = attempts + 1 WHERE id = $1",
                &[&id],
            )
            .await?;
        }
    }
    Ok(())
}
