//! Issuers, their assertion keys, used jtis and the service's keys on PostgreSQL.

use d1_domain::{IssuerId, LookalikePolicy};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::transaction::{exec, row, rows};
use crate::{
    AssertionKeyRecord, IssuerChange, IssuerRecord, KeyPurpose, NewIssuer, PiStorage,
    ServiceKeyRecord, StoreError, StoreResult,
};

fn malformed() -> StoreError {
    StoreError::Other(anyhow::anyhow!("stored issuer id is malformed"))
}

async fn insert_key(
    c: &impl GenericClient,
    issuer: &IssuerId,
    kid: &str,
    jwk: &str,
    now: i64,
) -> StoreResult<()> {
    let inserted = exec(
        c,
        "INSERT INTO issuer_keys (kid, issuer_id, public_jwk, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING",
        &[&kid, &issuer.as_str(), &jwk, &now],
    )
    .await?;
    if inserted == 0 {
        return Err(StoreError::Conflict("kid already registered"));
    }
    Ok(())
}

pub(super) async fn add(c: &impl GenericClient, issuer: &NewIssuer, now: i64) -> StoreResult<()> {
    let inserted = exec(
        c,
        "INSERT INTO issuers (issuer_id, pi_storage, click_to_pay, lookalike_policy, created_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        &[
            &issuer.issuer_id.as_str(),
            &issuer.pi_storage.as_str(),
            &issuer.click_to_pay,
            &issuer.lookalike_policy.as_str(),
            &now,
        ],
    )
    .await?;
    if inserted == 0 {
        return Err(StoreError::Conflict("issuer already exists"));
    }
    insert_key(c, &issuer.issuer_id, &issuer.kid, &issuer.public_jwk, now).await
}

pub(super) async fn change(
    c: &impl GenericClient,
    issuer: &IssuerId,
    change: &IssuerChange,
    now: i64,
) -> StoreResult<()> {
    let id = issuer.as_str();
    // Locks the issuer, so that two key removals cannot each leave the other's last key.
    if row(
        c,
        "SELECT 1 FROM issuers WHERE issuer_id = $1 FOR UPDATE",
        &[&id],
    )
    .await?
    .is_none()
    {
        return Err(StoreError::NotFound);
    }
    if let Some(v) = change.pi_storage {
        exec(
            c,
            "UPDATE issuers SET pi_storage = $2 WHERE issuer_id = $1",
            &[&id, &v.as_str()],
        )
        .await?;
    }
    if let Some(v) = change.click_to_pay {
        exec(
            c,
            "UPDATE issuers SET click_to_pay = $2 WHERE issuer_id = $1",
            &[&id, &v],
        )
        .await?;
    }
    if let Some(v) = change.lookalike_policy {
        exec(
            c,
            "UPDATE issuers SET lookalike_policy = $2 WHERE issuer_id = $1",
            &[&id, &v.as_str()],
        )
        .await?;
    }
    if let Some((kid, jwk)) = &change.add_key {
        insert_key(c, issuer, kid, jwk, now).await?;
    }
    if let Some(kid) = &change.remove_kid {
        let removed = exec(
            c,
            "DELETE FROM issuer_keys WHERE kid = $1 AND issuer_id = $2",
            &[kid, &id],
        )
        .await?;
        if removed == 0 {
            return Err(StoreError::NotFound);
        }
        let left: i64 = row(
            c,
            "SELECT count(*) FROM issuer_keys WHERE issuer_id = $1",
            &[&id],
        )
        .await?
        .map_or(0, |r| r.get(0));
        if left == 0 {
            return Err(StoreError::Conflict("an issuer keeps at least one key"));
        }
    }
    Ok(())
}

const ISSUER_COLUMNS: &str = "SELECT i.issuer_id, i.pi_storage, i.click_to_pay, i.lookalike_policy, i.created_at,
            COALESCE(array_agg(k.kid ORDER BY k.created_at, k.kid) FILTER (WHERE k.kid IS NOT NULL), '{}')
     FROM issuers i LEFT JOIN issuer_keys k ON k.issuer_id = i.issuer_id";

fn to_record(r: &Row) -> StoreResult<IssuerRecord> {
    let id: String = r.get(0);
    let storage: String = r.get(1);
    let policy: String = r.get(3);
    Ok(IssuerRecord {
        issuer_id: IssuerId::parse(&id).map_err(|_| malformed())?,
        pi_storage: PiStorage::parse(&storage).unwrap_or(PiStorage::Forbidden),
        click_to_pay: r.get(2),
        lookalike_policy: LookalikePolicy::parse(&policy).unwrap_or_default(),
        created_at: r.get(4),
        kids: r.get(5),
    })
}

pub(super) async fn get(
    c: &impl GenericClient,
    issuer: &IssuerId,
) -> StoreResult<Option<IssuerRecord>> {
    row(
        c,
        &format!("{ISSUER_COLUMNS} WHERE i.issuer_id = $1 GROUP BY i.issuer_id"),
        &[&issuer.as_str()],
    )
    .await?
    .as_ref()
    .map(to_record)
    .transpose()
}

pub(super) async fn list(c: &impl GenericClient) -> StoreResult<Vec<IssuerRecord>> {
    rows(
        c,
        &format!("{ISSUER_COLUMNS} GROUP BY i.issuer_id ORDER BY i.issuer_id"),
        &[],
    )
    .await?
    .iter()
    .map(to_record)
    .collect()
}

pub(super) async fn assertion_key(
    c: &impl GenericClient,
    kid: &str,
) -> StoreResult<Option<AssertionKeyRecord>> {
    let Some(r) = row(
        c,
        "SELECT issuer_id, public_jwk FROM issuer_keys WHERE kid = $1",
        &[&kid],
    )
    .await?
    else {
        return Ok(None);
    };
    let issuer: String = r.get(0);
    Ok(Some(AssertionKeyRecord {
        kid: kid.to_owned(),
        issuer_id: IssuerId::parse(&issuer).map_err(|_| malformed())?,
        public_jwk: r.get(1),
    }))
}

/// Records a jti; the primary key refuses it on every node once any node has seen it.
pub(super) async fn use_jti(
    c: &impl GenericClient,
    issuer: &IssuerId,
    jti: &str,
    expires_at: i64,
    now: i64,
) -> StoreResult<()> {
    exec(c, "DELETE FROM used_jtis WHERE expires_at < $1", &[&now]).await?;
    let inserted = exec(
        c,
        "INSERT INTO used_jtis (issuer_id, jti, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
        &[&issuer.as_str(), &jti, &expires_at],
    )
    .await?;
    if inserted == 0 {
        return Err(StoreError::Conflict("jti already used"));
    }
    Ok(())
}

pub(super) async fn service_keys(c: &impl GenericClient) -> StoreResult<Vec<ServiceKeyRecord>> {
    Ok(rows(
        c,
        "SELECT kid, purpose, wrapped, created_at, retired_at FROM service_keys
         ORDER BY created_at, kid",
        &[],
    )
    .await?
    .iter()
    .map(|r| ServiceKeyRecord {
        kid: r.get(0),
        purpose: if r.get::<_, &str>(1) == "sig" {
            KeyPurpose::Signing
        } else {
            KeyPurpose::Encryption
        },
        wrapped: r.get(2),
        created_at: r.get(3),
        retired_at: r.get(4),
    })
    .collect())
}

pub(super) async fn add_service_key(
    c: &impl GenericClient,
    key: &ServiceKeyRecord,
) -> StoreResult<()> {
    let inserted = exec(
        c,
        "INSERT INTO service_keys (kid, purpose, wrapped, created_at, retired_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        &[
            &key.kid,
            &key.purpose.as_str(),
            &key.wrapped,
            &key.created_at,
            &key.retired_at,
        ],
    )
    .await?;
    if inserted == 0 {
        return Err(StoreError::Conflict("kid already exists"));
    }
    Ok(())
}

pub(super) async fn retire_service_key(
    c: &impl GenericClient,
    kid: &str,
    now: i64,
) -> StoreResult<()> {
    // Locks every active key of the purpose, so that two nodes retiring the last two keys
    // at once cannot leave none.
    let Some(purpose) = row(
        c,
        "SELECT purpose FROM service_keys WHERE kid = $1 AND retired_at IS NULL",
        &[&kid],
    )
    .await?
    .map(|r| r.get::<_, String>(0)) else {
        return Err(StoreError::NotFound);
    };
    let active = rows(
        c,
        "SELECT kid FROM service_keys WHERE purpose = $1 AND retired_at IS NULL FOR UPDATE",
        &[&purpose],
    )
    .await?;
    if !active.iter().any(|r| r.get::<_, &str>(0) == kid) {
        return Err(StoreError::NotFound);
    }
    if active.len() <= 1 {
        return Err(StoreError::Conflict(
            "the last active key cannot be retired",
        ));
    }
    exec(
        c,
        "UPDATE service_keys SET retired_at = $2 WHERE kid = $1",
        &[&kid, &now],
    )
    .await?;
    Ok(())
}
