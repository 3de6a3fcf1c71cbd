//! The notifications outbox: card operation notifications wait in the database until the
//! issuer backend answers 2xx, retried with capped exponential backoff and jitter, in
//! order per card (a card's next notification waits for the one before). One not delivered
//! within `jobs.notification_max_age_hours` is marked DEAD. A notification may be delivered
//! twice (a crash between the 2xx and its record); its operationId lets the issuer see that.

use std::sync::Arc;

use d1_store::{Delivery, NotificationRecord};
use rand::Rng;
use tokio::sync::watch;

use super::{C2pMetrics, ClickToPay};

/// Notifications claimed at once.
const BATCH: u32 = 32;

/// The first retry's pause ceiling.
const FIRST_BACKOFF_MS: u64 = 1_000;

/// Delivers notifications until `stop` turns true.
///
/// # Errors
/// None today: a failed claim is logged and tried again. The result lets its supervisor
/// treat every task alike.
pub async fn run(c2p: Arc<ClickToPay>, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        let mut full = false;
        match c2p.store.claim_notifications(c2p.lease_ms(), BATCH).await {
            Ok(batch) => {
                full = batch.len() == usize::try_from(BATCH).unwrap_or(usize::MAX);
                let sends = batch.into_iter().map(|n| {
                    let c2p = Arc::clone(&c2p);
                    async move { c2p.deliver(n).await }
                });
                futures_util::future::join_all(sends).await;
            }
            Err(e) => tracing::warn!(error = %e, "could not claim notifications"),
        }
        if full {
            continue;
        }
        tokio::select! {
            () = c2p.wake_outbox.notified() => {}
            () = tokio::time::sleep(c2p.poll_interval()) => {}
            _ = stop.changed() => {}
        }
    }
}

impl ClickToPay {
    async fn deliver(&self, n: NotificationRecord) {
        let outcome = match self.backend(&n.issuer_id).await {
            Ok(Some(backend)) => self
                .api
                .notify(&backend, &n.body)
                .await
                .map_err(|e| e.to_string()),
            Ok(None) => Err("no issuer backend is set".to_owned()),
            Err(e) => Err(e.to_string()),
        };
        let delivery = match outcome {
            Ok(()) => {
                C2pMetrics::count(&self.metrics.notifications_delivered);
                tracing::info!(issuer_id = %n.issuer_id, operation_id = %n.operation_id, "notification delivered");
                Delivery::Delivered
            }
            Err(why) => {
                C2pMetrics::count(&self.metrics.notification_attempts_failed);
                let now = d1_store::now_ms();
                let max_age = i64::try_from(
                    self.jobs
                        .notification_max_age_hours
                        .saturating_mul(3_600_000),
                )
                .unwrap_or(i64::MAX);
                if now.saturating_sub(n.created_at) >= max_age {
                    C2pMetrics::count(&self.metrics.notifications_dead);
                    tracing::error!(issuer_id = %n.issuer_id, operation_id = %n.operation_id, error = %why, "notification undelivered for too long; marked DEAD");
                    Delivery::Dead
                } else {
                    tracing::warn!(issuer_id = %n.issuer_id, operation_id = %n.operation_id, attempt = n.attempts + 1, error = %why, "notification not delivered; will retry");
                    Delivery::Retry(now + self.backoff_ms(n.attempts))
                }
            }
        };
        if let Err(e) = self.store.settle_notification(n.id, delivery).await {
            tracing::warn!(error = %e, "could not record a delivery attempt; the lease will run out");
        }
    }

    /// The pause after failed attempt `attempts + 1`: a random point in the upper half of a
    /// ceiling that doubles from one second up to `jobs.notification_max_backoff_secs` ("equal
    /// jitter": never less than half the ceiling, so retries keep backing off).
    fn backoff_ms(&self, attempts: u32) -> i64 {
        let cap = self
            .jobs
            .notification_max_backoff_secs
            .saturating_mul(1000)
            .max(1);
        let ceiling = FIRST_BACKOFF_MS
            .saturating_mul(1 << attempts.min(20))
            .min(cap);
        let pause = rand::thread_rng().gen_range(ceiling / 2..=ceiling);
        i64::try_from(pause).unwrap_or(i64::MAX)
    }
}
