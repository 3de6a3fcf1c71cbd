//! The one implementation of [`Store`]: each method prepares what it can outside the
//! transaction (sealing, MACs) and runs its use case from `crate::rules` on whichever backend
//! the store was opened on. The `write!` and `read!` macros hand the same use case to both
//! backends; each arm gets its own primitives' type.

use std::sync::Arc;

use async_trait::async_trait;
use d1_domain::card::{CardId, CardProductId};
use d1_domain::{ConsumerId, IssuerId};

use crate::rules::{
    cards, clicktopay, consumers, directory, issuers, lifecycle, notify, renewals, trail,
};
// Every type of the `Store` trait is the crate's own.
use crate::*;

#[macro_use]
mod macros;
pub(crate) mod portal;

/// The backend a store was opened on.
pub(crate) enum Engine {
    Sqlite(sqlite::Sqlite),
    Postgres(postgres::Postgres),
}

#[async_trait]
impl Store for Engine {
    fn vault(&self) -> &Arc<Vault> {
        match self {
            Engine::Sqlite(s) => s.vault(),
            Engine::Postgres(p) => p.vault(),
        }
    }
    fn portal(&self) -> &dyn portal::PortalStore {
        self
    }

    async fn ping(&self) -> StoreResult<()> {
        match self {
            Engine::Sqlite(s) => s.ping().await,
            Engine::Postgres(p) => p.ping().await,
        }
    }

    fn write_activity(&self) -> WriteActivity {
        match self {
            Engine::Sqlite(s) => s.activity(),
            Engine::Postgres(p) => p.activity(),
        }
    }

    async fn service_keys(&self) -> StoreResult<Vec<ServiceKeyRecord>> {
        read!(self, (), |db, _, ()| issuers::service_keys(db))
    }

    async fn add_service_key(&self, key: ServiceKeyRecord) -> StoreResult<()> {
        write!(self, false, key, |db, _, key, _| issuers::add_service_key(
            db, key
        ))
    }

    async fn add_issuer(&self, issuer: NewIssuer) -> StoreResult<()> {
        write!(self, false, issuer, |db, _, issuer, now| issuers::add(
            db, issuer, now
        ))
    }

    async fn change_issuer(&self, issuer: IssuerId, change: IssuerChange) -> StoreResult<()> {
        write!(
            self,
            false,
            (issuer, change),
            |db, _, (issuer, change), now| issuers::change(db, issuer, change, now)
        )
    }

    async fn issuers(&self) -> StoreResult<Vec<IssuerRecord>> {
        read!(self, (), |db, _, ()| issuers::list(db))
    }

    async fn issuer(&self, issuer: &IssuerId) -> StoreResult<Option<IssuerRecord>> {
        read!(self, issuer.clone(), |db, _, issuer| issuers::get(
            db, issuer
        ))
    }

    async fn assertion_key(&self, kid: &str) -> StoreResult<Option<AssertionKeyRecord>> {
        read!(self, kid.to_owned(), |db, _, kid| issuers::assertion_key(
            db, kid
        ))
    }

    async fn add_aggregator(&self, new: NewAggregator) -> StoreResult<()> {
        write!(self, false, new, |db, _, new, now| {
            crate::rules::aggregators::add(db, new, now)
        })
    }

    async fn aggregators(&self) -> StoreResult<Vec<AggregatorRecord>> {
        read!(self, (), |db, _, ()| crate::rules::aggregators::list(db))
    }

    async fn use_jti(&self, issuer: &IssuerId, jti: &str, expires_at: i64) -> StoreResult<()> {
        let ctx = (issuer.clone(), jti.to_owned(), expires_at);
        write!(self, false, ctx, |db, _, (issuer, jti, expires_at), now| {
            issuers::use_jti(db, issuer, jti, *expires_at, now)
        })
    }

    async fn register_consumer(&self, cmd: RegisterConsumer) -> StoreResult<RegisterOutcome> {
        // Sealed here, on the caller's thread, so that the transaction only writes.
        let vault = self.vault();
        let fresh = vault.fresh_consumer(&cmd.issuer_id, &cmd.consumer_id, cmd.pi.as_ref())?;
        if let Engine::Postgres(p) = self {
            if p.create_in_batch(&cmd, &fresh).await {
                return Ok(RegisterOutcome::Created);
            }
        }
        write!(self, false, (cmd, fresh), |db, vault, (cmd, fresh), now| {
            consumers::register(db, vault, cmd, fresh, now)
        })
    }

    async fn update_consumer(&self, cmd: UpdateConsumer) -> StoreResult<ChangeOutcome> {
        write!(self, false, cmd, |db, vault, cmd, now| consumers::update(
            db, vault, cmd, now
        ))
    }

    async fn delete_consumer(&self, cmd: DeleteConsumer) -> StoreResult<ChangeOutcome> {
        write!(self, true, cmd, |db, _, cmd, now| consumers::delete(
            db, cmd, now
        ))
    }

    async fn consumer(
        &self,
        issuer: &IssuerId,
        consumer: &ConsumerId,
    ) -> StoreResult<Option<ConsumerView>> {
        let ctx = (issuer.clone(), consumer.clone());
        read!(self, ctx, |db, vault, (issuer, consumer)| consumers::get(
            db, vault, issuer, consumer
        ))
    }

    async fn add_product(&self, product: ProductRecord) -> StoreResult<()> {
        write!(self, false, product, |db, _, product, now| {
            cards::add_product(db, product, now)
        })
    }

    async fn product(
        &self,
        issuer: &IssuerId,
        product: &CardProductId,
    ) -> StoreResult<Option<ProductRecord>> {
        let ctx = (issuer.clone(), product.clone());
        read!(self, ctx, |db, _, (issuer, product)| cards::product(
            db, issuer, product
        ))
    }

    async fn register_card(&self, cmd: RegisterCard) -> StoreResult<CardOutcome> {
        let mac = self.vault().pan_mac(&cmd.issuer_id, &cmd.data.pan); // sealing waits for the key
        if let Engine::Postgres(p) = self {
            if let Some(outcome) = p.register_card_in_batch(&cmd, &mac).await {
                return Ok(outcome);
            }
        }
        write!(self, false, (cmd, mac), |db, vault, (cmd, mac), now| {
            cards::register(db, vault, cmd, mac, now)
        })
    }

    async fn register_cards(&self, cmd: RegisterCards) -> StoreResult<CardOutcome> {
        let vault = self.vault();
        let fresh = vault.fresh_consumer(&cmd.issuer_id, &cmd.consumer_id, None)?;
        let macs: Vec<Vec<u8>> = cmd
            .cards
            .iter()
            .map(|c| vault.pan_mac(&cmd.issuer_id, &c.data.pan))
            .collect();
        let ctx = (cmd, fresh, macs);
        write!(self, false, ctx, |db, vault, (cmd, fresh, macs), now| {
            cards::register_batch(db, vault, cmd, fresh, macs, now)
        })
    }

    async fn create_card(&self, cmd: CreateCard) -> StoreResult<CreateOutcome> {
        let today = time::OffsetDateTime::now_utc().date();
        write!(self, false, (cmd, today), |db, vault, (cmd, today), now| {
            cards::create(db, vault, cmd, *today, now)
        })
    }

    async fn operate_card(&self, cmd: OperateCard) -> StoreResult<OperateOutcome> {
        let today = time::OffsetDateTime::now_utc().date();
        // Delete and replace shred the card's sealed data.
        let shreds = matches!(
            cmd.action,
            crate::CardAction::Delete | crate::CardAction::Replace { .. }
        );
        write!(self, shreds, (cmd, today), |db, vault, (cmd, day), now| {
            lifecycle::operate(db, vault, cmd, *day, now)
        })
    }

    async fn take_scheduled_run(&self, name: &str, lease_ms: i64) -> StoreResult<bool> {
        write!(
            self,
            false,
            (name.to_owned(), lease_ms),
            |db, _, (name, lease_ms), now| {
                renewals::take_run(db, name, now.saturating_add(*lease_ms), now)
            }
        )
    }

    async fn due_renewals(
        &self,
        expiries: Vec<String>,
        limit: u32,
    ) -> StoreResult<Vec<(IssuerId, CardId)>> {
        read!(self, (expiries, limit), |db, _, (expiries, limit)| {
            renewals::due(db, expiries, *limit)
        })
    }

    async fn card(&self, issuer: &IssuerId, card: &CardId) -> StoreResult<Option<CardView>> {
        let ctx = (issuer.clone(), card.clone());
        read!(self, ctx, |db, _, (issuer, card)| cards::get(
            db, issuer, card
        ))
    }

    async fn cards(
        &self,
        issuer: &IssuerId,
        consumer: &ConsumerId,
    ) -> StoreResult<Option<Vec<CardView>>> {
        let ctx = (issuer.clone(), consumer.clone());
        read!(self, ctx, |db, _, (issuer, consumer)| cards::list(
            db, issuer, consumer
        ))
    }

    async fn retire_service_key(&self, kid: &str) -> StoreResult<()> {
        write!(self, false, kid.to_owned(), |db, _, kid, now| {
            issuers::retire_service_key(db, kid, now)
        })
    }

    async fn operations(
        &self,
        issuer: &IssuerId,
        consumer: &ConsumerId,
        limit: u32,
        before: Option<i64>,
    ) -> StoreResult<Option<OperationsPage>> {
        let ctx = (issuer.clone(), consumer.clone(), limit, before);
        read!(self, ctx, |db, _, (issuer, consumer, limit, before)| {
            consumers::operations(db, issuer, consumer, *limit, *before)
        })
    }

    async fn operations_at(
        &self,
        issuer: &IssuerId,
        consumer: &ConsumerId,
        offset: u64,
        count: u32,
    ) -> StoreResult<Option<Vec<OperationRecord>>> {
        let ctx = (issuer.clone(), consumer.clone(), offset, count);
        read!(self, ctx, |db, _, (issuer, consumer, offset, count)| {
            trail::at_offset(db, issuer, consumer, *offset, *count)
        })
    }

    async fn operation(
        &self,
        issuer: &IssuerId,
        operation_id: &str,
    ) -> StoreResult<Option<OperationRecord>> {
        let ctx = (issuer.clone(), operation_id.to_owned());
        read!(self, ctx, |db, _, (issuer, id)| trail::operation(
            db, issuer, id
        ))
    }

    async fn set_issuer_backend(&self, backend: BackendRecord) -> StoreResult<()> {
        write!(self, false, backend, |db, _, backend, now| {
            clicktopay::set_backend(db, backend, now)
        })
    }

    async fn issuer_backend(&self, issuer: &IssuerId) -> StoreResult<Option<BackendRecord>> {
        read!(self, issuer.clone(), |db, _, issuer| clicktopay::backend(
            db, issuer
        ))
    }

    async fn start_enrolment(&self, cmd: StartEnrolment) -> StoreResult<EnrolmentStart> {
        write!(self, false, cmd, |db, vault, cmd, now| {
            clicktopay::start_enrolment(db, vault, cmd, now)
        })
    }

    async fn claim_jobs(&self, lease_ms: i64, limit: u32) -> StoreResult<Vec<ClaimedJob>> {
        // Read first: a node with nothing due writes nothing, and syncs nothing.
        if !read!(self, (), |db, _, ()| clicktopay::job_due(db, now_ms()))? {
            return Ok(Vec::new());
        }
        write!(
            self,
            false,
            (lease_ms, limit),
            |db, vault, (lease, limit), now| {
                clicktopay::claim_jobs(db, vault, *lease, *limit, now)
            }
        )
    }

    async fn finish_job(&self, done: FinishJob) -> StoreResult<()> {
        write!(
            self,
            false,
            done,
            |db, _, done, now| clicktopay::finish_job(db, done, now)
        )
    }

    async fn release_leases(&self) -> StoreResult<()> {
        // A shared database (PostgreSQL) waits for leases to run out instead.
        match self {
            Engine::Sqlite(s) => {
                s.write(false, (), |db, _, (), _| {
                    Box::pin(clicktopay::release_leases(db))
                })
                .await
            }
            Engine::Postgres(_) => Ok(()),
        }
    }

    async fn directory_put(&self, write: DirectoryWrite, create: bool) -> StoreResult<bool> {
        write!(
            self,
            false,
            (write, create),
            |db, _, (write, create), now| directory::put(db, write, *create, now)
        )
    }

    async fn directory_remove(
        &self,
        issuer: &IssuerId,
        consumer: &ConsumerId,
    ) -> StoreResult<bool> {
        let ctx = (issuer.clone(), consumer.clone());
        write!(self, true, ctx, |db, _, (issuer, consumer), _| {
            directory::remove(db, issuer, consumer)
        })
    }

    async fn directory_profile(
        &self,
        issuer: &IssuerId,
        consumer: &ConsumerId,
    ) -> StoreResult<Option<DirectoryRecord>> {
        let ctx = (issuer.clone(), consumer.clone());
        read!(self, ctx, |db, _, (issuer, consumer)| directory::profile(
            db, issuer, consumer
        ))
    }

    async fn claim_notifications(
        &self,
        lease_ms: i64,
        limit: u32,
    ) -> StoreResult<NotificationClaim> {
        if !read!(self, (), |db, _, ()| notify::due(db, now_ms()))? {
            return Ok(NotificationClaim::default());
        }
        write!(
            self,
            false,
            (lease_ms, limit),
            |db, _, (lease, limit), now| notify::claim(db, *lease, *limit, now)
        )
    }

    async fn settle_notifications(&self, settlement: NotificationSettlement) -> StoreResult<()> {
        write!(self, false, settlement, |db, _, settlement, _| {
            notify::settle(db, settlement)
        })
    }
}
