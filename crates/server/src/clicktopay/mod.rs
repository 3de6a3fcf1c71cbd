//! Click to Pay enrolment, run in the background from the database: the [`worker`] takes
//! enrolment and directory jobs, the [`outbox`] delivers card operation notifications. Both
//! call issuer backends through the outbound client, whose settings per issuer are resolved
//! here.

pub mod directory;
mod metrics;
pub mod outbox;
pub mod profile;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use d1_domain::IssuerId;
use d1_issuer_client::{Backend, IssuerApi};
use d1_store::{Store, StoreError, StoreResult};
use moka::sync::Cache;
use secrecy::SecretString;
use tokio::sync::{watch, Notify};

use crate::config::JobsConfig;
use crate::supervise::{supervise, Backoff};
use directory::Directory;
pub use metrics::C2pMetrics;

/// How long an issuer's backend settings are trusted before they are read again, like the
/// issuer's other settings.
const BACKEND_CACHE_TTL: Duration = crate::config::ISSUER_CACHE_TTL;

/// The background side of Click to Pay, shared by the routes (which wake it) and its tasks.
pub struct ClickToPay {
    pub store: Arc<dyn Store>,
    pub api: Arc<dyn IssuerApi>,
    pub directory: Arc<dyn Directory>,
    pub jobs: JobsConfig,
    pub metrics: C2pMetrics,
    wake_jobs: Notify,
    wake_outbox: Notify,
    backends: Cache<IssuerId, Resolved>,
}

/// An issuer's backend as the outbound calls use it, and how many notification items one
/// call to it may carry.
#[derive(Clone)]
pub struct Resolved {
    pub backend: Backend,
    pub batch_size: usize,
}

impl ClickToPay {
    /// Assembles the service; nothing runs until [`ClickToPay::start`].
    #[must_use]
    pub fn new(
        store: Arc<dyn Store>,
        api: Arc<dyn IssuerApi>,
        directory: Arc<dyn Directory>,
        jobs: JobsConfig,
    ) -> Self {
        Self {
            store,
            api,
            directory,
            jobs,
            metrics: C2pMetrics::default(),
            wake_jobs: Notify::new(),
            wake_outbox: Notify::new(),
            backends: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(BACKEND_CACHE_TTL)
                .build(),
        }
    }

    /// Starts the worker and the outbox, each supervised (restarted if it fails); they stop
    /// when `stop` turns true. Leases left by a previous run of this node are released first
    /// where the backend allows it.
    pub async fn start(self: &Arc<Self>, stop: watch::Receiver<bool>) {
        if let Err(e) = self.store.release_leases().await {
            tracing::warn!(error = %e, "could not release the previous run's job leases");
        }
        let backoff = Backoff::default();
        let (c2p, stopped) = (Arc::clone(self), stop.clone());
        tokio::spawn(supervise(
            "click-to-pay-worker",
            stop.clone(),
            backoff,
            move || worker::run(Arc::clone(&c2p), stopped.clone()),
        ));
        let (c2p, stopped) = (Arc::clone(self), stop.clone());
        tokio::spawn(supervise("notification-outbox", stop, backoff, move || {
            outbox::run(Arc::clone(&c2p), stopped.clone())
        }));
    }

    /// Tells the worker a job is waiting.
    pub fn wake(&self) {
        self.wake_jobs.notify_one();
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.jobs.lease_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }

    fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.jobs.poll_interval_ms.max(10))
    }

    /// The issuer's backend, its secret opened; `None` if none is set.
    ///
    /// # Errors
    /// If the store fails or the secret does not open.
    pub async fn backend(&self, issuer: &IssuerId) -> StoreResult<Option<Backend>> {
        Ok(self.resolve(issuer).await?.map(|r| r.backend))
    }

    /// [`ClickToPay::backend`] with the backend's notification batch size.
    ///
    /// # Errors
    /// If the store fails or the secret does not open.
    pub async fn resolve(&self, issuer: &IssuerId) -> StoreResult<Option<Resolved>> {
        if let Some(hit) = self.backends.get(issuer) {
            return Ok(Some(hit));
        }
        let resolved = match self.store.issuer_backend(issuer).await? {
            None => None,
            Some(record) => {
                let credentials = match (record.client_id, record.sealed_secret) {
                    (Some(id), Some(sealed)) => {
                        let secret = self.store.vault().open_backend_secret(issuer, &sealed)?;
                        // A secret that is not UTF-8 was not written by `set-backend`: refuse
                        // it rather than call the backend with an empty one.
                        let secret =
                            std::str::from_utf8(&secret).map_err(|_| StoreError::Corrupt {
                                table: "issuer_backends",
                                column: "secret".to_owned(),
                            })?;
                        Some((id, SecretString::from(secret)))
                    }
                    _ => None,
                };
                let backend = Backend {
                    issuer_id: issuer.as_str().to_owned(),
                    url: record.url.trim_end_matches('/').to_owned(),
                    credentials,
                    send_card_id: record.send_card_id,
                    cache_ttl: Duration::from_secs(u64::from(record.pi_cache_ttl_s)),
                };
                let batch_size = usize::try_from(record.notification_batch_size)
                    .unwrap_or(1)
                    .clamp(1, 100);
                Some(Resolved {
                    backend,
                    batch_size,
                })
            }
        };
        // An issuer without a backend is not cached, so that `issuer set-backend` takes
        // effect for the very next job.
        if let Some(resolved) = &resolved {
            self.backends.insert(issuer.clone(), resolved.clone());
        }
        Ok(resolved)
    }
}
