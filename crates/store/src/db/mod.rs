//! The primitives every backend implements, and over which each use case is written once
//! (`crate::rules`): a statement with typed parameters, run, and its rows read back without a
//! panic. A backend adds only what really differs: how it reaches the database, whether its
//! reads lock rows, and how a lost race is reported.

mod row;
mod value;

use std::future::Future;
use std::task::{Context, Poll, Waker};

pub(crate) use row::{corrupt, known, names_of, Cell, Row};
pub(crate) use value::Value;

use crate::{StoreError, StoreResult};

/// One SQL statement, written once for both backends with `$N` placeholders, and the table
/// its rows come from, named when a stored value does not decode.
#[derive(Debug)]
pub(crate) struct Sql {
    pub table: &'static str,
    pub text: &'static str,
}

/// The parameters of a statement: `params![a, b]` is `&[Value::from(a), Value::from(b)]`.
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        &[$($crate::db::Value::from($value)),*]
    };
}
pub(crate) use params;

/// What a use case needs from the database it runs on: a transaction for a write, a
/// connection for a read.
///
/// Statements that do not need each other's answers are polled together (`try_join`), so
/// that PostgreSQL takes them in one round trip: tokio-postgres pipelines the requests of a
/// connection. Both backends run them in the order polled, SQLite because its statements
/// complete when called, PostgreSQL because [`crate::postgres::Pg`] sends them in that
/// order. In a transaction on PostgreSQL a failed statement fails the ones after it; the
/// join, polling in the same order, reports the failed statement's own error first.
pub(crate) trait Db {
    /// Runs a statement; the number of rows it changed.
    fn exec(
        &self,
        sql: &'static Sql,
        params: &[Value<'_>],
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Every row of a query.
    fn query(
        &self,
        sql: &'static Sql,
        params: &[Value<'_>],
    ) -> impl Future<Output = StoreResult<Vec<Row>>> + Send;

    /// The first row of a query, if any.
    fn query_opt(
        &self,
        sql: &'static Sql,
        params: &[Value<'_>],
    ) -> impl Future<Output = StoreResult<Option<Row>>> + Send;

    /// Runs an `INSERT … ON CONFLICT DO NOTHING`: the new row's id, or `None` when the
    /// conflict kept it out. `returning` is the same statement with `RETURNING id`, for a
    /// backend that cannot ask for the last row's id (PostgreSQL); SQLite runs `plain`, since a
    /// RETURNING clause costs it a temporary table every time.
    fn insert_id(
        &self,
        plain: &'static Sql,
        returning: &'static Sql,
        params: &[Value<'_>],
    ) -> impl Future<Output = StoreResult<Option<i64>>> + Send;

    /// Runs statements without parameters or rows (savepoints).
    fn batch(&self, sql: &'static str) -> impl Future<Output = StoreResult<()>> + Send;

    /// Whether `FOR UPDATE` reads are needed: several nodes write at once (PostgreSQL), not
    /// one writer thread (SQLite).
    fn locks_rows(&self) -> bool;

    /// What a use case reports when a row it just failed to insert is not there, or one it
    /// found absent appeared: another writer got in between. PostgreSQL runs the use case
    /// again; on SQLite's single writer it cannot happen.
    fn lost_race(&self) -> StoreError;
}

/// The statement to read with: `locked` where reads lock rows, else `plain`.
pub(crate) fn locking<D: Db>(db: &D, plain: &'static Sql, locked: &'static Sql) -> &'static Sql {
    if db.locks_rows() {
        locked
    } else {
        plain
    }
}

/// Runs a use case whose every statement completes at once (SQLite's): polled once, it is
/// ready. A use case that is not ready fails instead of blocking the thread.
pub(crate) fn ready_now<T, E: From<StoreError>>(
    future: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(outcome) => outcome,
        Poll::Pending => Err(StoreError::Other(anyhow::anyhow!(
            "a use case waited on a database that answers at once"
        ))
        .into()),
    }
}
