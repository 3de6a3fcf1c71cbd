//! What a client can hold open (contract section 10): how long a request head may take, how
//! long a keep-alive connection may sit idle, and the descriptor limit `serve` raises.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::ServerConfig;

/// The connection settings of `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// From a connection's start, or a request head's first byte, to the head's end.
    pub header_timeout: Duration,
    /// From a keep-alive connection's last byte to the next request's first.
    pub idle_timeout: Duration,
    /// Open connections at most; one more is closed at once.
    pub max_connections: usize,
}

impl ConnLimits {
    /// The limits `server` sets.
    #[must_use]
    pub fn from_config(server: &ServerConfig) -> Self {
        Self {
            header_timeout: Duration::from_millis(server.header_timeout_ms.max(1)),
            idle_timeout: Duration::from_millis(server.idle_timeout_ms.max(1)),
            max_connections: server.max_connections.max(1),
        }
    }
}

/// Why a connection was closed by its watchdog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// A request head (the first included) did not arrive whole within the header timeout.
    Header,
    /// Nothing came within the idle timeout after the last answer.
    Idle,
}

const NONE: u64 = 0;

/// The timestamps one connection's watchdog reads: the IO wrapper and the service write
/// them, without a lock.
#[derive(Debug)]
pub struct ConnClock {
    origin: Instant,
    /// When the current head started, in ms since `origin` plus one; `NONE` between heads.
    head_since: AtomicU64,
    /// The last byte read or written, likewise.
    last: AtomicU64,
    /// Requests handed to the app and not answered yet.
    busy: AtomicUsize,
}

impl ConnClock {
    /// A clock for a connection accepted now: its first head is due from now.
    #[must_use]
    pub fn start() -> Arc<Self> {
        Arc::new(Self {
            origin: Instant::now(),
            head_since: AtomicU64::new(1),
            last: AtomicU64::new(1),
            busy: AtomicUsize::new(0),
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    /// Some bytes came or went.
    pub fn touch(&self) {
        self.last.store(self.now(), Ordering::Relaxed);
    }

    /// A head's first byte arrived; the first head's clock runs from the accept already.
    pub fn head_started(&self) {
        let _ = self.head_since.compare_exchange(
            NONE,
            self.now(),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// A head arrived whole.
    pub fn head_done(&self) {
        self.head_since.store(NONE, Ordering::Relaxed);
    }

    /// Marks a request as being served until the guard is dropped.
    #[must_use]
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::Relaxed);
        Busy(Arc::clone(self))
    }

    /// Resolves when the connection has broken one of the limits.
    pub async fn expired(&self, limits: ConnLimits) -> Expiry {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 2);
        let (header, idle) = (ms(limits.header_timeout), ms(limits.idle_timeout));
        loop {
            let now = self.now();
            let head = self.head_since.load(Ordering::Relaxed);
            let (deadline, why) = if head != NONE {
                (head + header, Expiry::Header)
            } else if self.busy.load(Ordering::Relaxed) > 0 {
                // The request timeout bounds a request; look again later.
                (now + idle.min(header), Expiry::Idle)
            } else {
                (self.last.load(Ordering::Relaxed) + idle, Expiry::Idle)
            };
            if now >= deadline {
                return why;
            }
            tokio::time::sleep(Duration::from_millis(deadline - now)).await;
            if why == Expiry::Idle && self.busy.load(Ordering::Relaxed) > 0 {
                continue;
            }
        }
    }
}

/// A request in service; see [`ConnClock::busy`].
#[derive(Debug)]
pub struct Busy(Arc<ConnClock>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Raises the soft descriptor limit to the hard one, so that `max_connections` is not cut
/// short by a low default, and logs both; warns if the cap still does not fit.
pub fn raise_descriptor_limit(max_connections: usize) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let before = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: before.maximum,
        maximum: before.maximum,
    };
    let now = match setrlimit(Resource::Nofile, raised) {
        Ok(()) => getrlimit(Resource::Nofile),
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the descriptor limit");
            before
        }
    };
    let show = |v: Option<u64>| v.map_or_else(|| "unlimited".to_owned(), |n| n.to_string());
    tracing::info!(
        soft_before = %show(before.current),
        soft = %show(now.current),
        hard = %show(now.maximum),
        "descriptor limit"
    );
    // Room for the store, the logs and the outbound client besides the connections.
    let reserve = 64;
    if now
        .current
        .is_some_and(|soft| soft < (max_connections as u64).saturating_add(reserve))
    {
        tracing::warn!(
            max_connections,
            "server.max_connections does not fit under the descriptor limit; lower it or raise \
             the limit, or the node may run out of descriptors before it refuses connections"
        );
    }
}
