//! Issuers, their assertion keys, used jtis, the service's own keys, and the KEK check a
//! store makes when it opens.

use d1_domain::{IssuerId, LookalikePolicy};

use crate::db::{known, locking, params, Db, Row};
use crate::kek::{self, FINGERPRINT_KEY};
use crate::sql::{consumers as meta, issuers as sql};
use crate::{
    AssertionKeyRecord, CertBindings, IssuerChange, IssuerRecord, KeyPurpose, NewIssuer, PiStorage,
    ServiceKeyRecord, StoreError, StoreOptions, StoreResult, Vault,
};

async fn insert_key<D: Db>(
    db: &D,
    issuer: &IssuerId,
    kid: &str,
    jwk: &str,
    now: i64,
) -> StoreResult<()> {
    super::aggregators::refuse_aggregator_kid(db, kid).await?;
    let inserted = db
        .exec(&sql::INSERT_KEY, params![kid, issuer.as_str(), jwk, now])
        .await?;
    if inserted == 0 {
        return Err(StoreError::Conflict("kid already registered"));
    }
    Ok(())
}

/// Replaces an issuer's client certificate bindings.
async fn bind_certs<D: Db>(db: &D, issuer: &IssuerId, certs: &CertBindings) -> StoreResult<()> {
    let id = issuer.as_str();
    db.exec(&sql::CLEAR_CLIENT_CERTS, params![id]).await?;
    let kinds = [("subject", &certs.subjects), ("san", &certs.sans)];
    for (kind, values) in kinds {
        for value in values {
            db.exec(&sql::INSERT_CLIENT_CERT, params![id, kind, value])
                .await?;
        }
    }
    Ok(())
}

/// Onboards an issuer with its first key.
pub(crate) async fn add<D: Db>(db: &D, issuer: &NewIssuer, now: i64) -> StoreResult<()> {
    super::aggregators::refuse_aggregator_id(db, &issuer.issuer_id).await?;
    let inserted = db
        .exec(
            &sql::INSERT,
            params![
                issuer.issuer_id.as_str(),
                issuer.pi_storage.as_str(),
                issuer.click_to_pay,
                issuer.lookalike_policy.as_str(),
                now,
                issuer.require_jti,
            ],
        )
        .await?;
    if inserted == 0 {
        return Err(StoreError::Conflict("issuer already exists"));
    }
    insert_key(db, &issuer.issuer_id, &issuer.kid, &issuer.public_jwk, now).await?;
    bind_certs(db, &issuer.issuer_id, &issuer.client_certs).await
}

/// Changes an issuer's settings and keys; it keeps at least one key.
pub(crate) async fn change<D: Db>(
    db: &D,
    issuer: &IssuerId,
    change: &IssuerChange,
    now: i64,
) -> StoreResult<()> {
    let id = issuer.as_str();
    let statement = locking(db, &sql::EXISTS, &sql::LOCK);
    if db.query_opt(statement, params![id]).await?.is_none() {
        return Err(StoreError::NotFound);
    }
    if let Some(v) = change.pi_storage {
        db.exec(&sql::SET_PI_STORAGE, params![v.as_str(), id])
            .await?;
    }
    if let Some(v) = change.click_to_pay {
        db.exec(&sql::SET_CLICK_TO_PAY, params![v, id]).await?;
    }
    if let Some(v) = change.lookalike_policy {
        db.exec(&sql::SET_LOOKALIKE, params![v.as_str(), id])
            .await?;
    }
    if let Some(certs) = &change.client_certs {
        bind_certs(db, issuer, certs).await?;
    }
    if let Some(v) = change.require_jti {
        db.exec(&sql::SET_REQUIRE_JTI, params![v, id]).await?;
    }
    if let Some((kid, jwk)) = &change.add_key {
        insert_key(db, issuer, kid, jwk, now).await?;
    }
    if let Some(kid) = &change.remove_kid {
        if db.exec(&sql::DELETE_KEY, params![kid, id]).await? == 0 {
            return Err(StoreError::NotFound);
        }
        let left = match db.query_opt(&sql::COUNT_KEYS, params![id]).await? {
            Some(mut r) => r.int(0)?,
            None => 0,
        };
        if left == 0 {
            return Err(StoreError::Conflict("an issuer keeps at least one key"));
        }
    }
    Ok(())
}

async fn record<D: Db>(db: &D, mut r: Row) -> StoreResult<IssuerRecord> {
    let issuer_id: IssuerId = r.parsed(0, IssuerId::parse)?;
    let mut kids = Vec::new();
    for mut k in db.query(&sql::KIDS, params![issuer_id.as_str()]).await? {
        kids.push(k.text(0)?);
    }
    let mut client_certs = CertBindings::default();
    for mut c in db
        .query(&sql::CLIENT_CERTS, params![issuer_id.as_str()])
        .await?
    {
        let (kind, value) = (c.text(0)?, c.text(1)?);
        if kind == "subject" {
            client_certs.subjects.push(value);
        } else {
            client_certs.sans.push(value);
        }
    }
    Ok(IssuerRecord {
        issuer_id,
        pi_storage: r.parsed(1, |s| known(PiStorage::parse(s)))?,
        click_to_pay: r.bool(2)?,
        lookalike_policy: r.parsed(3, |s| known(LookalikePolicy::parse(s)))?,
        created_at: r.int(4)?,
        require_jti: r.bool(5)?,
        kids,
        client_certs,
    })
}

/// One issuer.
pub(crate) async fn get<D: Db>(db: &D, issuer: &IssuerId) -> StoreResult<Option<IssuerRecord>> {
    match db.query_opt(&sql::BY_ID, params![issuer.as_str()]).await? {
        Some(r) => record(db, r).await.map(Some),
        None => Ok(None),
    }
}

/// Every issuer, by id.
pub(crate) async fn list<D: Db>(db: &D) -> StoreResult<Vec<IssuerRecord>> {
    let mut issuers = Vec::new();
    for r in db.query(&sql::ALL_ISSUERS, params![]).await? {
        issuers.push(record(db, r).await?);
    }
    Ok(issuers)
}

/// The assertion key with this kid, whoever owns it.
pub(crate) async fn assertion_key<D: Db>(
    db: &D,
    kid: &str,
) -> StoreResult<Option<AssertionKeyRecord>> {
    let Some(mut r) = db.query_opt(&sql::ASSERTION_KEY, params![kid]).await? else {
        return Ok(None);
    };
    let issuer_id: IssuerId = r.parsed(0, IssuerId::parse)?;
    let aggregated = if r.bool(3)? {
        Some(super::aggregators::issuers_of(db, issuer_id.as_str()).await?)
    } else {
        None
    };
    Ok(Some(AssertionKeyRecord {
        kid: kid.to_owned(),
        issuer_id,
        public_jwk: r.text(1)?,
        aggregated,
        require_jti: r.bool(2)?,
    }))
}

/// Records a jti until it expires; `Conflict` if it was seen already.
pub(crate) async fn use_jti<D: Db>(
    db: &D,
    issuer: &IssuerId,
    jti: &str,
    expires_at: i64,
    now: i64,
) -> StoreResult<()> {
    db.exec(&sql::PURGE_JTIS, params![now]).await?;
    let inserted = db
        .exec(&sql::USE_JTI, params![issuer.as_str(), jti, expires_at])
        .await?;
    if inserted == 0 {
        return Err(StoreError::Conflict("jti already used"));
    }
    Ok(())
}

fn purpose(s: &str) -> Option<KeyPurpose> {
    [KeyPurpose::Signing, KeyPurpose::Encryption]
        .into_iter()
        .find(|p| p.as_str() == s)
}

/// Every service key, retired ones included, oldest first.
pub(crate) async fn service_keys<D: Db>(db: &D) -> StoreResult<Vec<ServiceKeyRecord>> {
    let mut keys = Vec::new();
    for mut r in db.query(&sql::SERVICE_KEYS, params![]).await? {
        keys.push(ServiceKeyRecord {
            kid: r.text(0)?,
            purpose: r.parsed(1, |s| known(purpose(s)))?,
            wrapped: r.blob(2)?,
            created_at: r.int(3)?,
            retired_at: r.opt_int(4)?,
        });
    }
    Ok(keys)
}

/// Adds a service key; `Conflict` if its kid exists.
pub(crate) async fn add_service_key<D: Db>(db: &D, key: &ServiceKeyRecord) -> StoreResult<()> {
    let inserted = db
        .exec(
            &sql::INSERT_SERVICE_KEY,
            params![
                &key.kid,
                key.purpose.as_str(),
                &key.wrapped,
                key.created_at,
                key.retired_at,
            ],
        )
        .await?;
    if inserted == 0 {
        return Err(StoreError::Conflict("kid already exists"));
    }
    Ok(())
}

/// Retires a service key unless it is the last active key of its purpose.
pub(crate) async fn retire_service_key<D: Db>(db: &D, kid: &str, now: i64) -> StoreResult<()> {
    let Some(mut r) = db.query_opt(&sql::ACTIVE_PURPOSE, params![kid]).await? else {
        return Err(StoreError::NotFound);
    };
    let purpose = r.text(0)?;
    let statement = locking(db, &sql::ACTIVE_OF_PURPOSE, &sql::LOCK_ACTIVE_OF_PURPOSE);
    let mut active = Vec::new();
    for mut r in db.query(statement, params![&purpose]).await? {
        active.push(r.text(0)?);
    }
    // Retired by another node between the two reads.
    if !active.iter().any(|k| k == kid) {
        return Err(StoreError::NotFound);
    }
    if active.len() <= 1 {
        return Err(StoreError::Conflict(
            "the last active key cannot be retired",
        ));
    }
    db.exec(&sql::RETIRE, params![now, kid]).await?;
    Ok(())
}

/// Stores `value` under `key` unless a value is there already; the value that stays.
async fn put_once<D: Db>(db: &D, key: &str, value: &str) -> StoreResult<String> {
    db.exec(&meta::META_ONCE, params![key, value]).await?;
    match db.query_opt(&meta::META, params![key]).await? {
        Some(mut r) => r.text(0),
        None => Err(db.lost_race()),
    }
}

/// Checks the KEK against the database (storing its fingerprint the first time) and opens
/// the PAN MAC key, creating it the first time: the vault that unlocks the store. Whichever
/// node gets there first decides; the others read what it stored.
pub(crate) async fn unlock<D: Db>(db: &D, options: &StoreOptions) -> anyhow::Result<Vault> {
    use base64::Engine;
    let fingerprint = match db.query_opt(&meta::META, params![FINGERPRINT_KEY]).await? {
        Some(mut r) => Some(r.text(0)?),
        None => None,
    };
    let has_data = match db.query_opt(&meta::HAS_DATA, params![]).await? {
        Some(mut r) => r.bool(0)?,
        None => false,
    };
    let resolved = kek::resolve(&options.kek_file, fingerprint.as_deref(), has_data)?;
    if resolved.store_fingerprint {
        let stored = put_once(db, FINGERPRINT_KEY, resolved.kek.fingerprint()).await?;
        anyhow::ensure!(
            stored == resolved.kek.fingerprint(),
            "another KEK was registered for this database concurrently; give every node the \
             same KEK file"
        );
    }
    let engine = base64::engine::general_purpose::STANDARD;
    let fresh = zeroize::Zeroizing::new(d1_crypto::random_bytes::<32>()?);
    let wrapped = engine.encode(
        resolved
            .kek
            .wrap(fresh.as_ref(), d1_crypto::policy::PAN_MAC_CONTEXT)?,
    );
    let stored = put_once(db, "pan_mac_key", &wrapped).await?;
    let mac_key = resolved
        .kek
        .unwrap(&engine.decode(stored)?, d1_crypto::policy::PAN_MAC_CONTEXT)?;
    Ok(Vault::new(resolved.kek, &mac_key))
}
