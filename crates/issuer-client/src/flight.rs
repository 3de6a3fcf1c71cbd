//! One call in flight per (issuer, consumer, card): concurrent requests for the same PI share
//! the first one's call and its answer. And the optional cache of fetched PI, in memory only,
//! each entry living its issuer's TTL.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use d1_domain::PersonalInformation;
use futures_util::future::{BoxFuture, FutureExt, Shared};

use crate::FetchError;

/// What one call is about: issuer, consumer, and the card when it is sent.
pub(crate) type Key = (String, String, Option<String>);

type Call = Shared<BoxFuture<'static, Result<PersonalInformation, FetchError>>>;

struct Ttl;

impl moka::Expiry<Key, (PersonalInformation, Duration)> for Ttl {
    fn expire_after_create(
        &self,
        _key: &Key,
        value: &(PersonalInformation, Duration),
        _now: Instant,
    ) -> Option<Duration> {
        Some(value.1)
    }
}

/// Calls in flight, and the cache.
pub(crate) struct Flights {
    in_flight: Mutex<HashMap<Key, Call>>,
    cache: moka::sync::Cache<Key, (PersonalInformation, Duration)>,
}

impl Flights {
    pub(crate) fn new(cache_capacity: u64) -> Self {
        Self {
            in_flight: Mutex::new(HashMap::new()),
            cache: moka::sync::Cache::builder()
                .max_capacity(cache_capacity)
                .expire_after(Ttl)
                .build(),
        }
    }

    /// The cached PI for `key`, if any.
    pub(crate) fn cached(&self, key: &Key) -> Option<PersonalInformation> {
        self.cache.get(key).map(|(pi, _)| pi)
    }

    /// Joins the call in flight for `key`, or starts one with `call`. A successful answer is
    /// cached for `ttl` when it is not zero.
    pub(crate) async fn run(
        &self,
        key: Key,
        ttl: Duration,
        call: impl FnOnce() -> BoxFuture<'static, Result<PersonalInformation, FetchError>>,
    ) -> Result<PersonalInformation, FetchError> {
        let shared = {
            let mut in_flight = self
                .in_flight
                .lock()
                .map_err(|_| FetchError::Unavailable("client state poisoned"))?;
            in_flight
                .entry(key.clone())
                .or_insert_with(|| call().shared())
                .clone()
        };
        let result = shared.clone().await;
        // The first caller back retires the call, so that the next request calls again (or
        // reads the cache).
        let retired = self.in_flight.lock().is_ok_and(|mut in_flight| {
            let same = in_flight.get(&key).is_some_and(|c| c.ptr_eq(&shared));
            if same {
                in_flight.remove(&key);
            }
            same
        });
        if let (true, Ok(pi), false) = (retired, &result, ttl.is_zero()) {
            self.cache.insert(key, (pi.clone(), ttl));
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    fn pi() -> PersonalInformation {
        PersonalInformation::parse(d1_domain::PersonalInformationInput {
            first_name: Some("Ada".into()),
            ..Default::default()
        })
        .expect("valid")
    }

    #[tokio::test]
    async fn concurrent_requests_for_one_key_make_one_call() {
        let flights = Arc::new(Flights::new(100));
        let calls = Arc::new(AtomicU32::new(0));
        let key: Key = ("i".into(), "c".into(), None);
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (flights, calls, key) = (Arc::clone(&flights), Arc::clone(&calls), key.clone());
                tokio::spawn(async move {
                    flights
                        .run(key, Duration::ZERO, move || {
                            async move {
                                calls.fetch_add(1, Ordering::SeqCst);
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                Ok(pi())
                            }
                            .boxed()
                        })
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert!(t.await.expect("joined").is_ok());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(flights.cached(&key).is_none(), "a zero TTL caches nothing");
    }

    #[tokio::test]
    async fn a_ttl_caches_the_answer_and_a_later_request_calls_again_without_one() {
        let flights = Flights::new(100);
        let key: Key = ("i".into(), "c".into(), Some("card".into()));
        let ok = || async { Ok(pi()) }.boxed();
        flights
            .run(key.clone(), Duration::from_secs(60), ok)
            .await
            .unwrap();
        assert!(flights.cached(&key).is_some());
        let failing = || async { Err(FetchError::NotFound) }.boxed();
        let other: Key = ("i".into(), "d".into(), None);
        assert_eq!(
            flights
                .run(other.clone(), Duration::from_secs(60), failing)
                .await
                .unwrap_err(),
            FetchError::NotFound
        );
        assert!(flights.cached(&other).is_none(), "failures are not cached");
    }
}
