//! A row as both backends hand it over: cells decoded without a panic, read by typed
//! getters that name the table and column of a value that is not what it should be.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use super::Sql;
use crate::{StoreError, StoreResult};

/// One decoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cell {
    Null,
    Int(i64),
    Bool(bool),
    Text(String),
    Blob(Vec<u8>),
}

/// A row of a query. Each getter takes its cell out, so a column is read once.
#[derive(Debug)]
pub(crate) struct Row {
    table: &'static str,
    names: Arc<[String]>,
    cells: Vec<Cell>,
}

impl Row {
    /// A row of `table` with these column names (shared by the rows of one query).
    pub(crate) fn new(table: &'static str, names: Arc<[String]>, cells: Vec<Cell>) -> Self {
        Self {
            table,
            names,
            cells,
        }
    }

    /// The error for column `i`: its value is missing, of another type, or not a known word.
    pub(crate) fn corrupt(&self, i: usize) -> StoreError {
        corrupt(self.table, &self.names, i)
    }

    fn take(&mut self, i: usize) -> Cell {
        self.cells
            .get_mut(i)
            .map_or(Cell::Null, |c| std::mem::replace(c, Cell::Null))
    }

    /// An integer.
    pub(crate) fn int(&mut self, i: usize) -> StoreResult<i64> {
        self.opt_int(i)?.ok_or_else(|| self.corrupt(i))
    }

    /// An integer or NULL.
    pub(crate) fn opt_int(&mut self, i: usize) -> StoreResult<Option<i64>> {
        match self.take(i) {
            Cell::Null => Ok(None),
            Cell::Int(v) => Ok(Some(v)),
            _ => Err(self.corrupt(i)),
        }
    }

    /// A boolean: BOOLEAN on PostgreSQL, 0 or 1 on SQLite.
    pub(crate) fn bool(&mut self, i: usize) -> StoreResult<bool> {
        match self.take(i) {
            Cell::Bool(v) => Ok(v),
            Cell::Int(0) => Ok(false),
            Cell::Int(1) => Ok(true),
            _ => Err(self.corrupt(i)),
        }
    }

    /// A text.
    pub(crate) fn text(&mut self, i: usize) -> StoreResult<String> {
        self.opt_text(i)?.ok_or_else(|| self.corrupt(i))
    }

    /// A text or NULL.
    pub(crate) fn opt_text(&mut self, i: usize) -> StoreResult<Option<String>> {
        match self.take(i) {
            Cell::Null => Ok(None),
            Cell::Text(v) => Ok(Some(v)),
            _ => Err(self.corrupt(i)),
        }
    }

    /// Bytes.
    pub(crate) fn blob(&mut self, i: usize) -> StoreResult<Vec<u8>> {
        self.opt_blob(i)?.ok_or_else(|| self.corrupt(i))
    }

    /// Bytes or NULL.
    pub(crate) fn opt_blob(&mut self, i: usize) -> StoreResult<Option<Vec<u8>>> {
        match self.take(i) {
            Cell::Null => Ok(None),
            Cell::Blob(v) => Ok(Some(v)),
            _ => Err(self.corrupt(i)),
        }
    }

    /// A text parsed by `parse` (an enum word, an id); one that does not parse is corrupt.
    pub(crate) fn parsed<T, E>(
        &mut self,
        i: usize,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> StoreResult<T> {
        let text = self.text(i)?;
        parse(&text).map_err(|_| self.corrupt(i))
    }

    /// A text or NULL, parsed by `parse` when present.
    pub(crate) fn opt_parsed<T, E>(
        &mut self,
        i: usize,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> StoreResult<Option<T>> {
        match self.opt_text(i)? {
            None => Ok(None),
            Some(text) => parse(&text).map(Some).map_err(|_| self.corrupt(i)),
        }
    }

    /// An integer that must fit `T` (a count, a number of months).
    pub(crate) fn int_as<T: TryFrom<i64>>(&mut self, i: usize) -> StoreResult<T> {
        let v = self.int(i)?;
        T::try_from(v).map_err(|_| self.corrupt(i))
    }
}

/// The column names of `sql`'s rows, made once per thread and statement: they are read only
/// to name a column whose value does not decode, so a query should not pay for them.
pub(crate) fn names_of(sql: &'static Sql, make: impl FnOnce() -> Vec<String>) -> Arc<[String]> {
    thread_local! {
        static NAMES: RefCell<HashMap<usize, Arc<[String]>>> = RefCell::new(HashMap::new());
    }
    let key = std::ptr::from_ref(sql) as usize;
    NAMES.with(|names| {
        let mut names = names.borrow_mut();
        Arc::clone(names.entry(key).or_insert_with(|| make().into()))
    })
}

/// The error for column `i` of a row of `table` whose columns are `names`.
pub(crate) fn corrupt(table: &'static str, names: &[String], i: usize) -> StoreError {
    StoreError::Corrupt {
        table,
        column: names.get(i).cloned().unwrap_or_else(|| format!("#{i}")),
    }
}

/// `Some(v)` as `Ok`, `None` as an error: for `Row::parsed` with `Option`-returning parsers.
pub(crate) fn known<T>(v: Option<T>) -> Result<T, ()> {
    v.ok_or(())
}
