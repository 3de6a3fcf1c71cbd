//! The automatic renewal of created cards (contract section 6: "for cards created by D1, D1
//! triggers renewal automatically"): which cards are due, and the lease that makes the task
//! run on one node at a time. The renewal itself is the life cycle's
//! ([`super::lifecycle::operate`]), so it writes what an issuer's renew writes.

use d1_domain::card::CardId;
use d1_domain::IssuerId;

use crate::db::{params, Db};
use crate::sql::renewals as sql;
use crate::StoreResult;

/// Takes the task `name` until `lease_until` unless another node holds it; whether taken.
pub(crate) async fn take_run<D: Db>(
    db: &D,
    name: &str,
    lease_until: i64,
    now: i64,
) -> StoreResult<bool> {
    db.exec(&sql::ADD_RUN, params![name]).await?;
    Ok(db
        .exec(&sql::TAKE_RUN, params![lease_until, name, now])
        .await?
        == 1)
}

/// Up to `limit` created cards expiring in one of the months `expiries` (MMYY) that are due
/// for renewal, by issuer and cardId.
pub(crate) async fn due<D: Db>(
    db: &D,
    expiries: &[String],
    limit: u32,
) -> StoreResult<Vec<(IssuerId, CardId)>> {
    let mut due = Vec::new();
    for expiry in expiries {
        let left = limit.saturating_sub(u32::try_from(due.len()).unwrap_or(u32::MAX));
        if left == 0 {
            break;
        }
        for mut r in db.query(&sql::DUE, params![expiry, left]).await? {
            due.push((r.parsed(0, IssuerId::parse)?, r.parsed(1, CardId::parse)?));
        }
    }
    Ok(due)
}
