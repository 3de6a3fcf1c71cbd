//! Read connections: WAL lets them read while the writer commits. Reads run on tokio's
//! blocking pool, each on a connection of a fixed-size pool; a read waits for a free
//! connection rather than opening a new one (opening costs a file open and a schema parse).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use super::db_file::DbFile;
use super::lite::{sql, STATEMENTS};
use crate::{StoreError, StoreResult};

pub(super) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
    /// Declared after the connections, so it is closed after them (see [`DbFile`]).
    _db: Arc<DbFile>,
}

impl Readers {
    pub(super) fn new(path: PathBuf, size: usize, db: Arc<DbFile>) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(size),
            _db: db,
        }
    }

    fn take(&self) -> StoreResult<Connection> {
        if let Some(conn) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok(conn);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags).map_err(sql)?;
        super::busy::wait_long(&conn).map_err(sql)?;
        conn.set_prepared_statement_cache_capacity(STATEMENTS);
        // No memory map, like the writer's connection (see `open_connection`).
        conn.execute_batch("PRAGMA query_only = ON; PRAGMA mmap_size = 0;")
            .map_err(sql)?;
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
    }

    pub(super) async fn read<T, F>(self: &Arc<Self>, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        // At most one read per connection at a time, so the pool never grows past its size.
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Other(anyhow::anyhow!("the store is closed")))?;
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let conn = this.take()?;
            let result = f(&conn);
            this.give_back(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Other(anyhow::anyhow!("read task failed: {e}")))?
    }
}
