//! Read connections: WAL lets them read while the writer commits. Reads run on tokio's
//! blocking pool, each on a connection taken from a small pool.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};

use super::sql;
use crate::{StoreError, StoreResult};

pub(super) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    keep: usize,
}

impl Readers {
    pub(super) fn new(path: PathBuf, keep: usize) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
            keep,
        }
    }

    fn take(&self) -> StoreResult<Connection> {
        if let Some(conn) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok(conn);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sql)?;
        conn.execute_batch("PRAGMA query_only = ON; PRAGMA mmap_size = 268435456;")
            .map_err(sql)?;
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < self.keep {
                idle.push(conn);
            }
        }
    }

    pub(super) async fn read<T, F>(self: &Arc<Self>, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
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
