//! Issuers, their assertion keys, used jtis and the service's keys on SQLite.

use d1_domain::{IssuerId, LookalikePolicy};
use rusqlite::{params, Connection, ErrorCode, OptionalExtension};

use super::sql;
use crate::{
    AssertionKeyRecord, IssuerChange, IssuerRecord, KeyPurpose, NewIssuer, PiStorage,
    ServiceKeyRecord, StoreError, StoreResult,
};

pub(super) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation)
}

fn insert_key(
    conn: &Connection,
    issuer: &IssuerId,
    kid: &str,
    jwk: &str,
    now: i64,
) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO issuer_keys (kid, issuer_id, public_jwk, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![kid, issuer.as_str(), jwk, now],
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict("kid already registered")
        } else {
            sql(e)
        }
    })?;
    Ok(())
}

pub(super) fn add(conn: &Connection, issuer: &NewIssuer, now: i64) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO issuers (issuer_id, pi_storage, click_to_pay, lookalike_policy, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            issuer.issuer_id.as_str(),
            issuer.pi_storage.as_str(),
            issuer.click_to_pay,
            issuer.lookalike_policy.as_str(),
            now
        ],
    )
    .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("issuer already exists") } else { sql(e) })?;
    insert_key(
        conn,
        &issuer.issuer_id,
        &issuer.kid,
        &issuer.public_jwk,
        now,
    )
}

pub(super) fn change(
    conn: &Connection,
    issuer: &IssuerId,
    change: &IssuerChange,
    now: i64,
) -> StoreResult<()> {
    if get(conn, issuer)?.is_none() {
        return Err(StoreError::NotFound);
    }
    let id = issuer.as_str();
    if let Some(v) = change.pi_storage {
        conn.execute(
            "UPDATE issuers SET pi_storage = ?2 WHERE issuer_id = ?1",
            params![id, v.as_str()],
        )
        .map_err(sql)?;
    }
    if let Some(v) = change.click_to_pay {
        conn.execute(
            "UPDATE issuers SET click_to_pay = ?2 WHERE issuer_id = ?1",
            params![id, v],
        )
        .map_err(sql)?;
    }
    if let Some(v) = change.lookalike_policy {
        conn.execute(
            "UPDATE issuers SET lookalike_policy = ?2 WHERE issuer_id = ?1",
            params![id, v.as_str()],
        )
        .map_err(sql)?;
    }
    if let Some((kid, jwk)) = &change.add_key {
        insert_key(conn, issuer, kid, jwk, now)?;
    }
    if let Some(kid) = &change.remove_kid {
        let removed = conn
            .execute(
                "DELETE FROM issuer_keys WHERE kid = ?1 AND issuer_id = ?2",
                params![kid, id],
            )
            .map_err(sql)?;
        if removed == 0 {
            return Err(StoreError::NotFound);
        }
        let left: i64 = conn
            .query_row(
                "SELECT count(*) FROM issuer_keys WHERE issuer_id = ?1",
                params![id],
                |r| r.get(0),
            )
            .map_err(sql)?;
        if left == 0 {
            return Err(StoreError::Conflict("an issuer keeps at least one key"));
        }
    }
    Ok(())
}

fn kids(conn: &Connection, issuer: &str) -> StoreResult<Vec<String>> {
    let mut stmt = conn
        .prepare_cached("SELECT kid FROM issuer_keys WHERE issuer_id = ?1 ORDER BY created_at, kid")
        .map_err(sql)?;
    stmt.query_map(params![issuer], |r| r.get(0))
        .and_then(Iterator::collect)
        .map_err(sql)
}

fn read_issuer(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, bool, String, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn to_record(
    conn: &Connection,
    raw: (String, String, bool, String, i64),
) -> StoreResult<IssuerRecord> {
    let (id, storage, click_to_pay, policy, created_at) = raw;
    let issuer_id = IssuerId::parse(&id)
        .map_err(|_| StoreError::Other(anyhow::anyhow!("stored issuer id is malformed")))?;
    Ok(IssuerRecord {
        kids: kids(conn, &id)?,
        issuer_id,
        pi_storage: PiStorage::parse(&storage).unwrap_or(PiStorage::Forbidden),
        click_to_pay,
        lookalike_policy: LookalikePolicy::parse(&policy).unwrap_or_default(),
        created_at,
    })
}

const ISSUER_COLUMNS: &str =
    "SELECT issuer_id, pi_storage, click_to_pay, lookalike_policy, created_at FROM issuers";

pub(super) fn get(conn: &Connection, issuer: &IssuerId) -> StoreResult<Option<IssuerRecord>> {
    let raw = conn
        .prepare_cached(&format!("{ISSUER_COLUMNS} WHERE issuer_id = ?1"))
        .and_then(|mut s| {
            s.query_row(params![issuer.as_str()], read_issuer)
                .optional()
        })
        .map_err(sql)?;
    raw.map(|raw| to_record(conn, raw)).transpose()
}

pub(super) fn list(conn: &Connection) -> StoreResult<Vec<IssuerRecord>> {
    let raws: Vec<_> = conn
        .prepare_cached(&format!("{ISSUER_COLUMNS} ORDER BY issuer_id"))
        .and_then(|mut s| s.query_map([], read_issuer).and_then(Iterator::collect))
        .map_err(sql)?;
    raws.into_iter().map(|raw| to_record(conn, raw)).collect()
}

pub(super) fn assertion_key(
    conn: &Connection,
    kid: &str,
) -> StoreResult<Option<AssertionKeyRecord>> {
    let raw: Option<(String, String)> = conn
        .prepare_cached("SELECT issuer_id, public_jwk FROM issuer_keys WHERE kid = ?1")
        .and_then(|mut s| {
            s.query_row(params![kid], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(sql)?;
    raw.map(|(issuer, jwk)| {
        let issuer_id = IssuerId::parse(&issuer)
            .map_err(|_| StoreError::Other(anyhow::anyhow!("stored issuer id is malformed")))?;
        Ok(AssertionKeyRecord {
            kid: kid.to_owned(),
            issuer_id,
            public_jwk: jwk,
        })
    })
    .transpose()
}

pub(super) fn use_jti(
    conn: &Connection,
    issuer: &IssuerId,
    jti: &str,
    expires_at: i64,
    now: i64,
) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM used_jtis WHERE expires_at < ?1")
        .and_then(|mut s| s.execute(params![now]))
        .map_err(sql)?;
    conn.prepare_cached("INSERT INTO used_jtis (issuer_id, jti, expires_at) VALUES (?1, ?2, ?3)")
        .and_then(|mut s| s.execute(params![issuer.as_str(), jti, expires_at]))
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict("jti already used")
            } else {
                sql(e)
            }
        })?;
    Ok(())
}

pub(super) fn service_keys(conn: &Connection) -> StoreResult<Vec<ServiceKeyRecord>> {
    let mut stmt = conn
        .prepare_cached("SELECT kid, purpose, wrapped, created_at, retired_at FROM service_keys ORDER BY created_at, kid")
        .map_err(sql)?;
    stmt.query_map([], |r| {
        let purpose: String = r.get(1)?;
        Ok(ServiceKeyRecord {
            kid: r.get(0)?,
            purpose: if purpose == "sig" {
                KeyPurpose::Signing
            } else {
                KeyPurpose::Encryption
            },
            wrapped: r.get(2)?,
            created_at: r.get(3)?,
            retired_at: r.get(4)?,
        })
    })
    .and_then(Iterator::collect)
    .map_err(sql)
}

pub(super) fn add_service_key(conn: &Connection, key: &ServiceKeyRecord) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO service_keys (kid, purpose, wrapped, created_at, retired_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![key.kid, key.purpose.as_str(), key.wrapped, key.created_at, key.retired_at],
    )
    .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("kid already exists") } else { sql(e) })?;
    Ok(())
}

pub(super) fn retire_service_key(conn: &Connection, kid: &str, now: i64) -> StoreResult<()> {
    let purpose: Option<String> = conn
        .query_row(
            "SELECT purpose FROM service_keys WHERE kid = ?1 AND retired_at IS NULL",
            params![kid],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql)?;
    let purpose = purpose.ok_or(StoreError::NotFound)?;
    let active: i64 = conn
        .query_row(
            "SELECT count(*) FROM service_keys WHERE purpose = ?1 AND retired_at IS NULL",
            params![purpose],
            |r| r.get(0),
        )
        .map_err(sql)?;
    if active <= 1 {
        return Err(StoreError::Conflict(
            "the last active key cannot be retired",
        ));
    }
    conn.execute(
        "UPDATE service_keys SET retired_at = ?2 WHERE kid = ?1",
        params![kid, now],
    )
    .map_err(sql)?;
    Ok(())
}
