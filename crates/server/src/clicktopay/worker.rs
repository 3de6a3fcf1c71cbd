//! The job worker: claims due jobs from the database (leased, so a node that dies only delays
//! them) and runs them side by side, up to `jobs.concurrency` at once.
//!
//! An enrolment resolves the consumer's PI (stored, or fetched from the issuer backend when
//! its source is ISSUER), checks the profile's mandatory data, opens the card and enrols it in
//! the directory. Its end — the trail entries and the notification item for the issuer (the
//! store builds it) — is written in one transaction with the job's removal, so a job run again
//! after a crash notifies once.

use std::sync::Arc;

use d1_domain::ConsumerState;
use d1_issuer_client::{ConsumerRef, FetchError};
use d1_store::{CardState, ClaimedJob, FinishJob, JobKind, JobOutcome, PiFetchRecord};
use tokio::sync::{watch, Semaphore};
use tracing::Instrument;

use super::{profile, C2pMetrics, ClickToPay};

/// A sync job that keeps failing is dropped after this many claims, so it cannot hold back
/// the consumer's later jobs forever.
const SYNC_ATTEMPTS: u32 = 10;

/// Claims and runs jobs until `stop` turns true.
///
/// # Errors
/// If its slots are closed, which ends the worker (its supervisor starts it again).
pub async fn run(c2p: Arc<ClickToPay>, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let slots = Arc::new(Semaphore::new(
        usize::try_from(c2p.jobs.concurrency.max(1)).unwrap_or(1),
    ));
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        let free = u32::try_from(slots.available_permits()).unwrap_or(0);
        let mut claimed_any = false;
        if free > 0 {
            match c2p.store.claim_jobs(c2p.lease_ms(), free).await {
                Ok(jobs) => {
                    claimed_any = !jobs.is_empty();
                    for job in jobs {
                        let permit = Arc::clone(&slots).acquire_owned().await?;
                        let c2p = Arc::clone(&c2p);
                        tokio::spawn(async move {
                            // A job that panics frees its slot; its lease runs out and it
                            // runs again.
                            let ran = tokio::spawn({
                                let c2p = Arc::clone(&c2p);
                                async move { c2p.run_job(job).await }
                            })
                            .await;
                            if ran.is_err() {
                                tracing::error!("a Click to Pay job panicked; it will run again when its lease runs out");
                            }
                            drop(permit);
                            c2p.wake();
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not claim Click to Pay jobs"),
            }
        }
        if claimed_any && slots.available_permits() > 0 {
            continue;
        }
        tokio::select! {
            () = c2p.wake_jobs.notified() => {}
            () = tokio::time::sleep(c2p.poll_interval()) => {}
            _ = stop.changed() => {}
        }
    }
}

/// The reason code an enrolment fails with when PI could not be fetched.
fn fetch_reason(e: &FetchError) -> &'static str {
    match e {
        FetchError::Timeout => "ISSUER_BACKEND_TIMEOUT",
        FetchError::Unavailable(_) => "ISSUER_BACKEND_ERROR",
        FetchError::NotFound => "CONSUMER_NOT_FOUND_AT_ISSUER",
        FetchError::InvalidState => "CONSUMER_INVALID_STATE_AT_ISSUER",
        FetchError::InvalidResponse => "INVALID_ISSUER_RESPONSE",
    }
}

impl ClickToPay {
    async fn run_job(&self, job: ClaimedJob) {
        let span = tracing::info_span!(
            "job",
            kind = job.kind.as_str(),
            issuer_id = %job.issuer_id,
            operation_id = job.operation_id.as_deref().unwrap_or(""),
            correlation_id = job.correlation_id.as_deref().unwrap_or(""),
        );
        self.run_job_in_span(job).instrument(span).await;
    }

    async fn run_job_in_span(&self, job: ClaimedJob) {
        let done = match job.kind {
            JobKind::Enrol => self.enrol(&job).await,
            JobKind::Sync => match self.sync(&job).await {
                Some(done) => done,
                None => return,
            },
        };
        if let JobOutcome::Failed(reason) = &done.outcome {
            C2pMetrics::count(&self.metrics.enrolments_failed);
            tracing::info!(reason = %reason, "Click to Pay enrolment failed");
        } else if job.kind == JobKind::Enrol {
            C2pMetrics::count(&self.metrics.enrolments_successful);
            tracing::info!("Click to Pay enrolment successful");
        }
        // An enrolment's end queues its notification (where the backend takes it).
        let notifies = job.kind == JobKind::Enrol;
        if let Err(e) = self.store.finish_job(done).await {
            // The lease runs out and the job runs again; its end is written once.
            tracing::warn!(error = %e, "could not record the end of a job; it will run again");
            return;
        }
        if notifies {
            self.wake_outbox.notify_one();
        }
    }

    async fn enrol(&self, job: &ClaimedJob) -> FinishJob {
        let mut pi_fetch = None;
        let outcome = self.enrolment(job, &mut pi_fetch).await;
        FinishJob {
            id: job.id,
            outcome,
            pi_fetch,
        }
    }

    async fn enrolment(
        &self,
        job: &ClaimedJob,
        pi_fetch: &mut Option<PiFetchRecord>,
    ) -> JobOutcome {
        let failed = |reason: &str| JobOutcome::Failed(reason.to_owned());
        if job.unreadable {
            tracing::error!("the consumer's sealed data does not open; enrolment failed");
            return failed("STORED_DATA_UNREADABLE");
        }
        let (Some(card), Some(card_id)) = (&job.card, &job.card_id) else {
            return failed("CARD_NOT_ACTIVE");
        };
        if job.consumer_state != ConsumerState::Active || job.card_state != Some(CardState::Active)
        {
            return failed("CARD_NOT_ACTIVE");
        }
        let pi = match &job.stored_pi {
            Some(pi) => pi.clone(),
            None => match self.fetch(job, card_id, pi_fetch).await {
                Ok(pi) => pi,
                Err(reason) => return failed(reason),
            },
        };
        let profile = match profile::profile(&pi) {
            Ok(p) => p,
            Err(reason) => return JobOutcome::Failed(reason),
        };
        let given = profile::Given {
            billing: job.billing.as_ref(),
            cardholder_name: job.cardholder_name.as_deref(),
        };
        let enrolled = match profile::card(&pi, &profile, card, &given) {
            Ok(c) => c,
            Err(reason) => return JobOutcome::Failed(reason),
        };
        match self
            .directory
            .enrol(
                &job.issuer_id,
                &job.consumer_id,
                &profile,
                card_id,
                &enrolled,
            )
            .await
        {
            Ok(created) => {
                tracing::debug!(profile_created = created, "card enrolled in the directory");
                JobOutcome::Enrolled
            }
            Err(e) => {
                tracing::warn!(error = %e, "the directory refused an enrolment");
                failed("DIRECTORY_ERROR")
            }
        }
    }

    /// Fetches the consumer's PI from the issuer backend, recording the fetch for the trail.
    async fn fetch(
        &self,
        job: &ClaimedJob,
        card_id: &str,
        record: &mut Option<PiFetchRecord>,
    ) -> Result<d1_domain::PersonalInformation, &'static str> {
        let backend = match self.backend(&job.issuer_id).await {
            Ok(Some(backend)) => backend,
            Ok(None) => {
                tracing::warn!("no issuer backend is set for this issuer; cannot fetch PI");
                return Err("ISSUER_BACKEND_ERROR");
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read the issuer backend's settings");
                return Err("ISSUER_BACKEND_ERROR");
            }
        };
        let started_at = d1_store::now_ms();
        let asked = ConsumerRef {
            consumer_id: job.consumer_id.as_str(),
            card_id: Some(card_id),
            correlation_id: job.correlation_id.as_deref(),
        };
        match self.api.consumer_info(&backend, asked).await {
            Ok(fetched) if fetched.cached => {
                C2pMetrics::count(&self.metrics.pi_cache_hits);
                Ok(fetched.pi)
            }
            Ok(fetched) => {
                C2pMetrics::count(&self.metrics.pi_fetches);
                *record = Some(PiFetchRecord {
                    started_at,
                    failure: None,
                });
                Ok(fetched.pi)
            }
            Err(e) => {
                C2pMetrics::count(&self.metrics.pi_fetch_failures);
                tracing::warn!(error = %e, "Get Consumer Information failed");
                let reason = fetch_reason(&e);
                *record = Some(PiFetchRecord {
                    started_at,
                    failure: Some(reason.to_owned()),
                });
                Err(reason)
            }
        }
    }

    /// Pushes a consumer's change to the directory: its new stored PI, or the removal of its
    /// profile once DELETED. `None` leaves the job to run again later.
    async fn sync(&self, job: &ClaimedJob) -> Option<FinishJob> {
        let result = if job.unreadable {
            tracing::error!("the consumer's sealed data does not open; directory sync skipped");
            Ok(())
        } else if job.consumer_state == ConsumerState::Deleted {
            self.directory
                .remove_profile(&job.issuer_id, &job.consumer_id)
                .await
                .map(|_| ())
        } else if let Some(pi) = &job.stored_pi {
            match profile::profile(pi) {
                Ok(p) => self
                    .directory
                    .update_profile(&job.issuer_id, &job.consumer_id, &p)
                    .await
                    .map(|_| ()),
                Err(reason) => {
                    tracing::warn!(reason = %reason, "stored PI no longer makes a directory profile; left as it was");
                    Ok(())
                }
            }
        } else {
            Ok(())
        };
        if let Err(e) = result {
            if job.attempts < SYNC_ATTEMPTS {
                tracing::warn!(error = %e, "directory sync failed; it will run again");
                return None;
            }
            tracing::error!(error = %e, "directory sync failed too often; dropped");
        }
        Some(FinishJob {
            id: job.id,
            outcome: JobOutcome::Synced,
            pi_fetch: None,
        })
    }
}
