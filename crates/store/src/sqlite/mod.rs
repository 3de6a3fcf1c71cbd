//! The embedded SQLite backend: one file in WAL mode, one writer thread doing group commit,
//! and a small pool of read connections.

mod checkpointer;
mod consumers;
mod issuers;
mod migrate;
mod readers;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use d1_domain::{ConsumerId, IssuerId};
use rusqlite::{params, Connection, OptionalExtension};

use crate::kek::{self, FINGERPRINT_KEY};
use crate::{
    now_ms, AssertionKeyRecord, ChangeOutcome, ConsumerView, DeleteConsumer, Durability,
    IssuerChange, IssuerRecord, NewIssuer, OperationsPage, RegisterConsumer, RegisterOutcome,
    ServiceKeyRecord, Store, StoreError, StoreOptions, StoreResult, UpdateConsumer, Vault,
};
use checkpointer::Checkpointer;
use readers::Readers;
use writer::Writer;

pub(crate) fn sql(e: rusqlite::Error) -> StoreError {
    StoreError::Other(e.into())
}

/// The SQLite store.
pub struct SqliteStore {
    writer: Writer,
    readers: Arc<Readers>,
    vault: Arc<Vault>,
}

fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // Commits do not sync here: the writer syncs the WAL itself before acknowledging, when
    // the durability asks for it (see writer.rs).
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA secure_delete = ON;
         PRAGMA foreign_keys = ON;
         PRAGMA mmap_size = 268435456;
         PRAGMA wal_autocheckpoint = 0;
         PRAGMA journal_size_limit = 67108864;",
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

fn has_data(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM issuers) OR EXISTS (SELECT 1 FROM consumers) OR EXISTS (SELECT 1 FROM service_keys)",
        [],
        |r| r.get(0),
    )
}

fn unlock(conn: &Connection, options: &StoreOptions) -> anyhow::Result<Vault> {
    let fingerprint: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            params![FINGERPRINT_KEY],
            |r| r.get(0),
        )
        .optional()?;
    let resolved = kek::resolve(&options.kek_file, fingerprint.as_deref(), has_data(conn)?)?;
    if resolved.store_fingerprint {
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
            params![FINGERPRINT_KEY, resolved.kek.fingerprint()],
        )?;
        let stored: String = conn.query_row(
            "SELECT value FROM meta WHERE key = ?1",
            params![FINGERPRINT_KEY],
            |r| r.get(0),
        )?;
        anyhow::ensure!(
            stored == resolved.kek.fingerprint(),
            "another KEK was registered for this database concurrently"
        );
    }
    Ok(Vault::new(resolved.kek))
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, migrates it and unlocks it.
    ///
    /// # Errors
    /// If the file cannot be opened or migrated, or the KEK does not match.
    pub async fn open(path: &Path, options: &StoreOptions) -> anyhow::Result<Self> {
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
        let vault = unlock(&conn, options)?;
        let readers = Readers::new(path.to_path_buf(), options.read_connections.max(1));
        let sync_wal = match options.durability {
            Durability::Full => Some(PathBuf::from(format!("{}-wal", path.display()))),
            Durability::Normal => None,
        };
        Ok(Self {
            writer: Writer::start(conn, sync_wal, Checkpointer::start(path.to_path_buf())?)?,
            readers: Arc::new(readers),
            vault: Arc::new(vault),
        })
    }

    async fn write<T, F>(&self, shreds: bool, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Vault, i64) -> StoreResult<T> + Send + 'static,
    {
        let vault = Arc::clone(&self.vault);
        self.writer
            .write(shreds, move |conn| f(conn, &vault, now_ms()))
            .await
    }

    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Vault) -> StoreResult<T> + Send + 'static,
    {
        let vault = Arc::clone(&self.vault);
        self.readers.read(move |conn| f(conn, &vault)).await
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn vault(&self) -> &Arc<Vault> {
        &self.vault
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(|conn, _| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(sql))
            .await
    }

    async fn service_keys(&self) -> StoreResult<Vec<ServiceKeyRecord>> {
        self.read(|conn, _| issuers::service_keys(conn)).await
    }

    async fn add_service_key(&self, key: ServiceKeyRecord) -> StoreResult<()> {
        self.write(false, move |conn, _, _| {
            issuers::add_service_key(conn, &key)
        })
        .await
    }

    async fn add_issuer(&self, issuer: NewIssuer) -> StoreResult<()> {
        self.write(false, move |conn, _, now| issuers::add(conn, &issuer, now))
            .await
    }

    async fn change_issuer(&self, issuer: IssuerId, change: IssuerChange) -> StoreResult<()> {
        self.write(false, move |conn, _, now| {
            issuers::change(conn, &issuer, &change, now)
        })
        .await
    }

    async fn issuers(&self) -> StoreResult<Vec<IssuerRecord>> {
        self.read(|conn, _| issuers::list(conn)).await
    }

    async fn issuer(&self, issuer: &IssuerId) -> StoreResult<Option<IssuerRecord>> {
        let issuer = issuer.clone();
        self.read(move |conn, _| issuers::get(conn, &issuer)).await
    }

    async fn assertion_key(&self, kid: &str) -> StoreResult<Option<AssertionKeyRecord>> {
        let kid = kid.to_owned();
        self.read(move |conn, _| issuers::assertion_key(conn, &kid))
            .await
    }

    async fn use_jti(&self, issuer: &IssuerId, jti: &str, expires_at: i64) -> StoreResult<()> {
        let (issuer, jti) = (issuer.clone(), jti.to_owned());
        self.write(false, move |conn, _, now| {
            issuers::use_jti(conn, &issuer, &jti, expires_at, now)
        })
        .await
    }

    async fn register_consumer(&self, cmd: RegisterConsumer) -> StoreResult<RegisterOutcome> {
        // Sealed here, on the caller's thread, so that the writer thread only writes.
        let fresh = self
            .vault
            .fresh_consumer(&cmd.issuer_id, &cmd.consumer_id, cmd.pi.as_ref())?;
        self.write(false, move |conn, vault, now| {
            consumers::register(conn, vault, &cmd, fresh, now)
        })
        .await
    }

    async fn update_consumer(&self, cmd: UpdateConsumer) -> StoreResult<ChangeOutcome> {
        self.write(false, move |conn, vault, now| {
            consumers::update(conn, vault, &cmd, now)
        })
        .await
    }

    async fn delete_consumer(&self, cmd: DeleteConsumer) -> StoreResult<ChangeOutcome> {
        self.write(true, move |conn, _, now| consumers::delete(conn, &cmd, now))
            .await
    }

    async fn consumer(
        &self,
        issuer: &IssuerId,
        consumer: &ConsumerId,
    ) -> StoreResult<Option<ConsumerView>> {
        let (issuer, consumer) = (issuer.clone(), consumer.clone());
        self.read(move |conn, vault| consumers::get(conn, vault, &issuer, &consumer))
            .await
    }

    async fn operations(
        &self,
        issuer: &IssuerId,
        consumer: &ConsumerId,
        limit: u32,
        before: Option<i64>,
    ) -> StoreResult<Option<OperationsPage>> {
        let (issuer, consumer) = (issuer.clone(), consumer.clone());
        self.read(move |conn, _| consumers::operations(conn, &issuer, &consumer, limit, before))
            .await
    }
}
