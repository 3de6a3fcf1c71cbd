//! [`HttpIssuerClient`]: the issuer API over HTTP, with its timeouts, retries, circuit breaker,
//! single-flight and cache.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use d1_domain::PersonalInformation;
use futures_util::FutureExt;
use rand::Rng;
use secrecy::ExposeSecret;

use crate::breaker::{Breakers, Permit};
use crate::flight::{Flights, Source};
use crate::token::Tokens;
use crate::{
    Backend, ClientOptions, ConsumerRef, FetchError, Fetched, IssuerApi, NotifyError, PiParser,
    Unavailable,
};

/// The most a Get Consumer Information body may weigh.
const MAX_BODY: usize = 64 * 1024;

/// How many cached PI entries are kept at most, across issuers.
const CACHE_CAPACITY: u64 = 100_000;

/// The issuer API over HTTP. Cheap to clone; build one per process.
#[derive(Clone)]
pub struct HttpIssuerClient(Arc<Inner>);

struct Inner {
    http: reqwest::Client,
    options: ClientOptions,
    breakers: Breakers,
    /// Get Consumer Information calls by (issuer, consumer, card), and the fetched PI.
    flights: Flights<(String, String, Option<String>), PersonalInformation>,
    tokens: Tokens,
    parse: PiParser,
}

/// One attempt's failure: worth another attempt, or final.
enum Failure {
    Retry(FetchError),
    Final(FetchError),
    /// The issuer refused our token: fetch a new one and try once more.
    Unauthorized,
}

impl From<FetchError> for Failure {
    fn from(e: FetchError) -> Self {
        if e.is_transient() {
            Self::Retry(e)
        } else {
            Self::Final(e)
        }
    }
}

/// The identifiers of one fetch, owned so the shared call can outlive its first caller.
#[derive(Clone)]
struct Ask {
    consumer_id: String,
    card_id: Option<String>,
    correlation_id: Option<String>,
}

impl HttpIssuerClient {
    /// Builds the client; `parse` checks a Get Consumer Information body with the PI rules.
    ///
    /// # Errors
    /// If the HTTP client cannot be built (no TLS backend).
    pub fn new(options: ClientOptions, parse: PiParser) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .timeout(options.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self(Arc::new(Inner {
            breakers: Breakers::new(options.breaker_failures, options.breaker_open_for),
            flights: Flights::new(CACHE_CAPACITY),
            tokens: Tokens::default(),
            http,
            options,
            parse,
        })))
    }

    /// Whether the circuit of `issuer` is open now.
    #[must_use]
    pub fn circuit_open(&self, issuer: &str) -> bool {
        self.0.breakers.is_open(issuer)
    }
}

fn send_error(e: &reqwest::Error) -> FetchError {
    if e.is_timeout() {
        FetchError::Timeout
    } else if e.is_connect() {
        FetchError::Unavailable(Unavailable::Unreachable)
    } else {
        FetchError::Unavailable(Unavailable::RequestFailed)
    }
}

impl Inner {
    async fn fetch(&self, backend: &Backend, ask: &Ask) -> Result<PersonalInformation, FetchError> {
        if self.breakers.permit(&backend.issuer_id) == Permit::Refused {
            return Err(FetchError::Unavailable(Unavailable::CircuitOpen));
        }
        let mut retries = 0;
        let mut renewed_token = false;
        loop {
            let failure = match self.attempt(backend, ask).await {
                Ok(pi) => {
                    self.breakers.succeeded(&backend.issuer_id);
                    return Ok(pi);
                }
                Err(failure) => failure,
            };
            match failure {
                Failure::Unauthorized if !renewed_token => {
                    renewed_token = true;
                    self.tokens.forget(backend);
                }
                Failure::Retry(_) if retries < self.options.retries => {
                    retries += 1;
                    tokio::time::sleep(self.pause(retries)).await;
                }
                Failure::Final(e) => {
                    // The backend answered as it meant to: it is up.
                    if !matches!(e, FetchError::Unavailable(_) | FetchError::Timeout) {
                        self.breakers.succeeded(&backend.issuer_id);
                    } else {
                        self.breakers.failed(&backend.issuer_id);
                    }
                    return Err(e);
                }
                Failure::Retry(e) => {
                    self.breakers.failed(&backend.issuer_id);
                    return Err(e);
                }
                Failure::Unauthorized => {
                    self.breakers.failed(&backend.issuer_id);
                    return Err(FetchError::Unavailable(Unavailable::TokenRefusedByBackend));
                }
            }
        }
    }

    /// The pause before retry `n` (1-based): full jitter over a doubling ceiling.
    fn pause(&self, n: u32) -> Duration {
        let ceiling = self.options.backoff.saturating_mul(1 << n.min(6));
        let ceiling_ms = u64::try_from(ceiling.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        Duration::from_millis(rand::thread_rng().gen_range(0..=ceiling_ms))
    }

    async fn attempt(&self, backend: &Backend, ask: &Ask) -> Result<PersonalInformation, Failure> {
        let token = self
            .tokens
            .bearer(&self.http, backend)
            .await
            .map_err(Failure::from)?;
        let mut url = format!(
            "{}/banking/d1/v1/issuers/{}/consumers/{}",
            backend.url, backend.issuer_id, ask.consumer_id
        );
        if let Some(card) = &ask.card_id {
            url.push_str("?cardId=");
            url.push_str(card);
        }
        let mut request = self.http.get(url).header("accept", "application/json");
        if let Some(token) = &token {
            request = request.bearer_auth(token.expose_secret());
        }
        if let Some(correlation) = &ask.correlation_id {
            request = request.header("x-correlation-id", correlation);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Failure::from(send_error(&e)))?;
        let status = response.status().as_u16();
        match status {
            200 => {}
            401 => return Err(Failure::Unauthorized),
            403 => return Err(Failure::Final(FetchError::InvalidState)),
            404 => return Err(Failure::Final(FetchError::NotFound)),
            429 | 500..=599 => {
                return Err(Failure::from(FetchError::Unavailable(
                    Unavailable::ErrorStatus,
                )))
            }
            _ => {
                return Err(Failure::from(FetchError::Unavailable(
                    Unavailable::UnexpectedStatus,
                )))
            }
        }
        let body = read_bounded(response).await?;
        (self.parse)(&body).ok_or(Failure::Final(FetchError::InvalidResponse))
    }
}

/// The body, read chunk by chunk so that an endless one is cut at [`MAX_BODY`].
async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, Failure> {
    let too_large = Failure::Final(FetchError::InvalidResponse);
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY as u64)
    {
        return Err(too_large);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| Failure::from(send_error(&e)))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(too_large);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[async_trait]
impl IssuerApi for HttpIssuerClient {
    async fn consumer_info(
        &self,
        backend: &Backend,
        consumer: ConsumerRef<'_>,
    ) -> Result<Fetched, FetchError> {
        let ask = Ask {
            consumer_id: consumer.consumer_id.to_owned(),
            card_id: consumer
                .card_id
                .filter(|_| backend.send_card_id)
                .map(str::to_owned),
            correlation_id: consumer.correlation_id.map(str::to_owned),
        };
        let key = (
            backend.issuer_id.clone(),
            ask.consumer_id.clone(),
            ask.card_id.clone(),
        );
        let (inner, owned) = (Arc::clone(&self.0), backend.clone());
        let ttl = backend.cache_ttl;
        // A zero TTL also stops serving what an earlier, longer TTL kept.
        let (pi, source) = self
            .0
            .flights
            .run(key, !ttl.is_zero(), move || {
                async move { inner.fetch(&owned, &ask).await.map(|pi| (pi, ttl)) }.boxed()
            })
            .await?;
        Ok(Fetched {
            pi,
            cached: source == Source::Cache,
        })
    }

    async fn notify(
        &self,
        backend: &Backend,
        body: String,
        correlation_id: &str,
    ) -> Result<(), NotifyError> {
        let inner = &self.0;
        let token = inner
            .tokens
            .bearer(&inner.http, backend)
            .await
            .map_err(|e| NotifyError(e.to_string()))?;
        let mut request = inner
            .http
            .post(format!(
                "{}/notifications/d1/v2/issuers/{}/cards",
                backend.url, backend.issuer_id
            ))
            .header("content-type", "application/json")
            .header("x-correlation-id", correlation_id)
            .body(body);
        if let Some(token) = &token {
            request = request.bearer_auth(token.expose_secret());
        }
        let response = request
            .send()
            .await
            .map_err(|e| NotifyError(send_error(&e).to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        if status.as_u16() == 401 {
            inner.tokens.forget(backend);
        }
        Err(NotifyError(format!(
            "the issuer backend answered {}",
            status.as_u16()
        )))
    }
}
