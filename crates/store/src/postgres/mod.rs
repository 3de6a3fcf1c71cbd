//! The PostgreSQL backend: several stateless nodes on one database.
//!
//! Every use case is one READ COMMITTED transaction that locks the consumer's row before it
//! writes anything of that consumer (its PI, its cards, its trail). Unique indexes refuse what
//! row locks cannot see coming: a second consumer row for one consumerId, a second live card
//! per cardId, a PAN seen before. When two nodes race past a check, the loser's transaction
//! fails on such an index, a serialization failure or a deadlock, and is run again from the
//! start, where its checks now see the winner ([`transaction`]). None of those reach a caller.
//! The use cases are the shared ones (`crate::rules`), run on [`pg::Pg`].

mod batch;
mod card_batch;
mod consumer_reads;
mod error;
mod group;
mod migrate;
mod pg;
mod transaction;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use futures_util::future::BoxFuture;
use tokio_postgres::NoTls;

use crate::rules::cards;
use crate::vault::FreshConsumer;
use crate::{
    now_ms, CardOutcome, Durability, RegisterCard, RegisterConsumer, StoreOptions, StoreResult,
    Vault, WriteActivity,
};
use error::pg;
pub(crate) use pg::Pg;
use transaction::Work;

/// Settings of the connection pool.
#[derive(Debug, Clone, Copy)]
pub struct PoolOptions {
    /// Connections per node.
    pub size: usize,
    /// Longest a statement may run before the database cancels it.
    pub statement_timeout: Duration,
    /// Longest a request waits for a connection, or for one to be made.
    pub connect_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            size: 16,
            statement_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
        }
    }
}

/// A read on PostgreSQL, on a pooled connection, with its command and the time.
pub(crate) type ReadWork<C, T> =
    for<'t> fn(&'t Pg<'t, Object>, &'t Vault, &'t C, i64) -> BoxFuture<'t, StoreResult<T>>;

/// The PostgreSQL store.
pub(crate) struct Postgres {
    pool: Pool,
    vault: Arc<Vault>,
    registrations: batch::Registrations,
    cards: card_batch::Cards,
    consumers: consumer_reads::ConsumerReads,
    /// Transactions this node committed, for [`Self::activity`].
    commits: AtomicU64,
}

fn pool(url: &str, options: PoolOptions, durability: Durability) -> anyhow::Result<Pool> {
    use anyhow::Context;
    let mut config: tokio_postgres::Config = url.parse().context("parsing the PostgreSQL URL")?;
    // Options already in the URL (a search_path, say) are kept; ours are added to them.
    let commit = match durability {
        Durability::Full => "on",
        Durability::Normal => "off",
    };
    // Generic plans: every statement here is short and planned the same way each time.
    let ours = format!(
        "-c statement_timeout={} -c synchronous_commit={commit} -c plan_cache_mode=force_generic_plan",
        options.statement_timeout.as_millis()
    );
    let joined = match config.get_options() {
        Some(existing) if !existing.is_empty() => format!("{existing} {ours}"),
        _ => ours,
    };
    config.options(&joined);
    config.connect_timeout(options.connect_timeout);
    config.application_name("d1-registry");
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(options.size.max(1))
        .wait_timeout(Some(options.connect_timeout))
        .create_timeout(Some(options.connect_timeout))
        .recycle_timeout(Some(options.connect_timeout))
        .runtime(Runtime::Tokio1)
        .build()
        .context("building the PostgreSQL pool")
}

impl Postgres {
    /// Connects, migrates (one node at a time) and unlocks the database at `url`.
    ///
    /// # Errors
    /// If the database cannot be reached or migrated, or the KEK does not match.
    pub(crate) async fn open(url: &str, options: &StoreOptions) -> anyhow::Result<Self> {
        use anyhow::Context;
        let pool = pool(url, options.pool, options.durability)?;
        let mut client = pool.get().await.context("connecting to PostgreSQL")?;
        migrate::run(&mut client)
            .await
            .context("migrating the PostgreSQL database")?;
        let vault = crate::rules::issuers::unlock(&Pg::new(&client), options).await?;
        drop(client);
        Ok(Self {
            registrations: batch::Registrations::start(pool.clone()),
            cards: card_batch::Cards::start(pool.clone()),
            consumers: consumer_reads::ConsumerReads::start(pool.clone()),
            pool,
            vault: Arc::new(vault),
            commits: AtomicU64::new(0),
        })
    }

    /// Whether the database at `url` holds this service's schema; creates nothing.
    ///
    /// # Errors
    /// If the database cannot be reached.
    pub(crate) async fn exists(url: &str, options: &StoreOptions) -> anyhow::Result<bool> {
        use anyhow::Context;
        let pool = pool(url, options.pool, options.durability)?;
        let client = pool.get().await.context("connecting to PostgreSQL")?;
        let row = client
            .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
            .await
            .context("looking for the schema")?;
        Ok(row.try_get(0)?)
    }

    /// The vault sealing this store's personal data.
    pub(crate) fn vault(&self) -> &Arc<Vault> {
        &self.vault
    }

    /// Runs `work` as one transaction, again from the start when it lost a race.
    pub(crate) async fn write<C: Sync, T: Send>(&self, ctx: C, work: Work<C, T>) -> StoreResult<T> {
        let done = transaction::run(&self.pool, &self.vault, &ctx, work, now_ms).await;
        if done.is_ok() {
            self.commits.fetch_add(1, Ordering::Relaxed);
        }
        done
    }

    /// The transactions this node committed (the group commits aside).
    pub(crate) fn activity(&self) -> WriteActivity {
        WriteActivity {
            transactions: self.commits.load(Ordering::Relaxed),
            syncs: 0,
            timings: None,
        }
    }

    /// Runs `work` on a pooled connection.
    pub(crate) async fn read<C: Sync, T: Send>(
        &self,
        ctx: C,
        work: ReadWork<C, T>,
    ) -> StoreResult<T> {
        let client = self.client().await?;
        work(&Pg::new(&client), &self.vault, &ctx, now_ms()).await
    }

    /// Creates a consumer whose consumerId was never seen in the group commit of new
    /// registrations; false when it did not, and the caller registers it alone.
    pub(crate) async fn create_in_batch(
        &self,
        cmd: &RegisterConsumer,
        fresh: &FreshConsumer,
    ) -> bool {
        self.registrations.create(cmd, fresh, now_ms()).await
    }

    /// Registers a new card in the group commit of new cards, its consumer implicitly if
    /// unknown; `None` when it did not, and the caller runs Register card alone.
    pub(crate) async fn register_card_in_batch(
        &self,
        cmd: &RegisterCard,
        pan_mac: &[u8],
    ) -> Option<CardOutcome> {
        let found = self
            .consumers
            .find(&cmd.issuer_id, &cmd.consumer_id)
            .await?;
        let (owner, sealed) = cards::for_group_commit(&self.vault, found, cmd).ok()??;
        let implicit_consumer = matches!(owner, cards::Owner::Implicit(_));
        self.cards
            .register(cmd, &owner, pan_mac, &sealed, now_ms())
            .await
            .then_some(CardOutcome::Registered { implicit_consumer })
    }

    /// Checks that the database answers.
    pub(crate) async fn ping(&self) -> StoreResult<()> {
        self.client()
            .await?
            .simple_query("SELECT 1")
            .await
            .map_err(pg)?;
        Ok(())
    }

    async fn client(&self) -> StoreResult<Object> {
        self.pool.get().await.map_err(error::pool_error)
    }
}

/// A store on a fresh schema of the database `D1_TEST_DATABASE_URL` names, its KEK in the
/// directory returned with it.
#[cfg(all(test, pg_suite))]
async fn scratch(prefix: &str) -> (Postgres, tempfile::TempDir) {
    let base = std::env::var("D1_TEST_DATABASE_URL").unwrap();
    let url = d1_scratch::fresh(&base, prefix).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        database_url: url.clone(),
        kek_file: dir.path().join("kek.key"),
        durability: Durability::Full,
        read_connections: 1,
        pool: PoolOptions::default(),
    };
    (Postgres::open(&url, &options).await.unwrap(), dir)
}
