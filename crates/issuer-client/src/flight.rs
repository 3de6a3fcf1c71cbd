//! Single-flight with a cache: concurrent requests for the same key share the first one's
//! call and its answer, and a successful answer may be kept for a lifetime the call itself
//! gives. Used for fetched PI (per issuer, consumer and card) and for issuer tokens (per
//! issuer and client id). No lock is held while a call runs: the map of calls in flight is
//! locked only to join, start or retire one.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, FutureExt, Shared};

use crate::{FetchError, Unavailable};

/// What a call answers: the value, and how long it may be served from the cache (zero: not
/// at all).
pub(crate) type Kept<V> = (V, Duration);

type Call<V> = Shared<BoxFuture<'static, Result<Kept<V>, FetchError>>>;

struct Lifetime;

impl<K, V> moka::Expiry<K, Kept<V>> for Lifetime {
    fn expire_after_create(&self, _key: &K, value: &Kept<V>, _now: Instant) -> Option<Duration> {
        Some(value.1)
    }
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// A call made for this request, or joined by it.
    Called,
    /// The cache.
    Cache,
}

/// Calls in flight, and the cache of their answers.
pub(crate) struct Flights<K, V> {
    in_flight: Mutex<HashMap<K, Call<V>>>,
    cache: moka::sync::Cache<K, Kept<V>>,
}

impl<K, V> Flights<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub(crate) fn new(cache_capacity: u64) -> Self {
        Self {
            in_flight: Mutex::new(HashMap::new()),
            cache: moka::sync::Cache::builder()
                .max_capacity(cache_capacity)
                .expire_after(Lifetime)
                .build(),
        }
    }

    /// Answers `key` from the cache when `use_cache`, else joins the call in flight for it, or
    /// starts one with `call`. The cache is read under the same lock that retires a call, so a
    /// request never starts a second call for an answer that is just being kept.
    pub(crate) async fn run(
        &self,
        key: K,
        use_cache: bool,
        call: impl FnOnce() -> BoxFuture<'static, Result<Kept<V>, FetchError>>,
    ) -> Result<(V, Source), FetchError> {
        let shared = {
            let mut in_flight = self.in_flight.lock().map_err(|_| poisoned())?;
            if use_cache {
                if let Some((value, _)) = self.cache.get(&key) {
                    return Ok((value, Source::Cache));
                }
            }
            in_flight
                .entry(key.clone())
                .or_insert_with(|| call().shared())
                .clone()
        };
        let result = shared.clone().await;
        // The first caller back retires the call, so that the next request calls again (or
        // reads the cache).
        if let Ok(mut in_flight) = self.in_flight.lock() {
            if in_flight.get(&key).is_some_and(|c| c.ptr_eq(&shared)) {
                in_flight.remove(&key);
                if let Ok(kept) = &result {
                    if !kept.1.is_zero() {
                        self.cache.insert(key, kept.clone());
                    }
                }
            }
        }
        result.map(|(value, _)| (value, Source::Called))
    }

    /// Drops the cached answer for `key`, if any.
    pub(crate) fn forget(&self, key: &K) {
        self.cache.invalidate(key);
    }
}

fn poisoned() -> FetchError {
    FetchError::Unavailable(Unavailable::ClientState)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    type Key = (String, String);

    #[tokio::test]
    async fn concurrent_requests_for_one_key_make_one_call() {
        let flights = Arc::new(Flights::<Key, u32>::new(100));
        let calls = Arc::new(AtomicU32::new(0));
        let key: Key = ("i".into(), "c".into());
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (flights, calls, key) = (Arc::clone(&flights), Arc::clone(&calls), key.clone());
                tokio::spawn(async move {
                    flights
                        .run(key, true, move || {
                            async move {
                                calls.fetch_add(1, Ordering::SeqCst);
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                Ok((7, Duration::ZERO))
                            }
                            .boxed()
                        })
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.expect("joined").unwrap(), (7, Source::Called));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let again = flights
            .run(key, true, || async { Ok((8, Duration::ZERO)) }.boxed())
            .await;
        assert_eq!(
            again.unwrap(),
            (8, Source::Called),
            "a zero lifetime keeps nothing"
        );
    }

    #[tokio::test]
    async fn a_lifetime_caches_the_answer_until_forgotten_and_failures_are_not_cached() {
        let flights = Flights::<Key, u32>::new(100);
        let key: Key = ("i".into(), "c".into());
        let ok = || async { Ok((1, Duration::from_secs(60))) }.boxed();
        assert_eq!(
            flights.run(key.clone(), true, ok).await.unwrap().1,
            Source::Called
        );
        let other = || async { Ok((2, Duration::from_secs(60))) }.boxed();
        assert_eq!(
            flights.run(key.clone(), true, other).await.unwrap(),
            (1, Source::Cache)
        );
        assert_eq!(
            flights.run(key.clone(), false, other).await.unwrap(),
            (2, Source::Called),
            "a request that may not use the cache calls"
        );
        flights.forget(&key);
        let failing = || async { Err(FetchError::NotFound) }.boxed();
        assert_eq!(
            flights.run(key.clone(), true, failing).await.unwrap_err(),
            FetchError::NotFound
        );
        assert_eq!(
            flights.run(key, true, other).await.unwrap(),
            (2, Source::Called),
            "failures are not cached"
        );
    }
}
