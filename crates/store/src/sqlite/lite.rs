//! The primitives of [`crate::db::Db`] on a SQLite connection: each statement runs at once,
//! prepared once per connection, so a use case's future is ready when first polled.

use std::future::{ready, Future};
use std::sync::Arc;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{params_from_iter, Connection};

use crate::db::{corrupt, names_of, Cell, Db, Row, Sql, Value};
use crate::{StoreError, StoreResult};

/// How many prepared statements a connection keeps: more than the store has (some 70;
/// rusqlite keeps 16 unless told).
pub(crate) const STATEMENTS: usize = 128;

/// A driver error. SQLite's messages name constraints and columns, never values.
pub(crate) fn sql(e: rusqlite::Error) -> StoreError {
    StoreError::Other(e.into())
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match *self {
            Self::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Self::Int(v) => ToSqlOutput::Borrowed(ValueRef::Integer(v)),
            Self::Bool(v) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(v))),
            Self::Text(v) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Self::Blob(v) => ToSqlOutput::Borrowed(ValueRef::Blob(v)),
        })
    }
}

/// A connection inside the writer's transaction, or a reader's.
pub(crate) struct Lite<'c> {
    conn: &'c Connection,
}

impl<'c> Lite<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Self {
        Self { conn }
    }

    fn rows(&self, sql: &'static Sql, params: &[Value<'_>], max: usize) -> StoreResult<Vec<Row>> {
        let mut statement = self.conn.prepare_cached(sql.text).map_err(self::sql)?;
        let names = names_of(sql, || {
            statement
                .column_names()
                .into_iter()
                .map(str::to_owned)
                .collect()
        });
        let mut rows = statement
            .query(params_from_iter(params))
            .map_err(self::sql)?;
        let mut found = Vec::new();
        while found.len() < max {
            let Some(r) = rows.next().map_err(self::sql)? else {
                break;
            };
            let mut cells = Vec::with_capacity(names.len());
            for i in 0..names.len() {
                cells.push(match r.get_ref(i) {
                    Ok(ValueRef::Null) => Cell::Null,
                    Ok(ValueRef::Integer(v)) => Cell::Int(v),
                    Ok(ValueRef::Text(v)) => match std::str::from_utf8(v) {
                        Ok(v) => Cell::Text(v.to_owned()),
                        Err(_) => return Err(corrupt(sql.table, &names, i)),
                    },
                    Ok(ValueRef::Blob(v)) => Cell::Blob(v.to_vec()),
                    Ok(ValueRef::Real(_)) | Err(_) => return Err(corrupt(sql.table, &names, i)),
                });
            }
            found.push(Row::new(sql.table, Arc::clone(&names), cells));
        }
        Ok(found)
    }
}

impl Db for Lite<'_> {
    fn exec(
        &self,
        sql: &'static Sql,
        params: &[Value<'_>],
    ) -> impl Future<Output = StoreResult<u64>> + Send {
        ready(
            self.conn
                .prepare_cached(sql.text)
                .and_then(|mut s| s.execute(params_from_iter(params)))
                .map(|n| u64::try_from(n).unwrap_or(u64::MAX))
                .map_err(self::sql),
        )
    }

    fn query(
        &self,
        sql: &'static Sql,
        params: &[Value<'_>],
    ) -> impl Future<Output = StoreResult<Vec<Row>>> + Send {
        ready(self.rows(sql, params, usize::MAX))
    }

    fn query_opt(
        &self,
        sql: &'static Sql,
        params: &[Value<'_>],
    ) -> impl Future<Output = StoreResult<Option<Row>>> + Send {
        ready(
            self.rows(sql, params, 1)
                .map(|rows| rows.into_iter().next()),
        )
    }

    fn insert_id(
        &self,
        plain: &'static Sql,
        _returning: &'static Sql,
        params: &[Value<'_>],
    ) -> impl Future<Output = StoreResult<Option<i64>>> + Send {
        ready(
            self.conn
                .prepare_cached(plain.text)
                .and_then(|mut s| s.execute(params_from_iter(params)))
                .map(|n| (n == 1).then(|| self.conn.last_insert_rowid()))
                .map_err(self::sql),
        )
    }

    fn batch(&self, sql: &'static str) -> impl Future<Output = StoreResult<()>> + Send {
        ready(self.conn.execute_batch(sql).map_err(self::sql))
    }

    fn locks_rows(&self) -> bool {
        false
    }

    fn lost_race(&self) -> StoreError {
        StoreError::Other(anyhow::anyhow!(
            "a row changed inside the single writer's own transaction"
        ))
    }
}
