//! PostgreSQL's errors, described without the values in them, and the lost race a use case
//! reports itself.

use tokio_postgres::error::SqlState;

use crate::StoreError;

/// A database error, described without the values in it: PostgreSQL's DETAIL repeats the
/// key of a violated index, and no key value belongs in a log line.
#[derive(Debug)]
pub(super) struct PgError {
    pub(super) code: Option<SqlState>,
    text: String,
}

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for PgError {}

/// A write found its row taken by a transaction that committed after this one looked.
#[derive(Debug, thiserror::Error)]
#[error("a concurrent transaction changed the row; trying again")]
pub(super) struct Contended;

/// Maps a driver error to a store error.
pub(super) fn pg(e: tokio_postgres::Error) -> StoreError {
    let text = match e.as_db_error() {
        Some(db) => format!("PostgreSQL {}: {}", db.code().code(), db.message()),
        None if e.is_closed() => "the PostgreSQL connection is closed".to_owned(),
        None => "PostgreSQL connection error".to_owned(),
    };
    StoreError::Other(anyhow::Error::new(PgError {
        code: e.code().cloned(),
        text,
    }))
}

/// Maps a pool failure: every connection busy for the whole wait is an overload; no
/// connection made within the timeout (the database unreachable) is a failure.
pub(super) fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    let text = match e {
        deadpool_postgres::PoolError::Backend(e) => return pg(e),
        // Every connection stayed busy for the whole wait: the node's queue for them is full,
        // and nothing was written (503 `OVERLOADED`, contract section 3).
        deadpool_postgres::PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => {
            return StoreError::Overloaded
        }
        deadpool_postgres::PoolError::Timeout(_) => "no PostgreSQL connection within the timeout",
        _ => "the PostgreSQL pool failed",
    };
    StoreError::Other(anyhow::Error::new(PgError {
        code: None,
        text: text.to_owned(),
    }))
}

#[cfg(test)]
mod tests {
    use deadpool_postgres::{PoolError, TimeoutType};

    use super::pool_error;
    use crate::StoreError;

    #[test]
    fn a_wait_for_a_busy_pool_is_an_overload_and_an_unreachable_database_is_not() {
        assert!(matches!(
            pool_error(PoolError::Timeout(TimeoutType::Wait)),
            StoreError::Overloaded
        ));
        assert!(matches!(
            pool_error(PoolError::Timeout(TimeoutType::Create)),
            StoreError::Other(_)
        ));
    }
}
