//! What the store takes and gives back: commands for each use case and the records read.

use d1_domain::{
    ConsumerId, ConsumerState, CorrelationId, DeleteReason, IssuerId, LookalikePolicy,
    OperationKind, OperationStatus, PersonalInformation, PiSource, UserId,
};

/// Whether an issuer lets us store PI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PiStorage {
    Allowed,
    Forbidden,
}

impl PiStorage {
    /// The setting as written in the database and on the command line.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Forbidden => "forbidden",
        }
    }

    /// Parses `allowed` or `forbidden`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "allowed" => Some(Self::Allowed),
            "forbidden" => Some(Self::Forbidden),
            _ => None,
        }
    }
}

/// An onboarded issuer's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerRecord {
    pub issuer_id: IssuerId,
    pub pi_storage: PiStorage,
    pub click_to_pay: bool,
    pub lookalike_policy: LookalikePolicy,
    /// Whether an assertion without `jti` is refused.
    pub require_jti: bool,
    pub created_at: i64,
    /// The kids of its assertion keys.
    pub kids: Vec<String>,
    /// The client certificates it is bound to.
    pub client_certs: CertBindings,
}

/// The client certificate identities an issuer is bound to (contract section 4): its token
/// requests and API calls must come over a certificate matching one. Empty: any certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertBindings {
    /// Subject DNs, RFC 4514 form (`CN=bank-a-client,O=Bank A`).
    pub subjects: Vec<String>,
    /// Subject alternative names: DNS names or URIs, as written.
    pub sans: Vec<String>,
}

impl CertBindings {
    /// Whether the issuer is bound to no certificate.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.subjects.is_empty() && self.sans.is_empty()
    }
}

/// One assertion key: its kid, its owner and the public JWK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionKeyRecord {
    pub kid: String,
    /// The owner: an issuer, or an aggregator (whose id follows the same rule).
    pub issuer_id: IssuerId,
    pub public_jwk: String,
    /// For an aggregator's key, the issuers it signs for; `None` for an issuer's own key.
    pub aggregated: Option<Vec<IssuerId>>,
    /// Whether the owner refuses an assertion without `jti`.
    pub require_jti: bool,
}

/// A new aggregator (contract section 4) with its assertion key and the issuers it signs for.
#[derive(Debug, Clone)]
pub struct NewAggregator {
    pub aggregator_id: IssuerId,
    pub kid: String,
    pub public_jwk: String,
    pub issuers: Vec<IssuerId>,
    pub require_jti: bool,
}

/// An onboarded aggregator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregatorRecord {
    pub aggregator_id: IssuerId,
    pub require_jti: bool,
    pub created_at: i64,
    /// The kids of its assertion keys.
    pub kids: Vec<String>,
    /// The issuers it signs for, by id.
    pub issuers: Vec<IssuerId>,
}

/// A new issuer with its first assertion key.
#[derive(Debug, Clone)]
pub struct NewIssuer {
    pub issuer_id: IssuerId,
    pub pi_storage: PiStorage,
    pub click_to_pay: bool,
    pub lookalike_policy: LookalikePolicy,
    pub kid: String,
    pub public_jwk: String,
    pub client_certs: CertBindings,
    /// Whether an assertion without `jti` is refused.
    pub require_jti: bool,
}

/// Changes to an existing issuer; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default)]
pub struct IssuerChange {
    pub pi_storage: Option<PiStorage>,
    pub click_to_pay: Option<bool>,
    pub lookalike_policy: Option<LookalikePolicy>,
    pub require_jti: Option<bool>,
    pub add_key: Option<(String, String)>,
    pub remove_kid: Option<String>,
    /// Replaces every client certificate binding (an empty set unbinds).
    pub client_certs: Option<CertBindings>,
}

/// What a service key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPurpose {
    /// ES256, signs access tokens.
    Signing,
    /// P-256 ECDH-ES, decrypts the JWEs issuers send.
    Encryption,
}

impl KeyPurpose {
    /// The purpose as stored.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signing => "sig",
            Self::Encryption => "enc",
        }
    }
}

/// A service key pair, private half wrapped under the KEK (context: its kid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceKeyRecord {
    pub kid: String,
    pub purpose: KeyPurpose,
    pub wrapped: Vec<u8>,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

/// Request context recorded in the operations trail.
#[derive(Debug, Clone, Default)]
pub struct TrailContext {
    pub correlation_id: Option<CorrelationId>,
    pub user_id: Option<UserId>,
    /// The aggregator whose token made the request, if one did.
    pub aggregator_id: Option<IssuerId>,
}

/// Register consumer (explicit). `pi: None` registers without PI.
#[derive(Debug, Clone)]
pub struct RegisterConsumer {
    pub issuer_id: IssuerId,
    pub consumer_id: ConsumerId,
    pub pi: Option<PersonalInformation>,
    pub trail: TrailContext,
}

/// What a registration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterOutcome {
    /// A new consumer, or a deleted consumerId started afresh.
    Created,
    /// An active consumer whose PI was replaced.
    Updated,
    /// Nothing to change: an identical retry.
    Unchanged,
}

/// Update consumer: replace the stored PI whole.
#[derive(Debug, Clone)]
pub struct UpdateConsumer {
    pub issuer_id: IssuerId,
    pub consumer_id: ConsumerId,
    pub pi: PersonalInformation,
    pub trail: TrailContext,
}

/// What an update or delete found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// Applied.
    Applied,
    /// Nothing to change: an identical retry, or a delete of a deleted consumer.
    Unchanged,
    /// No such consumer.
    NotFound,
    /// The consumer is DELETED.
    Deleted,
}

/// Delete consumer: logical delete with crypto-shredding.
#[derive(Debug, Clone)]
pub struct DeleteConsumer {
    pub issuer_id: IssuerId,
    pub consumer_id: ConsumerId,
    pub reason: DeleteReason,
    pub trail: TrailContext,
}

/// A consumer as read back. `pi` is present only for an ACTIVE consumer with stored PI.
#[derive(Debug, Clone)]
pub struct ConsumerView {
    pub consumer_id: ConsumerId,
    pub state: ConsumerState,
    pub pi_source: PiSource,
    pub pi: Option<PersonalInformation>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One entry of the operations trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationRecord {
    pub operation_id: String,
    pub operation: OperationKind,
    pub status: OperationStatus,
    pub start_time: i64,
    pub end_time: Option<i64>,
    pub card_id: Option<String>,
    pub reason: Option<String>,
    pub reason_code: Option<String>,
    pub correlation_id: Option<String>,
    pub user_id: Option<String>,
    /// The aggregator the write was made through.
    pub aggregator_id: Option<String>,
}

/// A page of the trail, newest first; `next` is the cursor for the following page.
#[derive(Debug, Clone)]
pub struct OperationsPage {
    pub operations: Vec<OperationRecord>,
    pub next: Option<i64>,
}
