//! The primitives of [`crate::db::Db`] on PostgreSQL, over a transaction or a pooled
//! connection: statements prepared once per connection, parameters bound to the types
//! PostgreSQL inferred for them, cells read by their column's type without a panic.
//!
//! Statements polled together go out in the order they were first polled, even when one of
//! them has to be prepared first: tokio-postgres sends a request when its future is first
//! polled, and a statement's preparing and sending take turns on a fair lock ([`Pg::send`]).

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use bytes::BytesMut;
use deadpool_postgres::GenericClient;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};

use super::error::{pg, Contended};
use crate::db::{corrupt, names_of, Cell, Db, Row, Sql, Value};
use crate::{StoreError, StoreResult};

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl ToSql for Value<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match *self {
            Self::Null => Ok(IsNull::Yes),
            Self::Int(v) => match *ty {
                Type::INT8 => v.to_sql(ty, out),
                Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(v)?.to_sql(ty, out),
                _ => Err(mismatch("an integer", ty)),
            },
            Self::Bool(v) if *ty == Type::BOOL => v.to_sql(ty, out),
            Self::Text(v) if *ty == Type::UUID => uuid::Uuid::parse_str(v)?.to_sql(ty, out),
            Self::Text(v) if <&str as ToSql>::accepts(ty) => v.to_sql(ty, out),
            Self::Blob(v) if *ty == Type::BYTEA => v.to_sql(ty, out),
            Self::Bool(_) => Err(mismatch("a boolean", ty)),
            Self::Text(_) => Err(mismatch("a text", ty)),
            Self::Blob(_) => Err(mismatch("bytes", ty)),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn mismatch(what: &str, ty: &Type) -> BoxError {
    format!("{what} cannot be bound to a parameter of type {ty}").into()
}

/// A transaction, or a pooled connection for a read.
pub(crate) struct Pg<'c, C> {
    client: &'c C,
    /// Held from a statement's turn until its request is sent; first come, first served.
    turn: tokio::sync::Mutex<()>,
}

impl<'c, C: GenericClient + Sync> Pg<'c, C> {
    pub(crate) fn new(client: &'c C) -> Self {
        Self {
            client,
            turn: tokio::sync::Mutex::new(()),
        }
    }

    /// Prepares `sql` (once per connection) and sends it with `request`, after every
    /// statement polled before it was sent; then waits for its answer.
    async fn send<'a, T, F>(
        &'a self,
        sql: &'static Sql,
        request: impl FnOnce(&'a C, tokio_postgres::Statement) -> F,
    ) -> StoreResult<T>
    where
        F: Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let turn = self.turn.lock().await;
        let statement = self.client.prepare_cached(sql.text).await.map_err(pg)?;
        let mut answer = pin!(request(self.client, statement));
        // The first poll sends the request; the next statement's turn starts after it.
        let first = poll_fn(|cx| Poll::Ready(answer.as_mut().poll(cx))).await;
        drop(turn);
        match first {
            Poll::Ready(done) => done,
            Poll::Pending => answer.await,
        }
        .map_err(pg)
    }
}

fn cell(row: &tokio_postgres::Row, i: usize, ty: &Type) -> Result<Cell, tokio_postgres::Error> {
    Ok(match *ty {
        Type::INT8 => row
            .try_get::<_, Option<i64>>(i)?
            .map_or(Cell::Null, Cell::Int),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)?
            .map_or(Cell::Null, |v| Cell::Int(v.into())),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(i)?
            .map_or(Cell::Null, |v| Cell::Int(v.into())),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(i)?
            .map_or(Cell::Null, Cell::Bool),
        Type::BYTEA => row
            .try_get::<_, Option<Vec<u8>>>(i)?
            .map_or(Cell::Null, Cell::Blob),
        Type::UUID => row
            .try_get::<_, Option<uuid::Uuid>>(i)?
            .map_or(Cell::Null, |v| Cell::Text(v.to_string())),
        _ => row
            .try_get::<_, Option<String>>(i)?
            .map_or(Cell::Null, Cell::Text),
    })
}

fn decode(sql: &'static Sql, rows: Vec<tokio_postgres::Row>) -> StoreResult<Vec<Row>> {
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let names = names_of(sql, || {
        first
            .columns()
            .iter()
            .map(|c| c.name().to_owned())
            .collect()
    });
    let types: Vec<Type> = first.columns().iter().map(|c| c.type_().clone()).collect();
    let mut decoded = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut cells = Vec::with_capacity(types.len());
        for (i, ty) in types.iter().enumerate() {
            cells.push(cell(row, i, ty).map_err(|_| corrupt(sql.table, &names, i))?);
        }
        decoded.push(Row::new(sql.table, Arc::clone(&names), cells));
    }
    Ok(decoded)
}

fn refs<'a>(params: &'a [Value<'_>]) -> Vec<&'a (dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

impl<C: GenericClient + Sync> Db for Pg<'_, C> {
    async fn exec(&self, sql: &'static Sql, params: &[Value<'_>]) -> StoreResult<u64> {
        let params = refs(params);
        self.send(sql, async |c, s| c.execute(&s, &params).await)
            .await
    }

    async fn query(&self, sql: &'static Sql, params: &[Value<'_>]) -> StoreResult<Vec<Row>> {
        let params = refs(params);
        let rows = self
            .send(sql, async |c, s| c.query(&s, &params).await)
            .await?;
        decode(sql, rows)
    }

    async fn query_opt(&self, sql: &'static Sql, params: &[Value<'_>]) -> StoreResult<Option<Row>> {
        let params = refs(params);
        let row = self
            .send(sql, async |c, s| c.query_opt(&s, &params).await)
            .await?;
        Ok(decode(sql, row.into_iter().collect())?.pop())
    }

    async fn insert_id(
        &self,
        _plain: &'static Sql,
        returning: &'static Sql,
        params: &[Value<'_>],
    ) -> StoreResult<Option<i64>> {
        match self.query_opt(returning, params).await? {
            Some(mut row) => row.int(0).map(Some),
            None => Ok(None),
        }
    }

    async fn batch(&self, sql: &'static str) -> StoreResult<()> {
        // A batch (a savepoint) keeps its turn until answered: it is rare and short.
        let _turn = self.turn.lock().await;
        self.client.batch_execute(sql).await.map_err(pg)
    }

    fn locks_rows(&self) -> bool {
        true
    }

    fn lost_race(&self) -> StoreError {
        StoreError::Other(Contended.into())
    }
}

#[cfg(all(test, pg_suite))]
mod tests {
    use futures_util::future::try_join;
    use tokio_postgres::error::SqlState;

    use super::super::{error::PgError, pool, PoolOptions};
    use super::*;
    use crate::db::params;
    use crate::Durability;

    static INSERT: Sql = Sql {
        table: "numbers",
        text: "INSERT INTO numbers (n) VALUES ($1)",
    };
    static COUNT: Sql = Sql {
        table: "numbers",
        text: "SELECT count(*) FROM numbers",
    };
    /// Another insert, prepared before the tests start.
    static PREPARED_INSERT: Sql = Sql {
        table: "numbers",
        text: "INSERT INTO numbers (n) SELECT $1::bigint",
    };

    /// A pooled connection to a fresh schema with a table of unique numbers (1 and 100 in
    /// it), where the count and one insert are prepared and [`INSERT`] is not.
    async fn connection() -> deadpool_postgres::Object {
        let base = std::env::var("D1_TEST_DATABASE_URL").unwrap();
        let url = d1_scratch::fresh(&base, "d1t_pg_").await.unwrap();
        let client = pool(&url, PoolOptions::default(), Durability::Full)
            .unwrap()
            .get()
            .await
            .unwrap();
        client
            .batch_execute(
                "CREATE TABLE numbers (n BIGINT PRIMARY KEY); INSERT INTO numbers VALUES (1)",
            )
            .await
            .unwrap();
        let db = Pg::new(&client);
        db.exec(&PREPARED_INSERT, params![100_i64]).await.unwrap();
        db.query_opt(&COUNT, params![]).await.unwrap();
        client
    }

    #[tokio::test]
    async fn statements_polled_together_run_in_that_order_when_the_first_is_prepared_first() {
        let mut client = connection().await;
        let t = client.transaction().await.unwrap();
        let db = Pg::new(&t);
        let (_, count) = try_join(
            db.exec(&INSERT, params![2_i64]),
            db.query_opt(&COUNT, params![]),
        )
        .await
        .unwrap();
        assert_eq!(
            count.unwrap().int(0).unwrap(),
            3,
            "the count ran after the insert"
        );
    }

    #[tokio::test]
    async fn a_join_reports_the_failed_statement_s_error_not_the_aborted_transaction() {
        let mut client = connection().await;
        let t = client.transaction().await.unwrap();
        let db = Pg::new(&t);
        // The first statement is prepared first and succeeds; the second, ready to go,
        // fails. Run out of order, the first would answer "transaction aborted".
        let joined = try_join(
            db.exec(&INSERT, params![2_i64]),
            db.exec(&PREPARED_INSERT, params![1_i64]),
        )
        .await;
        let Err(StoreError::Other(e)) = joined else {
            panic!("the number 1 was inserted twice");
        };
        let code = e.downcast_ref::<PgError>().and_then(|e| e.code.clone());
        assert_eq!(code, Some(SqlState::UNIQUE_VIOLATION));
    }
}
