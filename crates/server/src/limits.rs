//! Rate limits (contract section 10): a token bucket per issuer on the API, and on the token
//! endpoint a bucket per client address and one per key owner (issuer or aggregator), so that
//! assertions cannot be tried at speed.
//!
//! The buckets live in this node's memory: with N nodes behind a balancer, an issuer gets at
//! most N times the configured rate (the README says so). A bucket unused for ten minutes is
//! forgotten, which only ever gives a client a full bucket, never less.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::sync::Cache;

use crate::config::LimitsConfig;

/// One kind of bucket, keyed by issuer or address.
struct Buckets {
    /// Tokens added per second.
    rate: f64,
    /// The most tokens a bucket holds.
    burst: f64,
    buckets: Cache<String, Arc<Mutex<Bucket>>>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Buckets {
    /// `None` when the rate is 0 (off).
    fn new(rate: f64, burst: f64) -> Option<Self> {
        (rate > 0.0).then(|| Self {
            rate,
            burst: burst.max(1.0),
            buckets: Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(600))
                .build(),
        })
    }

    /// Takes one token from `key`'s bucket, or says in how many whole seconds one is due.
    fn take(&self, key: &str) -> Result<(), u64> {
        let burst = self.burst;
        let bucket = self.buckets.get_with_by_ref(key, || {
            Arc::new(Mutex::new(Bucket {
                tokens: burst,
                at: Instant::now(),
            }))
        });
        let mut b = bucket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - b.tokens) / self.rate).ceil();
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Err((wait as u64).max(1))
        }
    }
}

/// Every limit of one node.
pub struct Limits {
    issuer: Option<Buckets>,
    token_address: Option<Buckets>,
    token_owner: Option<Buckets>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Limits")
    }
}

impl Limits {
    /// The limits `config` sets; a rate of 0 is no limit.
    #[must_use]
    pub fn new(config: &LimitsConfig) -> Self {
        let rate = f64::from(config.issuer_requests_per_second);
        let burst = match config.issuer_burst {
            0 => rate,
            b => f64::from(b),
        };
        let per_minute = |n: u32| Buckets::new(f64::from(n) / 60.0, f64::from(n));
        Self {
            issuer: Buckets::new(rate, burst),
            token_address: per_minute(config.token_requests_per_minute_per_address),
            token_owner: per_minute(config.token_requests_per_minute_per_issuer),
        }
    }

    /// One API request for `issuer`'s routes; `Err(seconds)` to wait when over the limit.
    ///
    /// # Errors
    /// The seconds until the next request is allowed.
    pub fn issuer_request(&self, issuer: &str) -> Result<(), u64> {
        self.issuer.as_ref().map_or(Ok(()), |b| b.take(issuer))
    }

    /// One token request from `address`.
    ///
    /// # Errors
    /// The seconds until the next request is allowed.
    pub fn token_from(&self, address: IpAddr) -> Result<(), u64> {
        self.token_address
            .as_ref()
            .map_or(Ok(()), |b| b.take(&address.to_string()))
    }

    /// One token request with a key of `owner` (an issuer or an aggregator).
    ///
    /// # Errors
    /// The seconds until the next request is allowed.
    pub fn token_for(&self, owner: &str) -> Result<(), u64> {
        self.token_owner.as_ref().map_or(Ok(()), |b| b.take(owner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rate: u32, burst: u32) -> LimitsConfig {
        LimitsConfig {
            issuer_requests_per_second: rate,
            issuer_burst: burst,
            token_requests_per_minute_per_address: 2,
            token_requests_per_minute_per_issuer: 0,
        }
    }

    #[test]
    fn a_bucket_gives_its_burst_then_refuses_with_a_wait() {
        let limits = Limits::new(&config(1, 3));
        for _ in 0..3 {
            assert_eq!(limits.issuer_request("BANK000001"), Ok(()));
        }
        assert_eq!(limits.issuer_request("BANK000001"), Err(1));
        assert_eq!(limits.issuer_request("BANK000002"), Ok(()), "per issuer");
    }

    #[test]
    fn zero_is_off_and_per_minute_limits_count_per_address() {
        let limits = Limits::new(&config(0, 0));
        for _ in 0..1000 {
            assert_eq!(limits.issuer_request("BANK000001"), Ok(()));
            assert_eq!(limits.token_for("BANK000001"), Ok(()));
        }
        let here: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(limits.token_from(here), Ok(()));
        assert_eq!(limits.token_from(here), Ok(()));
        assert_eq!(limits.token_from(here), Err(30));
        assert_eq!(limits.token_from("127.0.0.2".parse().unwrap()), Ok(()));
    }
}
