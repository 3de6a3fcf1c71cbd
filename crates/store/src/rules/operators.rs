//! The operator portal (contract section 11): operators, sign-in lockout, sessions, the
//! operator audit trail, and the card lookups of the portal's search. A session is looked up
//! by the hash of its cookie; whether it is still live is decided here, once.

use d1_domain::{ConsumerId, IssuerId};

use crate::db::{params, Db, Row};
use crate::sql::operators as sql;
use crate::{
    AuditEntry, AuditQuery, NewOperator, NewSession, OperatorChange, OperatorRecord, SessionRecord,
    StoreError, StoreResult,
};

/// How long a session's last use may be stale before a page view writes it again (ms).
pub(crate) const TOUCH_AFTER_MS: i64 = 30_000;

/// Adds an operator; `Conflict` if the username is taken.
pub(crate) async fn add<D: Db>(db: &D, op: &NewOperator, now: i64) -> StoreResult<()> {
    let issuers = op.issuers.to_string();
    let values = params![
        &op.username,
        op.role.as_str(),
        &issuers,
        &op.password_hash,
        op.must_change_password,
        now
    ];
    if db.exec(&sql::INSERT, values).await? == 0 {
        return Err(StoreError::Conflict("operator already exists"));
    }
    Ok(())
}

/// Changes an operator; `NotFound` if there is none by that name.
pub(crate) async fn change<D: Db>(
    db: &D,
    username: &str,
    change: &OperatorChange,
    now: i64,
) -> StoreResult<()> {
    let issuers = change.issuers.as_ref().map(ToString::to_string);
    let values = params![
        change.role.map(crate::OperatorRole::as_str),
        issuers.as_ref(),
        change.password_hash.as_ref(),
        change.must_change_password,
        now,
        username
    ];
    if db.exec(&sql::CHANGE, values).await? == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Disables an operator and ends its sessions; `NotFound` if there is none by that name.
pub(crate) async fn disable<D: Db>(db: &D, username: &str, now: i64) -> StoreResult<()> {
    if db.exec(&sql::DISABLE, params![now, username]).await? == 0 {
        return Err(StoreError::NotFound);
    }
    db.exec(&sql::DELETE_SESSIONS_OF, params![username]).await?;
    Ok(())
}

fn operator(mut r: Row) -> StoreResult<OperatorRecord> {
    Ok(OperatorRecord {
        username: r.text(0)?,
        role: r.parsed(1, str::parse)?,
        issuers: r.parsed(2, str::parse)?,
        password_hash: r.text(3)?,
        must_change_password: r.bool(4)?,
        disabled: r.bool(5)?,
        failed_sign_ins: {
            let n = r.int(6)?;
            u32::try_from(n).map_err(|_| r.corrupt(6))?
        },
        locked_until: r.opt_int(7)?,
        created_at: r.int(8)?,
        updated_at: r.int(9)?,
    })
}

/// Every operator, by username.
pub(crate) async fn list<D: Db>(db: &D) -> StoreResult<Vec<OperatorRecord>> {
    db.query(&sql::EVERY, params![])
        .await?
        .into_iter()
        .map(operator)
        .collect()
}

/// One operator.
pub(crate) async fn get<D: Db>(db: &D, username: &str) -> StoreResult<Option<OperatorRecord>> {
    db.query_opt(&sql::ONE, params![username])
        .await?
        .map(operator)
        .transpose()
}

/// Counts a failed sign-in; when the count reaches `lock_after`, locks until `lock_until`
/// and returns it. An unknown username counts nothing.
pub(crate) async fn failed_sign_in<D: Db>(
    db: &D,
    username: &str,
    lock_after: u32,
    lock_until: i64,
) -> StoreResult<Option<i64>> {
    let Some(mut r) = db
        .query_opt(
            &sql::FAILED_SIGN_IN,
            params![lock_after, lock_until, username],
        )
        .await?
    else {
        return Ok(None);
    };
    // The count starts again from 0 only when this failure locked the account.
    let count = r.int(0)?;
    let until = r.opt_int(1)?;
    Ok(if count == 0 { until } else { None })
}

/// A successful sign-in: failures and lock cleared (a write only when there is one).
pub(crate) async fn signed_in<D: Db>(db: &D, username: &str) -> StoreResult<()> {
    db.exec(&sql::SIGNED_IN, params![username]).await?;
    Ok(())
}

/// Starts a session; `NotFound` for an unknown operator, `Conflict` if the id is taken.
pub(crate) async fn create_session<D: Db>(
    db: &D,
    session: &NewSession,
    now: i64,
) -> StoreResult<()> {
    if db
        .query_opt(&sql::EXISTS, params![&session.username])
        .await?
        .is_none()
    {
        return Err(StoreError::NotFound);
    }
    let values = params![
        &session.id_hash,
        &session.username,
        &session.csrf_token,
        now
    ];
    if db.exec(&sql::INSERT_SESSION, values).await? == 0 {
        return Err(StoreError::Conflict("session already exists"));
    }
    Ok(())
}

/// What a page view does with the session it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SessionState {
    /// No such session, or its operator is disabled.
    Absent,
    /// Idle or past its absolute lifetime: to be deleted.
    Expired,
    /// Live; `touch` when its last use is old enough to be written again.
    Live { record: SessionRecord, touch: bool },
}

/// Finds a session and decides whether it is live at `now`.
pub(crate) async fn session<D: Db>(
    db: &D,
    id_hash: &[u8],
    idle_ms: i64,
    absolute_ms: i64,
    now: i64,
) -> StoreResult<SessionState> {
    let Some(mut r) = db.query_opt(&sql::SESSION, params![id_hash]).await? else {
        return Ok(SessionState::Absent);
    };
    let record = SessionRecord {
        username: r.text(0)?,
        csrf_token: r.text(1)?,
        created_at: r.int(2)?,
        last_seen_at: r.int(3)?,
    };
    if r.bool(4)? {
        return Ok(SessionState::Absent);
    }
    if now.saturating_sub(record.last_seen_at) > idle_ms
        || now.saturating_sub(record.created_at) > absolute_ms
    {
        return Ok(SessionState::Expired);
    }
    let touch = now.saturating_sub(record.last_seen_at) > TOUCH_AFTER_MS;
    Ok(SessionState::Live { record, touch })
}

/// Records a session's use at `now`.
pub(crate) async fn touch_session<D: Db>(db: &D, id_hash: &[u8], now: i64) -> StoreResult<()> {
    db.exec(&sql::TOUCH_SESSION, params![now, id_hash]).await?;
    Ok(())
}

/// Ends a session (nothing if there is none).
pub(crate) async fn delete_session<D: Db>(db: &D, id_hash: &[u8]) -> StoreResult<()> {
    db.exec(&sql::DELETE_SESSION, params![id_hash]).await?;
    Ok(())
}

/// Ends every session of an operator.
pub(crate) async fn delete_sessions_of<D: Db>(db: &D, username: &str) -> StoreResult<()> {
    db.exec(&sql::DELETE_SESSIONS_OF, params![username]).await?;
    Ok(())
}

/// Appends an entry to the operator audit trail.
pub(crate) async fn append_audit<D: Db>(db: &D, e: &AuditEntry) -> StoreResult<()> {
    let values = params![
        e.at,
        &e.operator,
        &e.action,
        e.issuer_id.as_ref(),
        e.consumer_id.as_ref(),
        e.card_id.as_ref(),
        &e.outcome
    ];
    db.exec(&sql::INSERT_AUDIT, values).await?;
    Ok(())
}

/// Audit entries, newest first, filtered and limited as asked.
pub(crate) async fn audit<D: Db>(db: &D, q: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
    let since = q.since.unwrap_or(i64::MIN);
    let rows = match &q.operator {
        Some(op) => {
            db.query(&sql::AUDIT_OF, params![op, since, q.limit])
                .await?
        }
        None => db.query(&sql::AUDIT, params![since, q.limit]).await?,
    };
    rows.into_iter()
        .map(|mut r| {
            Ok(AuditEntry {
                at: r.int(0)?,
                operator: r.text(1)?,
                action: r.text(2)?,
                issuer_id: r.opt_text(3)?,
                consumer_id: r.opt_text(4)?,
                card_id: r.opt_text(5)?,
                outcome: r.text(6)?,
            })
        })
        .collect()
}

fn consumer_id(s: &str) -> Result<ConsumerId, d1_domain::IdError> {
    ConsumerId::parse(s).map(|(c, _)| c)
}

/// The consumer of an issuer's card by cardId, whatever the card's state.
pub(crate) async fn locate_card<D: Db>(
    db: &D,
    issuer: &IssuerId,
    card_id: &str,
) -> StoreResult<Option<ConsumerId>> {
    match db
        .query_opt(&sql::LOCATE_CARD, params![issuer.as_str(), card_id])
        .await?
    {
        Some(mut r) => Ok(Some(r.parsed(0, consumer_id)?)),
        None => Ok(None),
    }
}

/// The consumer and cardId of an issuer's card by its PAN's MAC.
pub(crate) async fn locate_pan<D: Db>(
    db: &D,
    issuer: &IssuerId,
    pan_mac: &[u8],
) -> StoreResult<Option<(ConsumerId, String)>> {
    match db
        .query_opt(&sql::LOCATE_PAN, params![issuer.as_str(), pan_mac])
        .await?
    {
        Some(mut r) => Ok(Some((r.parsed(0, consumer_id)?, r.text(1)?))),
        None => Ok(None),
    }
}
