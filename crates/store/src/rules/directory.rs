//! The simulated Click to Pay directory: a profile per consumer and the cards enrolled in it,
//! each sealed under a data key of its own.

use d1_domain::{ConsumerId, IssuerId};

use crate::db::{locking, params, Db};
use crate::sql::clicktopay as sql;
use crate::{DirectoryRecord, DirectoryWrite, Sealed, StoreResult};

/// Writes a profile, with a card to add. Without `create` it only replaces a profile that
/// exists. Whether the profile existed before.
pub(crate) async fn put<D: Db>(
    db: &D,
    w: &DirectoryWrite,
    create: bool,
    now: i64,
) -> StoreResult<bool> {
    let (issuer, consumer) = (w.issuer_id.as_str(), w.consumer_id.as_str());
    let statement = locking(db, &sql::PROFILE_EXISTS, &sql::LOCK_PROFILE);
    let exists = db
        .query_opt(statement, params![issuer, consumer])
        .await?
        .is_some();
    if !exists && !create {
        return Ok(false);
    }
    db.exec(
        &sql::UPSERT_PROFILE,
        params![
            issuer,
            consumer,
            &w.profile.wrapped_key,
            &w.profile.sealed,
            now
        ],
    )
    .await?;
    if let Some((card_id, card)) = &w.card {
        db.exec(
            &sql::UPSERT_DIRECTORY_CARD,
            params![
                issuer,
                consumer,
                card_id,
                &card.wrapped_key,
                &card.sealed,
                now
            ],
        )
        .await?;
    }
    Ok(exists)
}

/// Removes a consumer's profile and cards; whether it had a profile.
pub(crate) async fn remove<D: Db>(
    db: &D,
    issuer: &IssuerId,
    consumer: &ConsumerId,
) -> StoreResult<bool> {
    let keys = params![issuer.as_str(), consumer.as_str()];
    db.exec(&sql::DELETE_DIRECTORY_CARDS, keys).await?;
    Ok(db.exec(&sql::DELETE_PROFILE, keys).await? > 0)
}

/// A consumer's profile, with its cards' ids in the order they were added.
pub(crate) async fn profile<D: Db>(
    db: &D,
    issuer: &IssuerId,
    consumer: &ConsumerId,
) -> StoreResult<Option<DirectoryRecord>> {
    let keys = params![issuer.as_str(), consumer.as_str()];
    let Some(mut r) = db.query_opt(&sql::PROFILE, keys).await? else {
        return Ok(None);
    };
    let mut card_ids = Vec::new();
    for mut c in db.query(&sql::DIRECTORY_CARD_IDS, keys).await? {
        card_ids.push(c.text(0)?);
    }
    Ok(Some(DirectoryRecord {
        profile: Sealed {
            wrapped_key: r.blob(0)?,
            sealed: r.blob(1)?,
        },
        card_ids,
        created_at: r.int(2)?,
        updated_at: r.int(3)?,
    }))
}
