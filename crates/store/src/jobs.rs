//! Click to Pay rows as both backends read them, and what is opened from them, so that SQLite
//! and PostgreSQL hand the worker the same thing.

use d1_domain::{ConsumerId, ConsumerState, IssuerId, PiSource};

use crate::{CardState, ClaimedJob, JobKind, StoreError, StoreResult, Vault};

/// Which jobs may be claimed now: leased to nobody (or a lease that ran out), and, for a sync,
/// no earlier job of the same consumer still waiting, so that a sync never overtakes the
/// enrolment or change it follows. Enrolments of one consumer run side by side.
pub(crate) const CLAIMABLE: &str = "j.lease_until <= $1 AND (j.kind = 'ENROL' OR NOT EXISTS (
        SELECT 1 FROM c2p_jobs e WHERE e.consumer_ref = j.consumer_ref AND e.id < j.id))";

/// The columns of [`JobRow`], for a job `j` joined with its consumer `c`.
pub(crate) const JOB_COLUMNS: &str = "SELECT j.id, j.kind, j.issuer_id, c.consumer_id,
        CAST(j.operation_id AS TEXT), j.card_id, j.billing, j.correlation_id, j.attempts, j.created_at,
        c.state, c.pi_source, c.wrapped_key, c.pi, k.state, k.sealed
     FROM c2p_jobs j
     JOIN consumers c ON c.id = j.consumer_ref
     LEFT JOIN cards k ON k.id = (
        SELECT x.id FROM cards x
        WHERE x.issuer_id = j.issuer_id AND x.card_id = j.card_id
          AND x.consumer_ref = j.consumer_ref AND x.consumer_generation = c.generation
        ORDER BY x.id DESC LIMIT 1)";

/// A job with its consumer's row and its card's, still sealed.
pub(crate) struct JobRow {
    pub id: i64,
    pub kind: String,
    pub issuer_id: String,
    pub consumer_id: String,
    pub operation_id: Option<String>,
    pub card_id: Option<String>,
    pub billing: Option<Vec<u8>>,
    pub correlation_id: Option<String>,
    pub attempts: i64,
    pub created_at: i64,
    pub consumer_state: String,
    pub pi_source: String,
    pub wrapped_key: Option<Vec<u8>>,
    pub pi: Option<Vec<u8>>,
    pub card_state: Option<String>,
    pub card_sealed: Option<Vec<u8>>,
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Other(anyhow::anyhow!("a stored {what} does not parse"))
}

impl JobRow {
    /// Opens what the worker needs: the stored PI, the live card, the billing address. A
    /// DELETED consumer has nothing left to open. Sealed data that does not open marks the job
    /// `unreadable` instead of failing the claim, so that one bad row cannot hold back the
    /// queue.
    ///
    /// # Errors
    /// If an identifier does not parse.
    pub fn open(self, vault: &Vault) -> StoreResult<ClaimedJob> {
        let issuer = IssuerId::parse(&self.issuer_id).map_err(|_| corrupt("issuerId"))?;
        let (consumer, _) =
            ConsumerId::parse(&self.consumer_id).map_err(|_| corrupt("consumerId"))?;
        let state = ConsumerState::parse(&self.consumer_state).unwrap_or(ConsumerState::Deleted);
        let pi_source = PiSource::parse(&self.pi_source).unwrap_or(PiSource::Issuer);
        let card_state = self.card_state.as_deref().and_then(CardState::parse);
        let mut job = ClaimedJob {
            id: self.id,
            kind: JobKind::parse(&self.kind),
            issuer_id: issuer,
            consumer_id: consumer,
            operation_id: self.operation_id.clone(),
            card_id: self.card_id.clone(),
            correlation_id: self.correlation_id.clone(),
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            started_at: self.created_at,
            consumer_state: state,
            pi_source,
            stored_pi: None,
            card_state,
            card: None,
            billing: None,
            unreadable: false,
        };
        if state == ConsumerState::Active && self.open_secrets(vault, &mut job).is_err() {
            job.stored_pi = None;
            job.card = None;
            job.billing = None;
            job.unreadable = true;
        }
        Ok(job)
    }

    fn open_secrets(&self, vault: &Vault, job: &mut ClaimedJob) -> StoreResult<()> {
        let Some(wrapped) = &self.wrapped_key else {
            return Err(corrupt("data key"));
        };
        let key = vault.open_consumer_key(&job.issuer_id, &job.consumer_id, wrapped)?;
        if let (PiSource::Stored, Some(sealed)) = (job.pi_source, &self.pi) {
            job.stored_pi = Some(vault.open_pi(&key, &job.issuer_id, &job.consumer_id, sealed)?);
        }
        if let (Some(card_id), Some(sealed)) = (&job.card_id, &self.card_sealed) {
            if job.card_state != Some(CardState::Deleted) {
                job.card = Some(vault.open_card(&key, &job.issuer_id, card_id, sealed)?);
            }
        }
        if let Some(sealed) = &self.billing {
            job.billing =
                Some(vault.open_billing(&key, &job.issuer_id, &job.consumer_id, sealed)?);
        }
        Ok(())
    }
}

/// The card an enrolment names, and its consumer.
pub(crate) struct EnrolTarget {
    pub card_state: CardState,
    pub consumer_ref: i64,
    pub consumer_id: String,
    pub consumer_state: ConsumerState,
    pub wrapped_key: Option<Vec<u8>>,
}

impl EnrolTarget {
    /// The enrolment's billing address sealed under the consumer's data key.
    ///
    /// # Errors
    /// If the key does not open.
    pub fn seal_billing(
        &self,
        vault: &Vault,
        issuer: &IssuerId,
        address: Option<&d1_domain::Address>,
    ) -> StoreResult<Option<Vec<u8>>> {
        let (Some(address), Some(wrapped)) = (address, &self.wrapped_key) else {
            return Ok(None);
        };
        let (consumer, _) =
            ConsumerId::parse(&self.consumer_id).map_err(|_| corrupt("consumerId"))?;
        let key = vault.open_consumer_key(issuer, &consumer, wrapped)?;
        vault
            .seal_billing(&key, issuer, &consumer, address)
            .map(Some)
    }

    /// Whether the card and its consumer can be enrolled.
    pub fn active(&self) -> bool {
        self.card_state == CardState::Active && self.consumer_state == ConsumerState::Active
    }
}

/// The SQL that finds an enrolment's card (the live one, else the last deleted one, as Get
/// card reads it) and its consumer; `$1` issuer, `$2` cardId.
pub(crate) const ENROL_TARGET: &str = "SELECT k.state, c.id, c.consumer_id, c.state, c.wrapped_key
     FROM cards k JOIN consumers c ON c.id = k.consumer_ref
     WHERE k.issuer_id = $1 AND k.card_id = $2
     ORDER BY k.state = 'DELETED', k.id DESC LIMIT 1";

/// The SQL that finds a card's PENDING or SUCCESSFUL enrolment; `$1` consumer, `$2` cardId.
pub(crate) const EXISTING_ENROLMENT: &str = "SELECT CAST(operation_id AS TEXT) FROM operations
     WHERE consumer_ref = $1 AND operation = 'CLICK_TO_PAY_ENROLMENT' AND card_id = $2
       AND status IN ('PENDING', 'SUCCESSFUL')
     ORDER BY id DESC LIMIT 1";

/// The SQL that queues a directory sync for a consumer once enrolled; `$1` issuer, `$2`
/// consumer, `$3` now.
pub(crate) const QUEUE_SYNC: &str =
    "INSERT INTO c2p_jobs (kind, issuer_id, consumer_ref, created_at)
     SELECT 'SYNC', $1, $2, $3 WHERE EXISTS (
        SELECT 1 FROM operations WHERE consumer_ref = $2
          AND operation = 'CLICK_TO_PAY_ENROLMENT' AND status IN ('PENDING', 'SUCCESSFUL'))";

/// The SQL that picks due notifications, oldest first, none while an older one of the same
/// card waits; `$1` now, `$2` limit.
pub(crate) const DUE_NOTIFICATIONS: &str = "SELECT n.id FROM notifications n
     WHERE n.state = 'PENDING' AND n.next_attempt_at <= $1 AND n.lease_until <= $1
       AND NOT EXISTS (SELECT 1 FROM notifications p
                       WHERE p.issuer_id = n.issuer_id AND p.card_id = n.card_id
                         AND p.state = 'PENDING' AND p.id < n.id)
     ORDER BY n.id LIMIT $2";
