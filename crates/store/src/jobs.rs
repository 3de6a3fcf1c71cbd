//! Click to Pay rows as both backends read them, and what is opened from them, so that SQLite
//! and PostgreSQL hand the worker the same thing.

use d1_domain::{ConsumerId, ConsumerState, IssuerId, PiSource};

use crate::db::{known, Row};
use crate::{CardState, ClaimedJob, EnrolmentDetails, JobKind, StoreError, StoreResult, Vault};

/// A job with its consumer's row and its card's, still sealed.
pub(crate) struct JobRow {
    pub id: i64,
    pub kind: JobKind,
    pub issuer_id: IssuerId,
    pub consumer_id: ConsumerId,
    pub operation_id: Option<String>,
    pub card_id: Option<String>,
    /// The sealed [`EnrolmentDetails`] (the column is named for what it first held).
    pub billing: Option<Vec<u8>>,
    pub correlation_id: Option<String>,
    pub attempts: i64,
    pub created_at: i64,
    pub consumer_state: ConsumerState,
    pub pi_source: PiSource,
    pub wrapped_key: Option<Vec<u8>>,
    pub pi: Option<Vec<u8>>,
    pub card_state: Option<CardState>,
    pub card_sealed: Option<Vec<u8>>,
}

impl JobRow {
    /// Decodes a row of `sql::clicktopay::JOB`.
    ///
    /// # Errors
    /// `Corrupt` for a value that is not what it should be.
    pub fn decode(mut r: Row) -> StoreResult<Self> {
        Ok(Self {
            id: r.int(0)?,
            kind: r.parsed(1, |s| known(JobKind::parse(s)))?,
            issuer_id: r.parsed(2, IssuerId::parse)?,
            consumer_id: r.parsed(3, |s| ConsumerId::parse(s).map(|(c, _)| c))?,
            operation_id: r.opt_text(4)?,
            card_id: r.opt_text(5)?,
            billing: r.opt_blob(6)?,
            correlation_id: r.opt_text(7)?,
            attempts: r.int(8)?,
            created_at: r.int(9)?,
            consumer_state: r.parsed(10, |s| known(ConsumerState::parse(s)))?,
            pi_source: r.parsed(11, |s| known(PiSource::parse(s)))?,
            wrapped_key: r.opt_blob(12)?,
            pi: r.opt_blob(13)?,
            card_state: r.opt_parsed(14, |s| known(CardState::parse(s)))?,
            card_sealed: r.opt_blob(15)?,
        })
    }
}

impl JobRow {
    /// Opens what the worker needs: the stored PI, the live card, the billing address. A
    /// DELETED consumer has nothing left to open. Sealed data that does not open marks the job
    /// `unreadable` instead of failing the claim, so that one bad row cannot hold back the
    /// queue.
    ///
    /// # Errors
    /// Never: sealed data that does not open marks the job instead.
    pub fn open(self, vault: &Vault) -> StoreResult<ClaimedJob> {
        let state = self.consumer_state;
        let mut job = ClaimedJob {
            id: self.id,
            kind: self.kind,
            issuer_id: self.issuer_id.clone(),
            consumer_id: self.consumer_id.clone(),
            operation_id: self.operation_id.clone(),
            card_id: self.card_id.clone(),
            correlation_id: self.correlation_id.clone(),
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            started_at: self.created_at,
            consumer_state: state,
            pi_source: self.pi_source,
            stored_pi: None,
            card_state: self.card_state,
            card: None,
            billing: None,
            cardholder_name: None,
            unreadable: false,
        };
        if state == ConsumerState::Active && self.open_secrets(vault, &mut job).is_err() {
            job.stored_pi = None;
            job.card = None;
            job.billing = None;
            job.cardholder_name = None;
            job.unreadable = true;
        }
        Ok(job)
    }

    fn open_secrets(&self, vault: &Vault, job: &mut ClaimedJob) -> StoreResult<()> {
        let Some(wrapped) = &self.wrapped_key else {
            return Err(StoreError::Other(anyhow::anyhow!(
                "an active consumer without a data key"
            )));
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
            let details = vault.open_enrolment(&key, &job.issuer_id, &job.consumer_id, sealed)?;
            job.billing = details.billing_address;
            job.cardholder_name = details.cardholder_name;
        }
        Ok(())
    }
}

/// The card an enrolment names, and its consumer.
pub(crate) struct EnrolTarget {
    pub card_state: CardState,
    pub consumer_ref: i64,
    pub consumer_id: ConsumerId,
    pub consumer_state: ConsumerState,
    pub wrapped_key: Option<Vec<u8>>,
}

impl EnrolTarget {
    /// What the enrolment's body gave, sealed under the consumer's data key; `None` when it
    /// gave nothing.
    ///
    /// # Errors
    /// If the key does not open.
    pub fn seal_details(
        &self,
        vault: &Vault,
        issuer: &IssuerId,
        details: &EnrolmentDetails,
    ) -> StoreResult<Option<Vec<u8>>> {
        let Some(wrapped) = self.wrapped_key.as_ref().filter(|_| !details.is_empty()) else {
            return Ok(None);
        };
        let key = vault.open_consumer_key(issuer, &self.consumer_id, wrapped)?;
        vault
            .seal_enrolment(&key, issuer, &self.consumer_id, details)
            .map(Some)
    }

    /// Whether the card and its consumer can be enrolled.
    pub fn active(&self) -> bool {
        self.card_state == CardState::Active && self.consumer_state == ConsumerState::Active
    }
}
