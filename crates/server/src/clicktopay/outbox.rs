//! The notifications outbox (contract section 9a): card operation items wait in the database
//! until the issuer backend answers 2xx. Each round claims many due items at once (never two
//! of one card, so a card's next item waits for the one before; a round that delivered
//! anything is followed at once by the next), groups them per issuer into
//! calls of at most its `notification_batch_size` items, sends the calls side by side, and
//! settles the round in one write: the delivered items go in one statement, the others are
//! retried with capped exponential backoff and jitter, or marked DEAD once older than
//! `jobs.notification_max_age_hours`. An item may be delivered twice (a crash between the 2xx
//! and its record); its operationId lets the issuer see that.

use std::collections::HashMap;
use std::sync::Arc;

use d1_domain::IssuerId;
use d1_store::{Delivery, NotificationClaim, NotificationRecord};
use futures_util::StreamExt;
use rand::Rng;
use tokio::sync::watch;

use super::{C2pMetrics, ClickToPay, Resolved};

/// Items claimed in one round: enough that a round keeps up with thousands of card
/// operations a second, few enough that one round's calls end within a lease.
const CLAIM: u32 = 256;

/// Calls to issuer backends in flight at once.
const IN_FLIGHT: usize = 64;

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
        // A round that delivered anything may have let a card's next item become due (a
        // claim takes one item a card), so the next round follows at once: a card's backlog
        // drains at the pace of its calls, not one item a poll interval.
        let mut again = false;
        match c2p.store.claim_notifications(c2p.lease_ms(), CLAIM).await {
            Ok(claim) if !claim.items.is_empty() => again = c2p.deliver(claim).await,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not claim notifications"),
        }
        if again {
            continue;
        }
        tokio::select! {
            () = c2p.wake_outbox.notified() => {}
            () = tokio::time::sleep(c2p.poll_interval()) => {}
            _ = stop.changed() => {}
        }
    }
}

/// One call: an issuer's items, oldest first, at most its batch size.
struct Call {
    issuer_id: IssuerId,
    target: Result<Resolved, String>,
    items: Vec<NotificationRecord>,
}

impl Call {
    /// The `{"operations": [...]}` envelope; the items are JSON objects as the store wrote them.
    fn envelope(&self) -> String {
        let size = self.items.iter().map(|n| n.item.len() + 1).sum::<usize>();
        let mut body = String::with_capacity(size + 20);
        body.push_str("{\"operations\":[");
        for (i, n) in self.items.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&n.item);
        }
        body.push_str("]}");
        body
    }

    /// The correlation id of the request behind the first item, or a fresh one.
    fn correlation_id(&self) -> String {
        self.items
            .first()
            .and_then(|n| n.correlation_id.clone())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
    }
}

impl ClickToPay {
    /// Delivers one claim's items and records how each call ended; whether any call was
    /// delivered and recorded.
    async fn deliver(&self, claim: NotificationClaim) -> bool {
        let mut settlement = claim.settlement();
        let calls = self.calls(claim.items).await;
        let sent: Vec<(Call, Result<(), String>)> = futures_util::stream::iter(calls)
            .map(|call| async move {
                let outcome = self.send(&call).await;
                (call, outcome)
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        let now = d1_store::now_ms();
        let mut delivered = false;
        for (call, outcome) in sent {
            match outcome {
                Ok(()) => {
                    delivered = true;
                    C2pMetrics::add(&self.metrics.notifications_delivered, call.items.len());
                    tracing::debug!(issuer_id = %call.issuer_id, items = call.items.len(), "notifications delivered");
                }
                Err(why) => {
                    C2pMetrics::add(&self.metrics.notification_attempts_failed, call.items.len());
                    tracing::warn!(issuer_id = %call.issuer_id, items = call.items.len(), error = %why, "notifications not delivered; they will be retried");
                    for n in &call.items {
                        settlement
                            .undelivered
                            .push((n.id, self.after_failure(n, now)));
                    }
                }
            }
        }
        if let Err(e) = self.store.settle_notifications(settlement).await {
            tracing::warn!(error = %e, "could not record delivery attempts; the leases will run out");
            return false;
        }
        delivered
    }

    /// The claim's items in calls: per issuer in the order claimed, cut at its batch size.
    async fn calls(&self, items: Vec<NotificationRecord>) -> Vec<Call> {
        let mut per_issuer: Vec<(IssuerId, Vec<NotificationRecord>)> = Vec::new();
        let mut index: HashMap<IssuerId, usize> = HashMap::new();
        for n in items {
            let at = *index.entry(n.issuer_id.clone()).or_insert_with(|| {
                per_issuer.push((n.issuer_id.clone(), Vec::new()));
                per_issuer.len() - 1
            });
            per_issuer[at].1.push(n);
        }
        let mut calls = Vec::new();
        for (issuer_id, items) in per_issuer {
            let target = match self.resolve(&issuer_id).await {
                Ok(Some(target)) => Ok(target),
                Ok(None) => Err("no issuer backend is set".to_owned()),
                Err(e) => Err(e.to_string()),
            };
            let size = target.as_ref().map_or(items.len(), |t| t.batch_size).max(1);
            let mut items = items.into_iter().peekable();
            while items.peek().is_some() {
                calls.push(Call {
                    issuer_id: issuer_id.clone(),
                    target: target.clone(),
                    items: items.by_ref().take(size).collect(),
                });
            }
        }
        calls
    }

    async fn send(&self, call: &Call) -> Result<(), String> {
        let target = call.target.as_ref().map_err(Clone::clone)?;
        self.api
            .notify(&target.backend, call.envelope(), &call.correlation_id())
            .await
            .map_err(|e| e.to_string())
    }

    /// What becomes of an item whose call failed: DEAD once it is too old, else a retry.
    fn after_failure(&self, n: &NotificationRecord, now: i64) -> Delivery {
        let max_age = i64::try_from(
            self.jobs
                .notification_max_age_hours
                .saturating_mul(3_600_000),
        )
        .unwrap_or(i64::MAX);
        if now.saturating_sub(n.created_at) >= max_age {
            C2pMetrics::count(&self.metrics.notifications_dead);
            tracing::error!(issuer_id = %n.issuer_id, operation_id = %n.operation_id, "notification undelivered for too long; marked DEAD");
            Delivery::Dead
        } else {
            Delivery::Retry(now + self.backoff_ms(n.attempts))
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
