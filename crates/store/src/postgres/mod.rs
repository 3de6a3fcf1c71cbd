//! The PostgreSQL backend: several stateless nodes on one database.
//!
//! Every use case is one READ COMMITTED transaction that locks the consumer's row before it
//! writes anything of that consumer (its PI, its cards, its trail). Unique indexes refuse what
//! row locks cannot see coming: a second consumer row for one consumerId, a second live card
//! per cardId, a PAN seen before. When two nodes race past a check, the loser's transaction
//! fails on such an index, a serialization failure or a deadlock, and is run again from the
//! start, where its checks now see the winner ([`transaction`]). None of those reach a caller.

mod batch;
mod cards;
mod clicktopay;
mod consumers;
mod issuers;
mod migrate;
pub mod scratch;
mod transaction;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use d1_domain::card::{CardId, CardProductId};
use d1_domain::{ConsumerId, IssuerId};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::kek::{self, FINGERPRINT_KEY};
use crate::{
    now_ms, AssertionKeyRecord, BackendRecord, CardOutcome, CardView, ChangeOutcome, ClaimedJob,
    ConsumerView, CreateCard, CreateOutcome, DeleteConsumer, Delivery, DirectoryRecord,
    DirectoryWrite, Durability, EnrolmentStart, FinishJob, IssuerChange, IssuerRecord, NewIssuer,
    NotificationRecord, OperationRecord, OperationsPage, ProductRecord, RegisterCard,
    RegisterCards, RegisterConsumer, RegisterOutcome, ServiceKeyRecord, StartEnrolment, Store,
    StoreError, StoreOptions, StoreResult, UpdateConsumer, Vault,
};
use transaction::{pg, Work};

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

/// The PostgreSQL store.
pub struct PgStore {
    pool: Pool,
    vault: Arc<Vault>,
    registrations: batch::Registrations,
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

async fn unlock(client: &tokio_postgres::Client, options: &StoreOptions) -> anyhow::Result<Vault> {
    let fingerprint: Option<String> = client
        .query_opt("SELECT value FROM meta WHERE key = $1", &[&FINGERPRINT_KEY])
        .await?
        .map(|r| r.get(0));
    let has_data: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM issuers) OR EXISTS (SELECT 1 FROM consumers)
                 OR EXISTS (SELECT 1 FROM service_keys)",
            &[],
        )
        .await?
        .get(0);
    let resolved = kek::resolve(&options.kek_file, fingerprint.as_deref(), has_data)?;
    if resolved.store_fingerprint {
        let stored = put_once(client, FINGERPRINT_KEY, resolved.kek.fingerprint()).await?;
        anyhow::ensure!(
            stored == resolved.kek.fingerprint(),
            "another KEK was registered for this database by another node; give every node \
             the same KEK file"
        );
    }
    let mac_key = pan_mac_key(client, &resolved.kek).await?;
    Ok(Vault::new(resolved.kek, &mac_key))
}

/// Stores `value` under `key` unless a value is there already; returns the value that stays.
async fn put_once(
    client: &tokio_postgres::Client,
    key: &str,
    value: &str,
) -> anyhow::Result<String> {
    client
        .execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[&key, &value],
        )
        .await?;
    Ok(client
        .query_one("SELECT value FROM meta WHERE key = $1", &[&key])
        .await?
        .get(0))
}

/// The PAN MAC key, wrapped by the KEK in `meta`; created by whichever node gets there first.
async fn pan_mac_key(
    client: &tokio_postgres::Client,
    kek: &d1_crypto::envelope::Kek,
) -> anyhow::Result<zeroize::Zeroizing<Vec<u8>>> {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let fresh = zeroize::Zeroizing::new(d1_crypto::random_bytes::<32>()?);
    let wrapped = engine.encode(kek.wrap(fresh.as_ref(), crate::vault::PAN_MAC_CONTEXT)?);
    let stored = put_once(client, "pan_mac_key", &wrapped).await?;
    Ok(kek.unwrap(&engine.decode(stored)?, crate::vault::PAN_MAC_CONTEXT)?)
}

impl PgStore {
    /// Connects, migrates (one node at a time) and unlocks the database at `url`.
    ///
    /// # Errors
    /// If the database cannot be reached or migrated, or the KEK does not match.
    pub async fn open(url: &str, options: &StoreOptions) -> anyhow::Result<Self> {
        use anyhow::Context;
        let pool = pool(url, options.pool, options.durability)?;
        let mut client = pool.get().await.context("connecting to PostgreSQL")?;
        migrate::run(&mut client)
            .await
            .context("migrating the PostgreSQL database")?;
        let vault = unlock(&client, options).await?;
        drop(client);
        Ok(Self {
            registrations: batch::Registrations::start(pool.clone()),
            pool,
            vault: Arc::new(vault),
        })
    }

    /// Runs `work` as one transaction, again from the start when it lost a race.
    async fn write<C, T>(&self, ctx: &C, work: Work<C, T>) -> StoreResult<T>
    where
        C: Sync,
        T: Send,
    {
        transaction::run(&self.pool, &self.vault, ctx, work, now_ms).await
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Other(anyhow::Error::new(e).context("PostgreSQL pool")))
    }
}

#[async_trait]
impl Store for PgStore {
    fn vault(&self) -> &Arc<Vault> {
        &self.vault
    }

    async fn ping(&self) -> StoreResult<()> {
        self.client()
            .await?
            .simple_query("SELECT 1")
            .await
            .map_err(pg)?;
        Ok(())
    }

    async fn service_keys(&self) -> StoreResult<Vec<ServiceKeyRecord>> {
        issuers::service_keys(&self.client().await?).await
    }

    async fn add_service_key(&self, key: ServiceKeyRecord) -> StoreResult<()> {
        self.write(&key, |t, _, key, _| {
            Box::pin(issuers::add_service_key(t, key))
        })
        .await
    }

    async fn add_issuer(&self, issuer: NewIssuer) -> StoreResult<()> {
        self.write(&issuer, |t, _, issuer, now| {
            Box::pin(issuers::add(t, issuer, now))
        })
        .await
    }

    async fn change_issuer(&self, issuer: IssuerId, change: IssuerChange) -> StoreResult<()> {
        self.write(&(issuer, change), |t, _, (issuer, change), now| {
            Box::pin(issuers::change(t, issuer, change, now))
        })
        .await
    }

    async fn issuers(&self) -> StoreResult<Vec<IssuerRecord>> {
        issuers::list(&self.client().await?).await
    }

    async fn issuer(&self, issuer: &IssuerId) -> StoreResult<Option<IssuerRecord>> {
        issuers::get(&self.client().await?, issuer).await
    }

    async fn assertion_key(&self, kid: &str) -> StoreResult<Option<AssertionKeyRecord>> {
        issuers::assertion_key(&self.client().await?, kid).await
    }

    async fn use_jti(&self, issuer: &IssuerId, jti: &str, expires_at: i64) -> StoreResult<()> {
        let ctx = (issuer.clone(), jti.to_owned(), expires_at);
        self.write(&ctx, |t, _, (issuer, jti, expires_at), now| {
            Box::pin(issuers::use_jti(t, issuer, jti, *expires_at, now))
        })
        .await
    }

    async fn register_consumer(&self, cmd: RegisterConsumer) -> StoreResult<RegisterOutcome> {
        let fresh = self
            .vault
            .fresh_consumer(&cmd.issuer_id, &cmd.consumer_id, cmd.pi.as_ref())?;
        if self.registrations.create(&cmd, &fresh, now_ms()).await {
            return Ok(RegisterOutcome::Created);
        }
        self.write(&(cmd, fresh), |t, vault, (cmd, fresh), now| {
            Box::pin(consumers::register(t, vault, cmd, fresh, now))
        })
        .await
    }

    async fn update_consumer(&self, cmd: UpdateConsumer) -> StoreResult<ChangeOutcome> {
        self.write(&cmd, |t, vault, cmd, now| {
            Box::pin(consumers::update(t, vault, cmd, now))
        })
        .await
    }

    async fn delete_consumer(&self, cmd: DeleteConsumer) -> StoreResult<ChangeOutcome> {
        self.write(&cmd, |t, _, cmd, now| {
            Box::pin(consumers::delete(t, cmd, now))
        })
        .await
    }

    async fn consumer(
        &self,
        issuer: &IssuerId,
        consumer: &ConsumerId,
    ) -> StoreResult<Option<ConsumerView>> {
        consumers::get(&self.client().await?, &self.vault, issuer, consumer).await
    }

    async fn add_product(&self, product: ProductRecord) -> StoreResult<()> {
        self.write(&product, |t, _, product, now| {
            Box::pin(cards::add_product(t, product, now))
        })
        .await
    }

    async fn product(
        &self,
        issuer: &IssuerId,
        product: &CardProductId,
    ) -> StoreResult<Option<ProductRecord>> {
        cards::product(&self.client().await?, issuer, product).await
    }

    async fn register_card(&self, cmd: RegisterCard) -> StoreResult<CardOutcome> {
        let prepared = self.vault.prepare_card(&cmd)?;
        self.write(&(cmd, prepared), |t, vault, (cmd, prepared), now| {
            Box::pin(cards::register(t, vault, cmd, prepared, now))
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
        self.write(&(cmd, fresh, macs), |t, vault, (cmd, fresh, macs), now| {
            Box::pin(cards::register_batch(t, vault, cmd, fresh, macs, now))
        })
        .await
    }

    async fn create_card(&self, cmd: CreateCard) -> StoreResult<CreateOutcome> {
        self.write(&cmd, |t, vault, cmd, now| {
            Box::pin(cards::create(t, vault, cmd, now))
        })
        .await
    }

    async fn card(&self, issuer: &IssuerId, card: &CardId) -> StoreResult<Option<CardView>> {
        cards::get(&self.client().await?, issuer, card).await
    }

    async fn cards(
        &self,
        issuer: &IssuerId,
        consumer: &ConsumerId,
    ) -> StoreResult<Option<Vec<CardView>>> {
        cards::list(&self.client().await?, issuer, consumer).await
    }

    async fn retire_service_key(&self, kid: &str) -> StoreResult<()> {
        let kid = kid.to_owned();
        self.write(&kid, |t, _, kid, now| {
            Box::pin(issuers::retire_service_key(t, kid, now))
        })
        .await
    }

    async fn operations(
        &self,
        issuer: &IssuerId,
        consumer: &ConsumerId,
        limit: u32,
        before: Option<i64>,
    ) -> StoreResult<Option<OperationsPage>> {
        consumers::operations(&self.client().await?, issuer, consumer, limit, before).await
    }

    async fn operation(
        &self,
        issuer: &IssuerId,
        operation_id: &str,
    ) -> StoreResult<Option<OperationRecord>> {
        clicktopay::operation(&self.client().await?, issuer, operation_id).await
    }

    async fn set_issuer_backend(&self, backend: BackendRecord) -> StoreResult<()> {
        self.write(&backend, |t, _, backend, now| {
            Box::pin(clicktopay::set_backend(t, backend, now))
        })
        .await
    }

    async fn issuer_backend(&self, issuer: &IssuerId) -> StoreResult<Option<BackendRecord>> {
        clicktopay::backend(&self.client().await?, issuer).await
    }

    async fn start_enrolment(&self, cmd: StartEnrolment) -> StoreResult<EnrolmentStart> {
        self.write(&cmd, |t, vault, cmd, now| {
            Box::pin(clicktopay::start_enrolment(t, vault, cmd, now))
        })
        .await
    }

    async fn claim_jobs(&self, lease_ms: i64, limit: u32) -> StoreResult<Vec<ClaimedJob>> {
        self.write(&(lease_ms, limit), |t, vault, (lease_ms, limit), now| {
            Box::pin(clicktopay::claim_jobs(t, vault, *lease_ms, *limit, now))
        })
        .await
    }

    async fn finish_job(&self, done: FinishJob) -> StoreResult<()> {
        self.write(&done, |t, _, done, now| {
            Box::pin(clicktopay::finish_job(t, done, now))
        })
        .await
    }

    async fn directory_put(&self, write: DirectoryWrite, create: bool) -> StoreResult<bool> {
        self.write(&(write, create), |t, _, (write, create), now| {
            Box::pin(clicktopay::directory_put(t, write, *create, now))
        })
        .await
    }

    async fn directory_remove(
        &self,
        issuer: &IssuerId,
        consumer: &ConsumerId,
    ) -> StoreResult<bool> {
        let ctx = (issuer.clone(), consumer.clone());
        self.write(&ctx, |t, _, (issuer, consumer), _| {
            Box::pin(clicktopay::directory_remove(t, issuer, consumer))
        })
        .await
    }

    async fn directory_profile(
        &self,
        issuer: &IssuerId,
        consumer: &ConsumerId,
    ) -> StoreResult<Option<DirectoryRecord>> {
        clicktopay::directory_profile(&self.client().await?, issuer, consumer).await
    }

    async fn claim_notifications(
        &self,
        lease_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<NotificationRecord>> {
        self.write(&(lease_ms, limit), |t, _, (lease_ms, limit), now| {
            Box::pin(clicktopay::claim_notifications(t, *lease_ms, *limit, now))
        })
        .await
    }

    async fn settle_notification(&self, id: i64, delivery: Delivery) -> StoreResult<()> {
        self.write(&(id, delivery), |t, _, (id, delivery), _| {
            Box::pin(clicktopay::settle_notification(t, *id, *delivery))
        })
        .await
    }
}
