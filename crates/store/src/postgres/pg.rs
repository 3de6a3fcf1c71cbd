//! The primitives of [`crate::db::Db`] on PostgreSQL, over a transaction or a pooled
//! connection: statements prepared once per connection, parameters bound to the types
//! PostgreSQL inferred for them, cells read by their column's type without a panic.

use std::sync::Arc;

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
pub(crate) struct Pg<'c, C>(pub &'c C);

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
        let statement = self.0.prepare_cached(sql.text).await.map_err(pg)?;
        self.0.execute(&statement, &refs(params)).await.map_err(pg)
    }

    async fn query(&self, sql: &'static Sql, params: &[Value<'_>]) -> StoreResult<Vec<Row>> {
        let statement = self.0.prepare_cached(sql.text).await.map_err(pg)?;
        let rows = self.0.query(&statement, &refs(params)).await.map_err(pg)?;
        decode(sql, rows)
    }

    async fn query_opt(&self, sql: &'static Sql, params: &[Value<'_>]) -> StoreResult<Option<Row>> {
        let statement = self.0.prepare_cached(sql.text).await.map_err(pg)?;
        let row = self
            .0
            .query_opt(&statement, &refs(params))
            .await
            .map_err(pg)?;
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
        self.0.batch_execute(sql).await.map_err(pg)
    }

    fn locks_rows(&self) -> bool {
        true
    }

    fn lost_race(&self) -> StoreError {
        StoreError::Other(Contended.into())
    }
}
