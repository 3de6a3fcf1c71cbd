//! The embedded SQLite backend: one file in WAL mode, one writer thread doing group commit,
//! and a small pool of read connections.

mod cards;
mod checkpointer;
mod clicktopay;
mod consumers;
mod issuers;
mod migrate;
mod readers;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use d1_domain::card::{CardId, CardProductId};
use d1_domain::{ConsumerId, IssuerId};
use rusqlite::{params, Connection, OptionalExtension};

use crate::kek::{self, FINGERPRINT_KEY};
use crate::{
    now_ms, AssertionKeyRecord, BackendRecord, CardOutcome, CardView, ChangeOutcome, ClaimedJob,
    ConsumerView, CreateCard, CreateOutcome, DeleteConsumer, Delivery, DirectoryRecord,
    DirectoryWrite, Durability, EnrolmentStart, FinishJob, IssuerChange, IssuerRecord, NewIssuer,
    NotificationRecord, OperationRecord, OperationsPage, ProductRecord, RegisterCard,
    RegisterCards, RegisterConsumer, RegisterOutcome, ServiceKeyRecord, StartEnrolment, Store,
    StoreError, StoreOptions, StoreResult, UpdateConsumer, Vault,
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
    // A small page cache (1 MB): every commit truncates the cache, which walks its whole hash
    // table, and with 8 MB that walk was 11% of the writer thread's time (perf, registration
    // load). Reads of pages already in the database file come through mmap either way.
    // The WAL keeps up to 256 MiB of its length after a restart. With 64 MiB it was cut back
    // at every restart and grew again under load, and every sync of a growing file also
    // commits the file system's journal; overwritten in place, a sync writes data only.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA secure_delete = ON;
         PRAGMA foreign_keys = ON;
         PRAGMA mmap_size = 268435456;
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
    let mac_key = pan_mac_key(conn, &resolved.kek)?;
    Ok(Vault::new(resolved.kek, &mac_key))
}

/// The PAN MAC key, wrapped by the KEK in `meta`; created once, by whichever node gets there
/// first.
fn pan_mac_key(
    conn: &Connection,
    kek: &d1_crypto::envelope::Kek,
) -> anyhow::Result<zeroize::Zeroizing<Vec<u8>>> {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let fresh = zeroize::Zeroizing::new(d1_crypto::random_bytes::<32>()?);
    let wrapped = engine.encode(kek.wrap(fresh.as_ref(), crate::vault::PAN_MAC_CONTEXT)?);
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('pan_mac_key', ?1) ON CONFLICT (key) DO NOTHING",
        params![wrapped],
    )?;
    let stored: String = conn.query_row(
        "SELECT value FROM meta WHERE key = 'pan_mac_key'",
        [],
        |r| r.get(0),
    )?;
    let bytes = engine.decode(stored)?;
    Ok(kek.unwrap(&bytes, crate::vault::PAN_MAC_CONTEXT)?)
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
        if self.writer.sync_failed() {
            return Err(StoreError::Other(anyhow::anyhow!(
                "a WAL sync failed; writes are refused until a restart"
            )));
        }
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

    async fn add_product(&self, product: ProductRecord) -> StoreResult<()> {
        self.write(false, move |conn, _, now| {
            cards::add_product(conn, &product, now)
        })
        .await
    }

    async fn product(
        &self,
        issuer: &IssuerId,
        product: &CardProductId,
    ) -> StoreResult<Option<ProductRecord>> {
        let (issuer, product) = (issuer.clone(), product.clone());
        self.read(move |conn, _| cards::product(conn, &issuer, &product))
            .await
    }

    async fn register_card(&self, cmd: RegisterCard) -> StoreResult<CardOutcome> {
        // The MAC and the sealing for an implicit registration run here, on the caller's thread.
        let prepared = self.vault.prepare_card(&cmd)?;
        self.write(false, move |conn, vault, now| {
            cards::register(conn, vault, &cmd, &prepared, now)
        })
        .await
    }

    async fn register_cards(&self, cmd: RegisterCards) -> StoreResult<CardOutcome> {
        let fresh = self
            .vault
            .fresh_consumer(&cmd.issuer_id, &cmd.consumer_id, None)?;
        let macs: Vec<Vec<u8>> = cmd
            .cards
            .iter()
            .map(|c| self.vault.pan_mac(&cmd.issuer_id, &c.data.pan))
            .collect();
        self.write(false, move |conn, vault, now| {
            cards::register_batch(conn, vault, &cmd, &fresh, &macs, now)
        })
        .await
    }

    async fn create_card(&self, cmd: CreateCard) -> StoreResult<CreateOutcome> {
        let today = time::OffsetDateTime::now_utc().date();
        self.write(false, move |conn, vault, now| {
            cards::create(conn, vault, &cmd, today, now)
        })
        .await
    }

    async fn card(&self, issuer: &IssuerId, card: &CardId) -> StoreResult<Option<CardView>> {
        let (issuer, card) = (issuer.clone(), card.clone());
        self.read(move |conn, _| cards::get(conn, &issuer, &card))
            .await
    }

    async fn cards(
        &self,
        issuer: &IssuerId,
        consumer: &ConsumerId,
    ) -> StoreResult<Option<Vec<CardView>>> {
        let (issuer, consumer) = (issuer.clone(), consumer.clone());
        self.read(move |conn, _| cards::list(conn, &issuer, &consumer))
            .await
    }

    async fn retire_service_key(&self, kid: &str) -> StoreResult<()> {
        let kid = kid.to_owned();
        self.write(false, move |conn, _, now| {
            issuers::retire_service_key(conn, &kid, now)
        })
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

    async fn operation(
        &self,
        issuer: &IssuerId,
        operation_id: &str,
    ) -> StoreResult<Option<OperationRecord>> {
        let (issuer, operation_id) = (issuer.clone(), operation_id.to_owned());
        self.read(move |conn, _| clicktopay::operation(conn, &issuer, &operation_id))
            .await
    }

    async fn set_issuer_backend(&self, backend: BackendRecord) -> StoreResult<()> {
        self.write(false, move |conn, _, now| {
            clicktopay::set_backend(conn, &backend, now)
        })
        .await
    }

    async fn issuer_backend(&self, issuer: &IssuerId) -> StoreResult<Option<BackendRecord>> {
        let issuer = issuer.clone();
        self.read(move |conn, _| clicktopay::backend(conn, &issuer))
            .await
    }

    async fn start_enrolment(&self, cmd: StartEnrolment) -> StoreResult<EnrolmentStart> {
        self.write(false, move |conn, vault, now| {
            clicktopay::start_enrolment(conn, vault, &cmd, now)
        })
        .await
    }

    async fn claim_jobs(&self, lease_ms: i64, limit: u32) -> StoreResult<Vec<ClaimedJob>> {
        self.write(false, move |conn, vault, now| {
            clicktopay::claim_jobs(conn, vault, lease_ms, limit, now)
        })
        .await
    }

    async fn finish_job(&self, done: FinishJob) -> StoreResult<()> {
        self.write(false, move |conn, _, now| {
            clicktopay::finish_job(conn, &done, now)
        })
        .await
    }

    async fn release_leases(&self) -> StoreResult<()> {
        self.write(false, |conn, _, _| {
            clicktopay::release_leases(conn).map_err(sql)
        })
        .await
    }

    async fn directory_put(&self, write: DirectoryWrite, create: bool) -> StoreResult<bool> {
        self.write(false, move |conn, _, now| {
            clicktopay::directory_put(conn, &write, create, now)
        })
        .await
    }

    async fn directory_remove(
        &self,
        issuer: &IssuerId,
        consumer: &ConsumerId,
    ) -> StoreResult<bool> {
        let (issuer, consumer) = (issuer.clone(), consumer.clone());
        self.write(true, move |conn, _, _| {
            clicktopay::directory_remove(conn, &issuer, &consumer)
        })
        .await
    }

    async fn directory_profile(
        &self,
        issuer: &IssuerId,
        consumer: &ConsumerId,
    ) -> StoreResult<Option<DirectoryRecord>> {
        let (issuer, consumer) = (issuer.clone(), consumer.clone());
        self.read(move |conn, _| clicktopay::directory_profile(conn, &issuer, &consumer))
            .await
    }

    async fn claim_notifications(
        &self,
        lease_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<NotificationRecord>> {
        self.write(false, move |conn, _, now| {
            clicktopay::claim_notifications(conn, lease_ms, limit, now)
        })
        .await
    }

    async fn settle_notification(&self, id: i64, delivery: Delivery) -> StoreResult<()> {
        self.write(false, move |conn, _, _| {
            clicktopay::settle_notification(conn, id, delivery)
        })
        .await
    }
}
