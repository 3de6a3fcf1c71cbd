//! The operator portal's use cases on [`super::Engine`], beside the engine so that it stays
//! small: [`crate::Store`]'s portal methods reach them through `Store::portal`.

use async_trait::async_trait;
use d1_domain::card::Pan;
use d1_domain::{ConsumerId, IssuerId};

use super::Engine;
use crate::rules::operators::{self, SessionState};
use crate::{
    AuditEntry, AuditQuery, NewOperator, NewSession, OperatorChange, OperatorRecord, SessionRecord,
    Store, StoreResult,
};

/// The operator portal's half of the store; its methods are [`crate::Store`]'s of the same
/// names, documented there.
#[async_trait]
pub trait PortalStore: Send + Sync {
    async fn add_operator(&self, op: NewOperator) -> StoreResult<()>;
    async fn change_operator(&self, username: &str, change: OperatorChange) -> StoreResult<()>;
    async fn disable_operator(&self, username: &str) -> StoreResult<()>;
    async fn operators(&self) -> StoreResult<Vec<OperatorRecord>>;
    async fn operator(&self, username: &str) -> StoreResult<Option<OperatorRecord>>;
    async fn record_failed_sign_in(
        &self,
        username: &str,
        lock_after: u32,
        lock_ms: i64,
    ) -> StoreResult<Option<i64>>;
    async fn record_sign_in(&self, username: &str) -> StoreResult<()>;
    async fn create_session(&self, session: NewSession) -> StoreResult<()>;
    async fn session(
        &self,
        id_hash: &[u8],
        idle_ms: i64,
        absolute_ms: i64,
    ) -> StoreResult<Option<SessionRecord>>;
    async fn delete_session(&self, id_hash: &[u8]) -> StoreResult<()>;
    async fn delete_sessions_of(&self, username: &str) -> StoreResult<()>;
    async fn append_audit(&self, entry: AuditEntry) -> StoreResult<()>;
    async fn audit(&self, query: AuditQuery) -> StoreResult<Vec<AuditEntry>>;
    async fn locate_card(
        &self,
        issuer: &IssuerId,
        card_id: &str,
    ) -> StoreResult<Option<ConsumerId>>;
    async fn locate_card_by_pan(
        &self,
        issuer: &IssuerId,
        pan: &Pan,
    ) -> StoreResult<Option<(ConsumerId, String)>>;
}

#[async_trait]
impl PortalStore for Engine {
    async fn add_operator(&self, op: NewOperator) -> StoreResult<()> {
        write!(self, false, op, |db, _, op, now| operators::add(
            db, op, now
        ))
    }

    async fn change_operator(&self, username: &str, change: OperatorChange) -> StoreResult<()> {
        let ctx = (username.to_owned(), change);
        write!(self, false, ctx, |db, _, (username, change), now| {
            operators::change(db, username, change, now)
        })
    }

    async fn disable_operator(&self, username: &str) -> StoreResult<()> {
        write!(self, false, username.to_owned(), |db, _, username, now| {
            operators::disable(db, username, now)
        })
    }

    async fn operators(&self) -> StoreResult<Vec<OperatorRecord>> {
        read!(self, (), |db, _, ()| operators::list(db))
    }

    async fn operator(&self, username: &str) -> StoreResult<Option<OperatorRecord>> {
        read!(self, username.to_owned(), |db, _, username| operators::get(
            db, username
        ))
    }

    async fn record_failed_sign_in(
        &self,
        username: &str,
        lock_after: u32,
        lock_ms: i64,
    ) -> StoreResult<Option<i64>> {
        let ctx = (username.to_owned(), lock_after, lock_ms);
        write!(self, false, ctx, |db, _, (username, after, lock), now| {
            operators::failed_sign_in(db, username, *after, now.saturating_add(*lock))
        })
    }

    async fn record_sign_in(&self, username: &str) -> StoreResult<()> {
        write!(self, false, username.to_owned(), |db, _, username, _| {
            operators::signed_in(db, username)
        })
    }

    async fn create_session(&self, session: NewSession) -> StoreResult<()> {
        write!(self, false, session, |db, _, session, now| {
            operators::create_session(db, session, now)
        })
    }

    async fn session(
        &self,
        id_hash: &[u8],
        idle_ms: i64,
        absolute_ms: i64,
    ) -> StoreResult<Option<SessionRecord>> {
        // A read first: most page views find a session used less than 30 s ago, and write
        // nothing.
        let ctx = (id_hash.to_vec(), idle_ms, absolute_ms);
        let state = read!(self, ctx, |db, _, (id, idle, absolute)| {
            operators::session(db, id, *idle, *absolute, crate::now_ms())
        })?;
        match state {
            SessionState::Absent => Ok(None),
            SessionState::Expired => {
                PortalStore::delete_session(self, id_hash).await?;
                Ok(None)
            }
            SessionState::Live { record, touch } => {
                if !touch {
                    return Ok(Some(record));
                }
                let id = id_hash.to_vec();
                let now = write!(self, false, id, |db, _, id, now| async move {
                    operators::touch_session(db, id, now).await.map(|()| now)
                })?;
                Ok(Some(SessionRecord {
                    last_seen_at: now,
                    ..record
                }))
            }
        }
    }

    async fn delete_session(&self, id_hash: &[u8]) -> StoreResult<()> {
        write!(self, false, id_hash.to_vec(), |db, _, id, _| {
            operators::delete_session(db, id)
        })
    }

    async fn delete_sessions_of(&self, username: &str) -> StoreResult<()> {
        write!(self, false, username.to_owned(), |db, _, username, _| {
            operators::delete_sessions_of(db, username)
        })
    }

    async fn append_audit(&self, entry: AuditEntry) -> StoreResult<()> {
        write!(self, false, entry, |db, _, entry, _| {
            operators::append_audit(db, entry)
        })
    }

    async fn audit(&self, query: AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        read!(self, query, |db, _, query| operators::audit(db, query))
    }

    async fn locate_card(
        &self,
        issuer: &IssuerId,
        card_id: &str,
    ) -> StoreResult<Option<ConsumerId>> {
        let ctx = (issuer.clone(), card_id.to_owned());
        read!(
            self,
            ctx,
            |db, _, (issuer, card_id)| operators::locate_card(db, issuer, card_id)
        )
    }

    async fn locate_card_by_pan(
        &self,
        issuer: &IssuerId,
        pan: &Pan,
    ) -> StoreResult<Option<(ConsumerId, String)>> {
        // The MAC is taken here; the PAN itself never reaches the database.
        let ctx = (issuer.clone(), self.vault().pan_mac(issuer, pan));
        read!(self, ctx, |db, _, (issuer, mac)| operators::locate_pan(
            db, issuer, mac
        ))
    }
}
