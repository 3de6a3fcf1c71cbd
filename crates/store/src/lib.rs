//! Persistence of d1-registry.
//!
//! [`Store`] has one method per use case, written once (`rules`) over the primitives each
//! backend implements (`db`); a write runs as one transaction on PostgreSQL, and inside one
//! group commit of the SQLite writer (several writes share a transaction, and a write that fails
//! after writing fails its group). A backend is picked once, from the database URL's scheme, by
//! [`open`]. Personal data is sealed by the shared [`vault`] before it reaches any backend's
//! tables.

pub mod card;
pub mod clicktopay;
mod db;
mod engine;
mod jobs;
pub mod kek;
pub mod model;
pub mod operator;
pub mod postgres;
mod rows;
mod rules;
mod sql;
mod sqlite;
pub mod timings;
pub mod vault;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use d1_domain::{ConsumerId, IssuerId};

pub use card::*;
pub use clicktopay::*;
pub use model::*;
pub use operator::*;
pub use vault::Vault;

/// A store failure a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing asked for does not exist.
    #[error("not found")]
    NotFound,
    /// A uniqueness rule refused the write.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// A stored value does not decode: of another type, or a word no version wrote. Only the
    /// place is named, never the value.
    #[error("a stored value does not decode: {table}.{column}")]
    Corrupt { table: &'static str, column: String },
    /// Too many writes are waiting; nothing was written, and the caller may try again soon.
    #[error("too many writes are waiting")]
    Overloaded,
    /// The write was committed but could not be made durable (a failed sync, a failed commit
    /// record), or its commit's answer was lost: it may or may not be there. The caller must
    /// not take it for "not written".
    #[error("the outcome of the write is unknown")]
    OutcomeUnknown,
    /// Anything else: the database is unreachable or full, or sealed data did not open.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// How the database should make writes durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// A write is acknowledged only after it is synced to disk (survives a power cut).
    #[default]
    Full,
    /// Synced at checkpoints only: survives a crash of the process, not of the machine.
    Normal,
}

/// What a store has written since it was opened, for `/metrics`: an idle node's figures
/// stay still.
#[derive(Debug, Clone, Default)]
pub struct WriteActivity {
    /// Write transactions committed (a SQLite group commit counts once).
    pub transactions: u64,
    /// Syncs of the SQLite WAL (`fdatasync`); PostgreSQL syncs on its own side.
    pub syncs: u64,
    /// How long the write path's steps take, where the store measures them (SQLite).
    pub timings: Option<Arc<timings::WriteTimings>>,
}

/// Everything needed to open a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `sqlite://PATH` (or a bare path), or `postgres://…`.
    pub database_url: String,
    /// Where the KEK file is, or is to be created.
    pub kek_file: PathBuf,
    pub durability: Durability,
    /// Connections used for reads (SQLite).
    pub read_connections: usize,
    /// The connection pool (PostgreSQL).
    pub pool: postgres::PoolOptions,
}

/// The use cases of the registry; each write is atomic (see the crate docs for how).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The vault sealing this store's personal data (its KEK included).
    fn vault(&self) -> &Arc<Vault>;

    /// Checks that the database answers.
    async fn ping(&self) -> StoreResult<()>;
    /// What this store has written since it was opened.
    fn write_activity(&self) -> WriteActivity {
        WriteActivity::default()
    }

    /// Every service key, retired ones included, oldest first.
    async fn service_keys(&self) -> StoreResult<Vec<ServiceKeyRecord>>;
    /// Adds a service key; `Conflict` if its kid exists.
    async fn add_service_key(&self, key: ServiceKeyRecord) -> StoreResult<()>;

    /// Onboards an issuer with its first key; `Conflict` if the issuer or the kid exists.
    async fn add_issuer(&self, issuer: NewIssuer) -> StoreResult<()>;
    /// Changes an issuer; `NotFound` if unknown, `Conflict` on a kid in use or the last key.
    async fn change_issuer(&self, issuer: IssuerId, change: IssuerChange) -> StoreResult<()>;
    /// Every issuer, by id.
    async fn issuers(&self) -> StoreResult<Vec<IssuerRecord>>;
    /// One issuer.
    async fn issuer(&self, issuer: &IssuerId) -> StoreResult<Option<IssuerRecord>>;
    /// The assertion key with this kid, whoever owns it.
    async fn assertion_key(&self, kid: &str) -> StoreResult<Option<AssertionKeyRecord>>;
    /// Onboards an aggregator (contract section 4); `Conflict` if its id is an issuer's or an
    /// aggregator's or its kid is taken, `NotFound` if one of its issuers is unknown.
    async fn add_aggregator(&self, aggregator: NewAggregator) -> StoreResult<()>;
    /// Every aggregator, by id.
    async fn aggregators(&self) -> StoreResult<Vec<AggregatorRecord>>;
    /// Records an assertion's jti until `expires_at` (ms); `Conflict` if it was seen already.
    async fn use_jti(&self, issuer: &IssuerId, jti: &str, expires_at: i64) -> StoreResult<()>;

    /// Register consumer.
    async fn register_consumer(&self, cmd: RegisterConsumer) -> StoreResult<RegisterOutcome>;
    /// Update consumer.
    async fn update_consumer(&self, cmd: UpdateConsumer) -> StoreResult<ChangeOutcome>;
    /// Delete consumer, shredding its data key.
    async fn delete_consumer(&self, cmd: DeleteConsumer) -> StoreResult<ChangeOutcome>;
    /// Get consumer.
    async fn consumer(
        &self,
        issuer: &IssuerId,
        consumer: &ConsumerId,
    ) -> StoreResult<Option<ConsumerView>>;
    /// Onboards a card product; `Conflict` if it exists.
    async fn add_product(&self, product: ProductRecord) -> StoreResult<()>;
    /// An issuer's card product.
    async fn product(
        &self,
        issuer: &IssuerId,
        product: &d1_domain::card::CardProductId,
    ) -> StoreResult<Option<ProductRecord>>;
    /// Register card, registering an unknown consumer implicitly in the same transaction.
    async fn register_card(&self, cmd: RegisterCard) -> StoreResult<CardOutcome>;
    /// v1 Register consumer with cards, all or nothing; a DELETED consumer starts afresh.
    async fn register_cards(&self, cmd: RegisterCards) -> StoreResult<CardOutcome>;
    /// Create card: allocate a PAN in the product's range.
    async fn create_card(&self, cmd: CreateCard) -> StoreResult<CreateOutcome>;
    /// A card life-cycle operation (contract section 6), in one transaction with its trail
    /// entry and notification. A created card's renewal (`CardAction::Renew { data: None }`)
    /// is also what automatic renewal runs.
    async fn operate_card(&self, cmd: OperateCard) -> StoreResult<OperateOutcome>;
    /// Takes the scheduled task `name` for `lease_ms` unless another node holds it (so that it
    /// runs on one node at a time); whether it was taken.
    async fn take_scheduled_run(&self, name: &str, lease_ms: i64) -> StoreResult<bool>;
    /// Up to `limit` created cards of live consumers, expiring in one of the months
    /// `expiries` (MMYY), that no renewal is waiting on.
    async fn due_renewals(
        &self,
        expiries: Vec<String>,
        limit: u32,
    ) -> StoreResult<Vec<(IssuerId, d1_domain::card::CardId)>>;
    /// A card by id: the live one, else the most recent deleted or replaced one.
    async fn card(
        &self,
        issuer: &IssuerId,
        card: &d1_domain::card::CardId,
    ) -> StoreResult<Option<CardView>>;
    /// The cards of a consumer's current life; `None` for an unknown consumer.
    async fn cards(
        &self,
        issuer: &IssuerId,
        consumer: &ConsumerId,
    ) -> StoreResult<Option<Vec<CardView>>>;
    /// Marks a service key retired; `Conflict` if it is the last active key of its purpose.
    async fn retire_service_key(&self, kid: &str) -> StoreResult<()>;
    /// A page of a consumer's operations trail, newest first, before the cursor `before`.
    async fn operations(
        &self,
        issuer: &IssuerId,
        consumer: &ConsumerId,
        limit: u32,
        before: Option<i64>,
    ) -> StoreResult<Option<OperationsPage>>;
    /// `count` entries of a consumer's operations trail, newest first, from `offset` on (0 is
    /// the most recent; past the end, none): the v1 list. `None` for an unknown consumer.
    async fn operations_at(
        &self,
        issuer: &IssuerId,
        consumer: &ConsumerId,
        offset: u64,
        count: u32,
    ) -> StoreResult<Option<Vec<OperationRecord>>>;
    /// One entry of an issuer's trail by its operation id.
    async fn operation(
        &self,
        issuer: &IssuerId,
        operation_id: &str,
    ) -> StoreResult<Option<OperationRecord>>;

    /// Sets where an issuer's backend is; `NotFound` for an unknown issuer.
    async fn set_issuer_backend(&self, backend: BackendRecord) -> StoreResult<()>;
    /// An issuer's backend, if one is set.
    async fn issuer_backend(&self, issuer: &IssuerId) -> StoreResult<Option<BackendRecord>>;
    /// Accepts a Click to Pay enrolment: a PENDING trail entry and its job.
    async fn start_enrolment(&self, cmd: StartEnrolment) -> StoreResult<EnrolmentStart>;
    /// Leases up to `limit` due jobs for `lease_ms`, with what each needs opened.
    async fn claim_jobs(&self, lease_ms: i64, limit: u32) -> StoreResult<Vec<ClaimedJob>>;
    /// Ends a job: its trail entries and notification written, its row gone, in one step.
    async fn finish_job(&self, done: FinishJob) -> StoreResult<()>;
    /// Voids every lease at the start of the only node a backend can have (SQLite); a
    /// shared database waits for leases to run out instead.
    async fn release_leases(&self) -> StoreResult<()> {
        Ok(())
    }
    /// Writes a profile of the simulated directory, with a card to add. Without `create` it
    /// only replaces a profile that exists. Whether the profile existed before.
    async fn directory_put(&self, write: DirectoryWrite, create: bool) -> StoreResult<bool>;
    /// Removes a consumer's profile and cards from the simulated directory; whether it had one.
    async fn directory_remove(&self, issuer: &IssuerId, consumer: &ConsumerId)
        -> StoreResult<bool>;
    /// A consumer's profile in the simulated directory.
    async fn directory_profile(
        &self,
        issuer: &IssuerId,
        consumer: &ConsumerId,
    ) -> StoreResult<Option<DirectoryRecord>>;
    /// Leases up to `limit` due notification items for `lease_ms`, never two of one card,
    /// the longest due first, in one statement.
    async fn claim_notifications(
        &self,
        lease_ms: i64,
        limit: u32,
    ) -> StoreResult<NotificationClaim>;
    /// Records how the delivery of a claim's items ended: the delivered ones gone (in one
    /// statement), the others retried later or DEAD. Items claimed since by another node (its
    /// lease ran out) are left alone.
    async fn settle_notifications(&self, settlement: NotificationSettlement) -> StoreResult<()>;

    /// The operator portal's use cases (contract section 11), implemented beside the engine.
    #[doc(hidden)]
    fn portal(&self) -> &dyn engine::portal::PortalStore;
    /// Adds an operator; `Conflict` if the username exists.
    async fn add_operator(&self, op: NewOperator) -> StoreResult<()> {
        self.portal().add_operator(op).await
    }
    /// Changes an operator; `NotFound` if absent. A new password also clears the failed
    /// sign-ins and the lock (its sessions are the caller's to end).
    async fn change_operator(&self, username: &str, change: OperatorChange) -> StoreResult<()> {
        self.portal().change_operator(username, change).await
    }
    /// Disables an operator and deletes its sessions, in one transaction; `NotFound` if absent.
    async fn disable_operator(&self, username: &str) -> StoreResult<()> {
        self.portal().disable_operator(username).await
    }
    /// Every operator, by username.
    async fn operators(&self) -> StoreResult<Vec<OperatorRecord>> {
        self.portal().operators().await
    }
    /// One operator.
    async fn operator(&self, username: &str) -> StoreResult<Option<OperatorRecord>> {
        self.portal().operator(username).await
    }
    /// Counts a failed sign-in in one statement (safe across nodes); the `lock_after`th locks
    /// sign-in for `lock_ms`, starts the count again and returns `Some(locked_until)`.
    async fn record_failed_sign_in(
        &self,
        username: &str,
        lock_after: u32,
        lock_ms: i64,
    ) -> StoreResult<Option<i64>> {
        self.portal()
            .record_failed_sign_in(username, lock_after, lock_ms)
            .await
    }
    /// A successful sign-in: failed sign-ins and the lock cleared.
    async fn record_sign_in(&self, username: &str) -> StoreResult<()> {
        self.portal().record_sign_in(username).await
    }
    /// Starts a session keyed by the SHA-256 of its cookie; `NotFound` for an unknown operator.
    async fn create_session(&self, session: NewSession) -> StoreResult<()> {
        self.portal().create_session(session).await
    }
    /// A live session: `None` if absent, idle or past `absolute_ms`, or its operator is
    /// disabled (an expired one is deleted). Its last use is written when over 30 s old.
    async fn session(
        &self,
        id_hash: &[u8],
        idle_ms: i64,
        absolute_ms: i64,
    ) -> StoreResult<Option<SessionRecord>> {
        self.portal().session(id_hash, idle_ms, absolute_ms).await
    }
    /// Ends a session.
    async fn delete_session(&self, id_hash: &[u8]) -> StoreResult<()> {
        self.portal().delete_session(id_hash).await
    }
    /// Ends every session of an operator.
    async fn delete_sessions_of(&self, username: &str) -> StoreResult<()> {
        self.portal().delete_sessions_of(username).await
    }
    /// Appends an entry to the operator audit trail.
    async fn append_audit(&self, entry: AuditEntry) -> StoreResult<()> {
        self.portal().append_audit(entry).await
    }
    /// Operator audit entries, newest first, filtered and limited.
    async fn audit(&self, query: AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        self.portal().audit(query).await
    }
    /// The consumer of a card by cardId, deleted and replaced cards included.
    async fn locate_card(
        &self,
        issuer: &IssuerId,
        card_id: &str,
    ) -> StoreResult<Option<ConsumerId>> {
        self.portal().locate_card(issuer, card_id).await
    }
    /// The consumer and cardId of a card by PAN, through its keyed MAC (an index lookup).
    async fn locate_card_by_pan(
        &self,
        issuer: &IssuerId,
        pan: &d1_domain::card::Pan,
    ) -> StoreResult<Option<(ConsumerId, String)>> {
        self.portal().locate_card_by_pan(issuer, pan).await
    }
}

/// Opens the backend the URL names, migrates it and unlocks it with the KEK.
///
/// # Errors
/// If the URL names no known backend, the database cannot be opened or migrated, or the KEK
/// does not match the database.
pub async fn open(options: StoreOptions) -> anyhow::Result<Arc<dyn Store>> {
    let url = options.database_url.clone();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = postgres::Postgres::open(&url, &options).await?;
        return Ok(Arc::new(engine::Engine::Postgres(store)));
    }
    let store = sqlite::Sqlite::open(sqlite_path(&url)?, &options).await?;
    Ok(Arc::new(engine::Engine::Sqlite(store)))
}

/// Whether the URL names a store this service made, without creating anything: on SQLite a
/// database file that is not empty, on PostgreSQL a `schema_migrations` table on the
/// connection's `search_path`.
///
/// # Errors
/// If the URL names no known backend, or PostgreSQL cannot be reached.
pub async fn exists(options: &StoreOptions) -> anyhow::Result<bool> {
    let url = options.database_url.as_str();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return postgres::Postgres::exists(url, options).await;
    }
    Ok(std::fs::metadata(sqlite_path(url)?).is_ok_and(|m| m.len() > 0))
}

fn sqlite_path(url: &str) -> anyhow::Result<&std::path::Path> {
    let path = match url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        Some(path) => path,
        None if url.contains("://") => anyhow::bail!(
            "unsupported database URL scheme (expected sqlite://PATH or postgres://…)"
        ),
        None => url,
    };
    Ok(std::path::Path::new(path))
}

/// Unix time in milliseconds.
#[must_use]
pub fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}
