//! The embedded SQLite backend: one file in WAL mode, one writer thread doing group commit,
//! and a small pool of read connections. The use cases are the shared ones (`crate::rules`),
//! run on [`lite::Lite`]: inside the writer's transaction, or on a reader.

mod busy;
mod checkpointer;
mod db_file;
mod lite;
mod migrate;
#[cfg(test)]
mod plans;
mod readers;
mod sync;
mod writer;

use std::path::Path;
use std::sync::Arc;

use futures_util::future::LocalBoxFuture;
use rusqlite::Connection;

use crate::db::ready_now;
use crate::timings::WriteTimings;
use crate::{now_ms, Durability, StoreError, StoreOptions, StoreResult, Vault, WriteActivity};
use checkpointer::Checkpointer;
use db_file::DbFile;
pub(crate) use lite::Lite;
use lite::{sql, STATEMENTS};
use readers::Readers;
use writer::Writer;

/// A use case on SQLite, with its command and the time.
pub(crate) type LiteWork<C, T> =
    for<'t> fn(&'t Lite<'t>, &'t Vault, &'t C, i64) -> LocalBoxFuture<'t, StoreResult<T>>;

/// The SQLite store.
pub(crate) struct Sqlite {
    writer: Writer,
    readers: Arc<Readers>,
    vault: Arc<Vault>,
    timings: Arc<WriteTimings>,
}

fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    busy::wait_long(&conn)?;
    conn.set_prepared_statement_cache_capacity(STATEMENTS);
    // Commits do not sync here: the writer syncs the WAL itself before acknowledging, when
    // the durability asks for it (see writer.rs).
    // A small page cache (1 MB): a commit after a B-tree balance walks the cache's whole hash
    // table (the balance keys a page by the lock-byte page's number for a moment, and the
    // commit's truncation then finds a key far past the file's end), and with 8 MB that walk
    // was 11% of the writer thread's time, with 64 MB 19.5% of the service's (perf, registration
    // load; docs/benchmarks.md, "why the writer's page cache stays small"). Other pages are read
    // from the kernel's page cache.
    // No memory map (`mmap_size` 0): every connection's map counted the file's pages in the
    // service's RSS, which grew with the file to 1 GB at a million consumers; read through
    // `pread`, RSS stays flat at about 90 MB, with the same throughput (docs/benchmarks.md,
    // "Without a memory map").
    // The WAL keeps up to 256 MiB of its length after a restart. With 64 MiB it was cut back
    // at every restart and grew again under load, and every sync of a growing file also
    // commits the file system's journal; overwritten in place, a sync writes data only.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA secure_delete = ON;
         PRAGMA foreign_keys = ON;
         PRAGMA mmap_size = 0;
         PRAGMA wal_autocheckpoint = 0;
         PRAGMA cache_size = -1000;
         PRAGMA journal_size_limit = 268435456;",
    )?;
    Ok(conn)
}

/// The database file and its WAL hold only sealed personal data, but the rest of a row
/// (ids, states, times) is the bank's business too: owner-only, like the KEK file.
fn restrict_to_owner(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        if file.exists() {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

impl Sqlite {
    /// Opens (creating if needed) the database at `path`, migrates it and unlocks it.
    ///
    /// # Errors
    /// If the file cannot be opened or migrated, or the KEK does not match.
    pub(crate) async fn open(path: &Path, options: &StoreOptions) -> anyhow::Result<Self> {
        let path = path.to_path_buf();
        let options = options.clone();
        tokio::task::spawn_blocking(move || Self::open_blocking(&path, &options)).await?
    }

    fn open_blocking(path: &Path, options: &StoreOptions) -> anyhow::Result<Self> {
        use anyhow::Context;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let conn = open_connection(path).with_context(|| format!("opening {}", path.display()))?;
        restrict_to_owner(path)?;
        migrate::run(&conn).context("migrating the SQLite database")?;
        let vault = ready_now(crate::rules::issuers::unlock(&Lite::new(&conn), options))?;
        let db = DbFile::open(path).with_context(|| format!("opening {}", path.display()))?;
        let readers = Readers::new(
            path.to_path_buf(),
            options.read_connections.max(1),
            Arc::clone(&db),
        );
        let timings = Arc::new(WriteTimings::default());
        let sync_wal = match options.durability {
            Durability::Full => Some(sync::wal_path(path)),
            Durability::Normal => None,
        };
        Ok(Self {
            writer: Writer::start(
                conn,
                sync_wal,
                Checkpointer::start(path.to_path_buf(), db, Arc::clone(&timings))?,
                Arc::clone(&timings),
            )?,
            timings,
            readers: Arc::new(readers),
            vault: Arc::new(vault),
        })
    }

    /// The vault sealing this store's personal data.
    pub(crate) fn vault(&self) -> &Arc<Vault> {
        &self.vault
    }

    /// Runs `work` in the writer's next group commit; `shreds` marks a write that destroys
    /// key material, after which the WAL is truncated.
    pub(crate) async fn write<C, T>(
        &self,
        shreds: bool,
        ctx: C,
        work: LiteWork<C, T>,
    ) -> StoreResult<T>
    where
        C: Send + 'static,
        T: Send + 'static,
    {
        let vault = Arc::clone(&self.vault);
        self.writer
            .write(shreds, move |conn| {
                ready_now(work(&Lite::new(conn), &vault, &ctx, now_ms()))
            })
            .await
    }

    /// Runs `work` on a read connection.
    pub(crate) async fn read<C, T>(&self, ctx: C, work: LiteWork<C, T>) -> StoreResult<T>
    where
        C: Send + 'static,
        T: Send + 'static,
    {
        let vault = Arc::clone(&self.vault);
        self.readers
            .read(move |conn| ready_now(work(&Lite::new(conn), &vault, &ctx, now_ms())))
            .await
    }

    /// The transactions committed and the WAL syncs made so far, and how long the write
    /// path's steps have taken.
    pub(crate) fn activity(&self) -> WriteActivity {
        WriteActivity {
            timings: Some(Arc::clone(&self.timings)),
            ..self.writer.activity()
        }
    }

    /// Checks that the database answers and that no WAL sync has failed.
    pub(crate) async fn ping(&self) -> StoreResult<()> {
        if self.writer.sync_failed() {
            return Err(StoreError::Other(anyhow::anyhow!(
                "a WAL sync failed; writes are refused until a restart"
            )));
        }
        self.readers
            .read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(sql))
            .await
    }
}
