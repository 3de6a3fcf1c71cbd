//! Click to Pay on SQLite: the issuer backend's settings, enrolment and sync jobs, the
//! simulated directory and the notifications outbox. Writes run in the writer's transaction.

use d1_domain::{ConsumerId, ConsumerState, IssuerId, OperationKind, OperationStatus};
use rusqlite::{params, Connection, OptionalExtension};

use super::sql;
use crate::jobs::{
    EnrolTarget, JobRow, CLAIMABLE, DUE_NOTIFICATIONS, ENROL_TARGET, EXISTING_ENROLMENT,
    JOB_COLUMNS, QUEUE_SYNC,
};
use crate::{
    BackendRecord, CardState, ClaimedJob, Delivery, DirectoryRecord, DirectoryWrite,
    EnrolmentStart, FinishJob, JobOutcome, NotificationRecord, OperationRecord, Sealed,
    StartEnrolment, StoreError, StoreResult, Vault,
};

pub(super) fn set_backend(conn: &Connection, b: &BackendRecord, now: i64) -> StoreResult<()> {
    let known: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM issuers WHERE issuer_id = ?1)",
            params![b.issuer_id.as_str()],
            |r| r.get(0),
        )
        .map_err(sql)?;
    if !known {
        return Err(StoreError::NotFound);
    }
    conn.execute(
        "INSERT INTO issuer_backends (issuer_id, url, client_id, secret, send_card_id,
                                      pi_cache_ttl_s, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (issuer_id) DO UPDATE SET url = excluded.url, client_id = excluded.client_id,
            secret = excluded.secret, send_card_id = excluded.send_card_id,
            pi_cache_ttl_s = excluded.pi_cache_ttl_s, updated_at = excluded.updated_at",
        params![
            b.issuer_id.as_str(),
            b.url,
            b.client_id,
            b.sealed_secret,
            b.send_card_id,
            b.pi_cache_ttl_s,
            now
        ],
    )
    .map_err(sql)?;
    Ok(())
}

pub(super) fn backend(conn: &Connection, issuer: &IssuerId) -> StoreResult<Option<BackendRecord>> {
    conn.prepare_cached(
        "SELECT url, client_id, secret, send_card_id, pi_cache_ttl_s
         FROM issuer_backends WHERE issuer_id = ?1",
    )
    .and_then(|mut s| {
        s.query_row(params![issuer.as_str()], |r| {
            Ok(BackendRecord {
                issuer_id: issuer.clone(),
                url: r.get(0)?,
                client_id: r.get(1)?,
                sealed_secret: r.get(2)?,
                send_card_id: r.get(3)?,
                pi_cache_ttl_s: r.get(4)?,
            })
        })
        .optional()
    })
    .map_err(sql)
}

pub(super) fn start_enrolment(
    conn: &Connection,
    vault: &Vault,
    cmd: &StartEnrolment,
    now: i64,
) -> StoreResult<EnrolmentStart> {
    let target = conn
        .prepare_cached(ENROL_TARGET)
        .and_then(|mut s| {
            s.query_row(params![cmd.issuer_id.as_str(), cmd.card_id.as_str()], |r| {
                let card: String = r.get(0)?;
                let consumer: String = r.get(3)?;
                Ok(EnrolTarget {
                    card_state: CardState::parse(&card).unwrap_or(CardState::Deleted),
                    consumer_ref: r.get(1)?,
                    consumer_id: r.get(2)?,
                    consumer_state: ConsumerState::parse(&consumer)
                        .unwrap_or(ConsumerState::Deleted),
                    wrapped_key: r.get(4)?,
                })
            })
            .optional()
        })
        .map_err(sql)?;
    let Some(target) = target else {
        return Ok(EnrolmentStart::CardNotFound);
    };
    if !target.active() {
        return Ok(EnrolmentStart::NotActive);
    }
    let existing: Option<String> = conn
        .prepare_cached(EXISTING_ENROLMENT)
        .and_then(|mut s| {
            s.query_row(params![target.consumer_ref, cmd.card_id.as_str()], |r| {
                r.get(0)
            })
            .optional()
        })
        .map_err(sql)?;
    if let Some(operation_id) = existing {
        return Ok(EnrolmentStart::Existing(operation_id));
    }
    let billing = target.seal_billing(vault, &cmd.issuer_id, cmd.billing.as_ref())?;
    let operation_id = uuid::Uuid::now_v7().to_string();
    let correlation = cmd
        .trail
        .correlation_id
        .as_ref()
        .map(d1_domain::CorrelationId::as_str);
    conn.execute(
        "INSERT INTO operations (consumer_ref, operation_id, operation, status, start_time,
                                 card_id, correlation_id, user_id)
         VALUES (?1, ?2, ?3, 'PENDING', ?4, ?5, ?6, ?7)",
        params![
            target.consumer_ref,
            operation_id,
            OperationKind::ClickToPayEnrolment.as_str(),
            now,
            cmd.card_id.as_str(),
            correlation,
            cmd.trail.user_id.as_ref().map(d1_domain::UserId::as_str),
        ],
    )
    .map_err(sql)?;
    conn.execute(
        "INSERT INTO c2p_jobs (kind, issuer_id, consumer_ref, operation_id, card_id, billing,
                               correlation_id, created_at)
         VALUES ('ENROL', ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            cmd.issuer_id.as_str(),
            target.consumer_ref,
            operation_id,
            cmd.card_id.as_str(),
            billing,
            cmd.correlation_id,
            now
        ],
    )
    .map_err(sql)?;
    Ok(EnrolmentStart::Started(operation_id))
}

/// Queues a directory sync of the consumer `consumer_ref` if it has ever been enrolled.
pub(super) fn queue_sync(
    conn: &Connection,
    issuer: &IssuerId,
    consumer_ref: i64,
    now: i64,
) -> StoreResult<()> {
    conn.prepare_cached(QUEUE_SYNC)
        .and_then(|mut s| s.execute(params![issuer.as_str(), consumer_ref, now]))
        .map_err(sql)?;
    Ok(())
}

fn read_job(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        issuer_id: r.get(2)?,
        consumer_id: r.get(3)?,
        operation_id: r.get(4)?,
        card_id: r.get(5)?,
        billing: r.get(6)?,
        correlation_id: r.get(7)?,
        attempts: r.get(8)?,
        created_at: r.get(9)?,
        consumer_state: r.get(10)?,
        pi_source: r.get(11)?,
        wrapped_key: r.get(12)?,
        pi: r.get(13)?,
        card_state: r.get(14)?,
        card_sealed: r.get(15)?,
    })
}

pub(super) fn claim_jobs(
    conn: &Connection,
    vault: &Vault,
    lease_ms: i64,
    limit: u32,
    now: i64,
) -> StoreResult<Vec<ClaimedJob>> {
    let ids: Vec<i64> = conn
        .prepare_cached(&format!(
            "SELECT j.id FROM c2p_jobs j WHERE {CLAIMABLE} ORDER BY j.id LIMIT $2"
        ))
        .and_then(|mut s| {
            s.query_map(params![now, limit], |r| r.get(0))?
                .collect::<Result<_, _>>()
        })
        .map_err(sql)?;
    let mut jobs = Vec::with_capacity(ids.len());
    for id in ids {
        conn.prepare_cached(
            "UPDATE c2p_jobs SET lease_until = ?2, attempts = attempts + 1 WHERE id = ?1",
        )
        .and_then(|mut s| s.execute(params![id, now + lease_ms]))
        .map_err(sql)?;
        let row = conn
            .prepare_cached(&format!("{JOB_COLUMNS} WHERE j.id = $1"))
            .and_then(|mut s| s.query_row(params![id], read_job))
            .map_err(sql)?;
        jobs.push(row.open(vault)?);
    }
    Ok(jobs)
}

pub(super) fn finish_job(conn: &Connection, done: &FinishJob, now: i64) -> StoreResult<()> {
    /// consumer_ref, operation_id, card_id, correlation_id.
    type Finishing = (i64, Option<String>, Option<String>, Option<String>);
    let job: Option<Finishing> = conn
        .query_row(
            "SELECT consumer_ref, operation_id, card_id, correlation_id FROM c2p_jobs WHERE id = ?1",
            params![done.id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()
        .map_err(sql)?;
    // Gone: another node finished it after this one's lease ran out.
    let Some((consumer_ref, operation_id, card_id, correlation)) = job else {
        return Ok(());
    };
    let (status, reason) = match &done.outcome {
        JobOutcome::Enrolled | JobOutcome::Synced => (OperationStatus::Successful, None),
        JobOutcome::Failed(reason) => (OperationStatus::Failed, Some(reason.as_str())),
    };
    if let Some(operation_id) = &operation_id {
        conn.execute(
            "UPDATE operations SET status = ?2, end_time = ?3, reason = ?4 WHERE operation_id = ?1",
            params![operation_id, status.as_str(), now, reason],
        )
        .map_err(sql)?;
    }
    if let Some(fetch) = &done.pi_fetch {
        let status = if fetch.failure.is_some() {
            OperationStatus::Failed
        } else {
            OperationStatus::Successful
        };
        conn.execute(
            "INSERT INTO operations (consumer_ref, operation_id, operation, status, start_time,
                                     end_time, card_id, reason, correlation_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                consumer_ref,
                uuid::Uuid::now_v7().to_string(),
                OperationKind::PiFetch.as_str(),
                status.as_str(),
                fetch.started_at,
                now,
                card_id,
                fetch.failure,
                correlation
            ],
        )
        .map_err(sql)?;
    }
    if let Some(n) = &done.notification {
        conn.execute(
            "INSERT INTO notifications (issuer_id, card_id, operation_id, body, state,
                                        next_attempt_at, created_at)
             VALUES (?1, ?2, ?3, ?4, 'PENDING', ?5, ?5)",
            params![n.issuer_id.as_str(), n.card_id, n.operation_id, n.body, now],
        )
        .map_err(sql)?;
    }
    conn.execute("DELETE FROM c2p_jobs WHERE id = ?1", params![done.id])
        .map_err(sql)?;
    Ok(())
}

pub(super) fn operation(
    conn: &Connection,
    issuer: &IssuerId,
    operation_id: &str,
) -> StoreResult<Option<OperationRecord>> {
    conn.prepare_cached(
        "SELECT o.operation_id, o.operation, o.status, o.start_time, o.end_time, o.card_id,
                o.reason, o.reason_code, o.correlation_id, o.user_id
         FROM operations o JOIN consumers c ON c.id = o.consumer_ref
         WHERE o.operation_id = ?1 AND c.issuer_id = ?2",
    )
    .and_then(|mut s| {
        s.query_row(params![operation_id, issuer.as_str()], |r| {
            let kind: String = r.get(1)?;
            let status: String = r.get(2)?;
            Ok(OperationRecord {
                operation_id: r.get(0)?,
                operation: OperationKind::parse(&kind).unwrap_or(OperationKind::Register),
                status: OperationStatus::parse(&status).unwrap_or(OperationStatus::Failed),
                start_time: r.get(3)?,
                end_time: r.get(4)?,
                card_id: r.get(5)?,
                reason: r.get(6)?,
                reason_code: r.get(7)?,
                correlation_id: r.get(8)?,
                user_id: r.get(9)?,
            })
        })
        .optional()
    })
    .map_err(sql)
}

pub(super) fn directory_put(
    conn: &Connection,
    w: &DirectoryWrite,
    create: bool,
    now: i64,
) -> StoreResult<bool> {
    let keys = params![w.issuer_id.as_str(), w.consumer_id.as_str()];
    let exists: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM directory_profiles WHERE issuer_id = ?1 AND consumer_id = ?2)",
            keys,
            |r| r.get(0),
        )
        .map_err(sql)?;
    if !exists && !create {
        return Ok(false);
    }
    conn.execute(
        "INSERT INTO directory_profiles (issuer_id, consumer_id, wrapped_key, profile, created_at,
                                         updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)
         ON CONFLICT (issuer_id, consumer_id) DO UPDATE SET wrapped_key = excluded.wrapped_key,
            profile = excluded.profile, updated_at = excluded.updated_at",
        params![
            w.issuer_id.as_str(),
            w.consumer_id.as_str(),
            w.profile.wrapped_key,
            w.profile.sealed,
            now
        ],
    )
    .map_err(sql)?;
    if let Some((card_id, card)) = &w.card {
        conn.execute(
            "INSERT INTO directory_cards (issuer_id, consumer_id, card_id, wrapped_key, sealed,
                                          created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (issuer_id, consumer_id, card_id) DO UPDATE SET
                wrapped_key = excluded.wrapped_key, sealed = excluded.sealed",
            params![
                w.issuer_id.as_str(),
                w.consumer_id.as_str(),
                card_id,
                card.wrapped_key,
                card.sealed,
                now
            ],
        )
        .map_err(sql)?;
    }
    Ok(exists)
}

pub(super) fn directory_remove(
    conn: &Connection,
    issuer: &IssuerId,
    consumer: &ConsumerId,
) -> StoreResult<bool> {
    let keys = params![issuer.as_str(), consumer.as_str()];
    conn.execute(
        "DELETE FROM directory_cards WHERE issuer_id = ?1 AND consumer_id = ?2",
        keys,
    )
    .map_err(sql)?;
    let removed = conn
        .execute(
            "DELETE FROM directory_profiles WHERE issuer_id = ?1 AND consumer_id = ?2",
            keys,
        )
        .map_err(sql)?;
    Ok(removed > 0)
}

pub(super) fn directory_profile(
    conn: &Connection,
    issuer: &IssuerId,
    consumer: &ConsumerId,
) -> StoreResult<Option<DirectoryRecord>> {
    let keys = params![issuer.as_str(), consumer.as_str()];
    let profile = conn
        .query_row(
            "SELECT wrapped_key, profile, created_at, updated_at FROM directory_profiles
             WHERE issuer_id = ?1 AND consumer_id = ?2",
            keys,
            |r| {
                Ok(DirectoryRecord {
                    profile: Sealed {
                        wrapped_key: r.get(0)?,
                        sealed: r.get(1)?,
                    },
                    card_ids: Vec::new(),
                    created_at: r.get(2)?,
                    updated_at: r.get(3)?,
                })
            },
        )
        .optional()
        .map_err(sql)?;
    let Some(mut profile) = profile else {
        return Ok(None);
    };
    profile.card_ids = conn
        .prepare(
            "SELECT card_id FROM directory_cards WHERE issuer_id = ?1 AND consumer_id = ?2
             ORDER BY created_at, card_id",
        )
        .and_then(|mut s| s.query_map(keys, |r| r.get(0))?.collect())
        .map_err(sql)?;
    Ok(Some(profile))
}

pub(super) fn claim_notifications(
    conn: &Connection,
    lease_ms: i64,
    limit: u32,
    now: i64,
) -> StoreResult<Vec<NotificationRecord>> {
    let ids: Vec<i64> = conn
        .prepare_cached(DUE_NOTIFICATIONS)
        .and_then(|mut s| {
            s.query_map(params![now, limit], |r| r.get(0))?
                .collect::<Result<_, _>>()
        })
        .map_err(sql)?;
    /// issuer_id, card_id, operation_id, body, attempts, created_at.
    type Leased = (String, String, String, String, i64, i64);
    let mut claimed = Vec::with_capacity(ids.len());
    for id in ids {
        let (issuer, card_id, operation_id, body, attempts, created_at): Leased = conn
            .prepare_cached(
                "UPDATE notifications SET lease_until = ?2 WHERE id = ?1
                 RETURNING issuer_id, card_id, operation_id, body, attempts, created_at",
            )
            .and_then(|mut s| {
                s.query_row(params![id, now + lease_ms], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                })
            })
            .map_err(sql)?;
        let issuer_id = IssuerId::parse(&issuer)
            .map_err(|_| StoreError::Other(anyhow::anyhow!("a stored issuerId does not parse")))?;
        claimed.push(NotificationRecord {
            id,
            issuer_id,
            card_id,
            operation_id,
            body,
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            created_at,
        });
    }
    Ok(claimed)
}

pub(super) fn settle_notification(
    conn: &Connection,
    id: i64,
    delivery: Delivery,
) -> StoreResult<()> {
    match delivery {
        Delivery::Delivered => {
            conn.execute("DELETE FROM notifications WHERE id = ?1", params![id])
        }
        Delivery::Retry(at) => conn.execute(
            "UPDATE notifications SET attempts = attempts + 1, next_attempt_at = ?2,
                    lease_until = 0 WHERE id = ?1",
            params![id, at],
        ),
        Delivery::Dead => conn
            .execute(
                "UPDATE operations SET reason_code = 'NOTIFICATION_DEAD' WHERE operation_id =
                    (SELECT operation_id FROM notifications WHERE id = ?1)",
                params![id],
            )
            .and_then(|_| {
                conn.execute(
                    "UPDATE notifications SET state = 'DEAD', attempts = attempts + 1 WHERE id = ?1",
                    params![id],
                )
            }),
    }
    .map_err(sql)?;
    Ok(())
}

/// Jobs and notifications leased by a process that is gone: only one `serve` runs on a SQLite
/// file, so when it starts every lease is void.
pub(super) fn release_leases(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "UPDATE c2p_jobs SET lease_until = 0 WHERE lease_until > 0;
         UPDATE notifications SET lease_until = 0 WHERE lease_until > 0;",
    )
}
