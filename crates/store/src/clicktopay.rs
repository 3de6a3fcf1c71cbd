//! What the store takes and gives back for Click to Pay: the issuer backend's settings, the
//! durable enrolment and directory jobs, the simulated directory's rows and the notifications
//! outbox.

use d1_domain::card::CardId;
use d1_domain::{
    Address, CardholderName, ConsumerId, ConsumerState, DeleteReason, IssuerId, OperationStatus,
    PersonalInformation, PiSource,
};
use serde::{Deserialize, Serialize};

use crate::{CardState, TrailContext};

/// Where an issuer's backend is and how we authenticate to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendRecord {
    pub issuer_id: IssuerId,
    /// The base URL; paths of the D1 outbound API are appended to it.
    pub url: String,
    /// OAuth client id; `None` when the backend takes no token.
    pub client_id: Option<String>,
    /// The client secret sealed under the KEK ([`crate::Vault::seal_backend_secret`]).
    pub sealed_secret: Option<Vec<u8>>,
    /// Whether Get Consumer Information carries `?cardId=`.
    pub send_card_id: bool,
    /// How long fetched PI may be cached in memory; 0 is off.
    pub pi_cache_ttl_s: u32,
    /// Which card operations are notified to it.
    pub card_notifications: CardNotifications,
    /// The most items one notification call carries, 1 to 100.
    pub notification_batch_size: u32,
}

/// Which card operations an issuer's backend is notified of (contract section 9a).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CardNotifications {
    /// Every card operation.
    #[default]
    All,
    /// Only Click to Pay enrolments, as before revision 2.
    ClickToPay,
    /// None.
    Off,
}

impl CardNotifications {
    /// The setting as written in the database and on the command line.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::ClickToPay => "click-to-pay",
            Self::Off => "off",
        }
    }

    /// Parses `all`, `click-to-pay` or `off`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Self::All, Self::ClickToPay, Self::Off]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

/// The batch size a backend gets unless it is set: one item per call.
pub const DEFAULT_NOTIFICATION_BATCH_SIZE: u32 = 1;

/// The largest batch size a backend may be set to.
pub const MAX_NOTIFICATION_BATCH_SIZE: u32 = 100;

/// Click to Pay enrolment of a card, as accepted.
#[derive(Debug, Clone)]
pub struct StartEnrolment {
    pub issuer_id: IssuerId,
    pub card_id: CardId,
    /// The enrolment body's billing address, if any.
    pub billing: Option<Address>,
    /// The enrolment body's cardholder name, which wins over the card's and the consumer's.
    pub cardholder_name: Option<CardholderName>,
    /// The enrolment body's `reason` and `reasonCode`, for the trail.
    pub reason: DeleteReason,
    pub trail: TrailContext,
    /// The correlation id the request answered with (sent or generated), passed on to the
    /// issuer backend.
    pub correlation_id: String,
}

/// What accepting an enrolment did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrolmentStart {
    /// A new PENDING operation and its job.
    Started(String),
    /// The card has a PENDING or SUCCESSFUL enrolment already: its operation id and status.
    Existing(String, OperationStatus),
    /// No card, live or deleted, has this id.
    CardNotFound,
    /// The card (or its consumer) is not ACTIVE: INACTIVE, or DELETED.
    NotActive,
}

/// What an enrolment's body gives the directory beyond the stored data. It is personal data,
/// sealed under the consumer's data key in the job's row until the job ends.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnrolmentDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cardholder_name: Option<String>,
}

impl std::fmt::Debug for EnrolmentDetails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnrolmentDetails(<redacted>)")
    }
}

impl EnrolmentDetails {
    /// Whether the body gave nothing to seal.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.billing_address.is_none() && self.cardholder_name.is_none()
    }
}

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// Enrol a card in the directory, creating the consumer's profile the first time.
    Enrol,
    /// Push the consumer's changed PI to the directory, or remove its profile once DELETED.
    Sync,
}

impl JobKind {
    /// The database form.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enrol => "ENROL",
            Self::Sync => "SYNC",
        }
    }

    /// Parses the database form.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Enrol, Self::Sync]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A card's secret data, opened for the directory.
#[derive(Clone)]
pub struct CardSecret {
    pub pan: String,
    /// `MMYY`.
    pub expiry: String,
    /// The created card's `cardholderName`, if it has one.
    pub cardholder_name: Option<String>,
}

impl std::fmt::Debug for CardSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardSecret(<redacted>)")
    }
}

/// A job leased to this node, with what it needs opened under the consumer's data key.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: i64,
    pub kind: JobKind,
    pub issuer_id: IssuerId,
    pub consumer_id: ConsumerId,
    /// The enrolment's operation id (ENROL).
    pub operation_id: Option<String>,
    pub card_id: Option<String>,
    pub correlation_id: Option<String>,
    /// How many times the job was claimed, this time included.
    pub attempts: u32,
    /// When the enrolment was accepted (ENROL).
    pub started_at: i64,
    pub consumer_state: ConsumerState,
    pub pi_source: PiSource,
    /// The stored PI, for an ACTIVE consumer that stores it.
    pub stored_pi: Option<PersonalInformation>,
    /// The card's state, and its secret data while it is live (ENROL).
    pub card_state: Option<CardState>,
    pub card: Option<CardSecret>,
    /// The enrolment body's billing address (ENROL).
    pub billing: Option<Address>,
    /// The enrolment body's cardholder name (ENROL).
    pub cardholder_name: Option<String>,
    /// The consumer's sealed data did not open (tampered with, or sealed under another key):
    /// nothing above was opened.
    pub unreadable: bool,
}

/// How a job ended.
#[derive(Debug, Clone)]
pub enum JobOutcome {
    /// The enrolment succeeded.
    Enrolled,
    /// The enrolment failed; the reason code.
    Failed(String),
    /// A sync job is done.
    Synced,
}

/// A fetch of PI from the issuer backend made for a job, for the trail.
#[derive(Debug, Clone)]
pub struct PiFetchRecord {
    pub started_at: i64,
    /// `None` when it succeeded; else the reason code.
    pub failure: Option<String>,
}

/// The end of a job, written in one transaction: the trail, the notification of an
/// enrolment (section 9a, when the issuer's backend takes it), the job's row.
#[derive(Debug, Clone)]
pub struct FinishJob {
    pub id: i64,
    pub outcome: JobOutcome,
    pub pi_fetch: Option<PiFetchRecord>,
}

/// A queued notification item, leased to this node by a claim.
#[derive(Debug, Clone)]
pub struct NotificationRecord {
    pub id: i64,
    pub issuer_id: IssuerId,
    pub card_id: String,
    pub operation_id: String,
    /// The item's JSON object, as it goes into the `{"operations": [...]}` envelope.
    pub item: String,
    /// The correlation id of the request that caused the operation, if it had one.
    pub correlation_id: Option<String>,
    /// Failed attempts so far.
    pub attempts: u32,
    pub created_at: i64,
}

/// The items one claim leased, oldest first, never two of one card.
#[derive(Debug, Clone, Default)]
pub struct NotificationClaim {
    /// What the claim marked its rows with; settling names it.
    pub tag: i64,
    pub items: Vec<NotificationRecord>,
}

/// How the delivery of a claim's items ended: every item not named in `undelivered` was
/// delivered.
#[derive(Debug, Clone, Default)]
pub struct NotificationSettlement {
    pub tag: i64,
    /// The lowest and highest id of the claim's items.
    pub ids: (i64, i64),
    pub undelivered: Vec<(i64, Delivery)>,
}

impl NotificationClaim {
    /// The settlement of this claim with every item delivered, to which failures are added.
    #[must_use]
    pub fn settlement(&self) -> NotificationSettlement {
        let first = self.items.iter().map(|n| n.id).min().unwrap_or(0);
        let last = self.items.iter().map(|n| n.id).max().unwrap_or(0);
        NotificationSettlement {
            tag: self.tag,
            ids: (first, last),
            undelivered: Vec::new(),
        }
    }
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, Copy)]
pub enum Delivery {
    /// The issuer answered 2xx: the notification is gone.
    Delivered,
    /// Try again at this time (ms).
    Retry(i64),
    /// Given up: kept as DEAD, and the operation's trail entry says so.
    Dead,
}

/// Data sealed under its own data key, with that key wrapped by the KEK.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub wrapped_key: Vec<u8>,
    pub sealed: Vec<u8>,
}

/// A profile of the simulated directory, and a card to add to it.
#[derive(Debug, Clone)]
pub struct DirectoryWrite {
    pub issuer_id: IssuerId,
    pub consumer_id: ConsumerId,
    pub profile: Sealed,
    pub card: Option<(String, Sealed)>,
}

/// A profile of the simulated directory as stored.
#[derive(Debug, Clone)]
pub struct DirectoryRecord {
    pub profile: Sealed,
    /// The enrolled cards' ids, in the order they were added.
    pub card_ids: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}
