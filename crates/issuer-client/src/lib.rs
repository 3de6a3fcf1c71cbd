//! The outbound side of d1-registry: the calls it makes to an issuer's backend.
//!
//! - Get Consumer Information (`GET …/banking/d1/v1/issuers/{issuerId}/consumers/{consumerId}`),
//!   for PI the registry does not store, validated with the same PI rules as inbound PI;
//! - the issuer's OAuth token (`POST …/oauth2/token`, client credentials), reused until
//!   shortly before it expires;
//! - card operation notifications (`POST …/notifications/d1/v2/issuers/{issuerId}/cards`).
//!
//! [`HttpIssuerClient`] adds timeouts, bounded jittered retries, a circuit breaker per issuer,
//! one call in flight per (issuer, consumer, card) and an optional in-memory cache. Nothing it
//! fetches is written anywhere, and no error it returns carries PI.

mod breaker;
mod flight;
mod http;
mod token;

use std::time::Duration;

use async_trait::async_trait;
use d1_domain::PersonalInformation;
use secrecy::SecretString;

pub use http::HttpIssuerClient;

/// How one issuer's backend is reached.
#[derive(Debug, Clone)]
pub struct Backend {
    pub issuer_id: String,
    /// Base URL, without a trailing slash.
    pub url: String,
    /// OAuth client credentials; `None` when the backend asks for no token.
    pub credentials: Option<(String, SecretString)>,
    /// Whether Get Consumer Information carries `?cardId=`.
    pub send_card_id: bool,
    /// How long fetched PI may be served from memory; zero is off.
    pub cache_ttl: Duration,
}

/// Why PI could not be fetched. The variants map one to one to the enrolment reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// No answer within the timeout, after the retries.
    #[error("the issuer backend did not answer in time")]
    Timeout,
    /// Unreachable, 5xx after the retries, an unexpected status, a refused token, or the
    /// circuit breaker is open.
    #[error("the issuer backend failed: {0}")]
    Unavailable(Unavailable),
    /// 404: the issuer does not know the consumer.
    #[error("the issuer backend does not know the consumer")]
    NotFound,
    /// 403: the consumer is not in a state that allows it at the issuer.
    #[error("the issuer backend refused: invalid state")]
    InvalidState,
    /// A 200 whose body breaks the PI rules or is not JSON.
    #[error("the issuer backend answered with invalid consumer information")]
    InvalidResponse,
}

impl FetchError {
    /// Whether another attempt may succeed: a timeout, an unreachable backend or token
    /// endpoint, a 5xx or 429. Retries are decided on this, never on an error's text.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Timeout => true,
            Self::Unavailable(why) => why.is_transient(),
            Self::NotFound | Self::InvalidState | Self::InvalidResponse => false,
        }
    }
}

/// What made the issuer backend unavailable. Its text is what the log line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    #[error("the issuer backend is unreachable")]
    Unreachable,
    #[error("the request to the issuer backend failed")]
    RequestFailed,
    /// 429 or 5xx.
    #[error("the issuer backend answered with an error")]
    ErrorStatus,
    #[error("the issuer backend answered with an unexpected status")]
    UnexpectedStatus,
    /// 401 even with a freshly fetched token.
    #[error("the issuer backend refused our token")]
    TokenRefusedByBackend,
    #[error("the circuit is open")]
    CircuitOpen,
    #[error("the token endpoint is unreachable")]
    TokenEndpointUnreachable,
    /// The token endpoint answered 5xx.
    #[error("the token endpoint failed")]
    TokenEndpointFailed,
    /// The token endpoint answered another non-2xx status.
    #[error("the token request was refused")]
    TokenRefused,
    #[error("the token reply is unreadable")]
    TokenReplyUnreadable,
    /// A lock of the client was poisoned by a panic.
    #[error("client state poisoned")]
    ClientState,
}

impl Unavailable {
    /// Whether another attempt may succeed.
    #[must_use]
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Self::Unreachable
                | Self::RequestFailed
                | Self::ErrorStatus
                | Self::TokenEndpointUnreachable
                | Self::TokenEndpointFailed
        )
    }
}

/// Why a notification was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("notification not delivered: {0}")]
pub struct NotifyError(pub String);

/// Checks a Get Consumer Information body with the registry's PI rules.
pub type PiParser = fn(&[u8]) -> Option<PersonalInformation>;

/// A consumer's PI as fetched.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub pi: PersonalInformation,
    /// Whether it came from the in-memory cache rather than a call.
    pub cached: bool,
}

/// What a request to the issuer is about, for headers and single-flight.
#[derive(Debug, Clone, Copy)]
pub struct ConsumerRef<'a> {
    pub consumer_id: &'a str,
    pub card_id: Option<&'a str>,
    pub correlation_id: Option<&'a str>,
}

/// The calls the registry makes to an issuer backend.
#[async_trait]
pub trait IssuerApi: Send + Sync + 'static {
    /// Get Consumer Information.
    async fn consumer_info(
        &self,
        backend: &Backend,
        consumer: ConsumerRef<'_>,
    ) -> Result<Fetched, FetchError>;

    /// Posts a card operation notification envelope with its `x-correlation-id`; `Ok` on a
    /// 2xx.
    async fn notify(
        &self,
        backend: &Backend,
        body: String,
        correlation_id: &str,
    ) -> Result<(), NotifyError>;
}

/// Timeouts, retries and the circuit breaker.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub connect_timeout: Duration,
    /// The whole call, one attempt.
    pub timeout: Duration,
    /// Retries after the first attempt, on 5xx, timeouts and connection failures.
    pub retries: u32,
    /// The first retry's pause; each next one doubles, with full jitter.
    pub backoff: Duration,
    /// Consecutive failures that open an issuer's circuit.
    pub breaker_failures: u32,
    /// How long an open circuit refuses calls before one probe may go through.
    pub breaker_open_for: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
            retries: 2,
            backoff: Duration::from_millis(200),
            breaker_failures: 5,
            breaker_open_for: Duration::from_secs(30),
        }
    }
}
