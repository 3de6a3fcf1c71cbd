//! Aggregators (contract section 4): onboarding one with its key and issuers, and listing
//! them. An aggregatorId shares the issuers' namespace and a kid is unique across both, so
//! each side checks the other's table before it writes.

use d1_domain::IssuerId;

use crate::db::{params, Db};
use crate::sql::{aggregators as sql, issuers as issuer_sql};
use crate::{AggregatorRecord, NewAggregator, StoreError, StoreResult};

/// Refuses an id an aggregator has (for a new issuer).
pub(crate) async fn refuse_aggregator_id<D: Db>(db: &D, id: &IssuerId) -> StoreResult<()> {
    if db
        .query_opt(&sql::EXISTS, params![id.as_str()])
        .await?
        .is_some()
    {
        return Err(StoreError::Conflict("an aggregator has this id"));
    }
    Ok(())
}

/// Refuses a kid an aggregator has (for an issuer's new key).
pub(crate) async fn refuse_aggregator_kid<D: Db>(db: &D, kid: &str) -> StoreResult<()> {
    if db.query_opt(&sql::KID_TAKEN, params![kid]).await?.is_some() {
        return Err(StoreError::Conflict("kid already registered"));
    }
    Ok(())
}

/// Onboards an aggregator with its key and the issuers it signs for: `Conflict` if the id is
/// an issuer's or an aggregator's, or the kid is taken; `NotFound` if an issuer is unknown.
pub(crate) async fn add<D: Db>(db: &D, new: &NewAggregator, now: i64) -> StoreResult<()> {
    let id = new.aggregator_id.as_str();
    if new.issuers.is_empty() {
        return Err(StoreError::Conflict(
            "an aggregator signs for one issuer at least",
        ));
    }
    if db
        .query_opt(&issuer_sql::EXISTS, params![id])
        .await?
        .is_some()
    {
        return Err(StoreError::Conflict("an issuer has this id"));
    }
    // Every check before the first write: a refusal then writes nothing at all.
    refuse_aggregator_kid(db, &new.kid).await?;
    if db
        .query_opt(&sql::ISSUER_KID_TAKEN, params![&new.kid])
        .await?
        .is_some()
    {
        return Err(StoreError::Conflict("kid already registered"));
    }
    for issuer in &new.issuers {
        if db
            .query_opt(&issuer_sql::EXISTS, params![issuer.as_str()])
            .await?
            .is_none()
        {
            return Err(StoreError::NotFound);
        }
    }
    if db
        .exec(&sql::INSERT, params![id, new.require_jti, now])
        .await?
        == 0
    {
        return Err(StoreError::Conflict("aggregator already exists"));
    }
    let key = params![&new.kid, id, &new.public_jwk, now];
    if db.exec(&sql::INSERT_KEY, key).await? == 0 {
        return Err(StoreError::Conflict("kid already registered"));
    }
    for issuer in &new.issuers {
        db.exec(&sql::INSERT_ISSUER, params![id, issuer.as_str()])
            .await?;
    }
    Ok(())
}

/// The issuers an aggregator signs for, by id.
pub(crate) async fn issuers_of<D: Db>(db: &D, id: &str) -> StoreResult<Vec<IssuerId>> {
    let mut issuers = Vec::new();
    for mut r in db.query(&sql::ISSUERS, params![id]).await? {
        issuers.push(r.parsed(0, IssuerId::parse)?);
    }
    Ok(issuers)
}

/// Every aggregator, by id.
pub(crate) async fn list<D: Db>(db: &D) -> StoreResult<Vec<AggregatorRecord>> {
    let mut found = Vec::new();
    for mut r in db.query(&sql::EVERY, params![]).await? {
        let aggregator_id: IssuerId = r.parsed(0, IssuerId::parse)?;
        let mut kids = Vec::new();
        for mut k in db
            .query(&sql::KIDS, params![aggregator_id.as_str()])
            .await?
        {
            kids.push(k.text(0)?);
        }
        let issuers = issuers_of(db, aggregator_id.as_str()).await?;
        found.push(AggregatorRecord {
            require_jti: r.bool(1)?,
            created_at: r.int(2)?,
            aggregator_id,
            kids,
            issuers,
        });
    }
    Ok(found)
}
