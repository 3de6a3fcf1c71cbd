//! The load: N keep-alive HTTP/1.1 connections, each registering distinct consumers with PI
//! under random UUIDv4 consumerIds, or sending requests prepared beforehand, as fast as
//! answers come back or on a fixed schedule.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::service::ISSUER;
use crate::wire;

/// What one timed run saw.
#[derive(Debug, Default, Clone)]
pub struct RunStats {
    pub completed: u64,
    pub non_2xx: u64,
    pub elapsed: Duration,
    /// Per-request latency in microseconds (empty for the baseline).
    pub latencies_us: Vec<u32>,
    /// The CPU time the service used during the run, where it was measured.
    pub service_cpu: Option<Duration>,
    /// Answers 429 (a rate limit).
    pub rate_limited: u64,
    /// The latencies of the 2xx answers only, in microseconds.
    pub ok_latencies_us: Vec<u32>,
}

impl RunStats {
    /// Adds what one of a run's concurrent tasks counted.
    pub fn absorb(&mut self, task: RunStats) {
        self.completed += task.completed;
        self.non_2xx += task.non_2xx;
        self.latencies_us.extend(task.latencies_us);
        self.rate_limited += task.rate_limited;
        self.ok_latencies_us.extend(task.ok_latencies_us);
    }

    pub fn rate(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64()
    }

    /// The service's CPU time per completed request, in microseconds.
    pub fn cpu_per_request_us(&self) -> Option<f64> {
        let cpu = self.service_cpu?;
        (self.completed > 0).then(|| cpu.as_secs_f64() * 1e6 / self.completed as f64)
    }
}

/// A Register consumer body with PI, distinct per `n`.
pub fn write_pi_body(out: &mut Vec<u8>, n: u64) {
    out.clear();
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        r#"{{"personalInformation":{{"language":"en-GB","firstName":"Bench{n}","lastName":"Loadtest","email":"bench{n}@example.com","mobilePhoneNumber":{{"countryCode":"+44","phoneNumber":"7700900123"}},"residencyAddress":{{"line1":"1 Bench Street","city":"London","zipCode":"EC1A 1BB","countryCode":"GB"}}}}}}"#
    );
}

/// What the workers send.
#[derive(Clone)]
pub enum Work {
    /// Register consumer with PI, under random UUIDv4 consumerIds.
    Registrations,
    /// PUT requests from a pool prepared before the timed window (Register card with distinct
    /// JWEs, or Register consumer for known consumerIds); the workers stop when it runs out.
    Prepared(Arc<Prepared>),
    /// Get consumer, each of a consumerId drawn at random from these registered ones.
    Reads(Arc<Vec<String>>),
}

/// Prepared requests (path, body) of one method, taken in order. A pool without a cycle sends
/// none twice and runs out; one with a cycle sends its requests from `cycle_from` on again and
/// again, for requests that may repeat (a suspend and resume of the same cards).
pub struct Prepared {
    method: &'static str,
    requests: Vec<(String, String)>,
    cycle_from: Option<usize>,
    next: AtomicUsize,
}

impl Prepared {
    /// PUT requests.
    pub fn new(requests: Vec<(String, String)>) -> Self {
        Self::of("PUT", requests)
    }

    /// Requests of `method`.
    pub fn of(method: &'static str, requests: Vec<(String, String)>) -> Self {
        Self {
            method,
            requests,
            cycle_from: None,
            next: AtomicUsize::new(0),
        }
    }

    /// Requests of `method`: `once` a single time, then `cycle` over and over; it never runs
    /// out unless `cycle` is empty.
    pub fn cycling(
        method: &'static str,
        mut once: Vec<(String, String)>,
        cycle: Vec<(String, String)>,
    ) -> Self {
        let cycle_from = (!cycle.is_empty()).then_some(once.len());
        once.extend(cycle);
        Self {
            cycle_from,
            ..Self::of(method, once)
        }
    }

    /// The next request, if any is left.
    pub(crate) fn take(&self) -> Option<&(String, String)> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        match self.cycle_from {
            Some(from) if n >= self.requests.len() => {
                let cycle = self.requests.len() - from;
                self.requests.get(from + (n - from) % cycle)
            }
            _ => self.requests.get(n),
        }
    }

    /// How many requests are left; a cycling pool always has some.
    pub fn left(&self) -> usize {
        if self.cycle_from.is_some() {
            return usize::MAX;
        }
        self.requests
            .len()
            .saturating_sub(self.next.load(Ordering::Relaxed))
    }
}

/// When a worker sends: as soon as the previous answer is back, or on a fixed schedule.
#[derive(Clone, Copy)]
pub enum Pace {
    Closed,
    /// One request every `interval`, starting at `first`; a late answer also delays what was
    /// due behind it, and that delay counts in the latency (see [`Pace::due`]).
    Every {
        first: Instant,
        interval: Duration,
    },
}

impl Pace {
    /// The pace of worker `i` of `workers` started together at `started`: closed without a
    /// `rate`, else its share of the total `rate` (requests per second), the workers staggered
    /// so that the total arrives evenly.
    pub fn of_worker(rate: Option<f64>, i: usize, workers: usize, started: Instant) -> Self {
        match rate {
            None => Self::Closed,
            Some(rate) => {
                let interval = Duration::from_secs_f64(workers as f64 / rate);
                Self::Every {
                    first: started + interval.mul_f64(i as f64 / workers as f64),
                    interval,
                }
            }
        }
    }

    /// When the worker's `n`th request (counting from 1) is to go: now in a closed loop, else
    /// its place in the schedule; `None` once that is at or after `deadline`.
    fn scheduled(self, n: u64, deadline: Instant) -> Option<Instant> {
        let at = match self {
            Self::Closed => Instant::now(),
            Self::Every { first, interval } => {
                first + interval * u32::try_from(n - 1).unwrap_or(u32::MAX)
            }
        };
        (at < deadline).then_some(at)
    }

    /// Waits until the worker's `n`th request (counting from 1) is due, and returns the time
    /// its latency counts from; `None` once that would be at or after `deadline`.
    ///
    /// A worker still waiting for its previous answer when the next request falls due counts
    /// that wait: the request's latency starts at its scheduled time. A worker that was ahead
    /// sleeps until the request is due and counts from when it wakes, because tokio's timer
    /// fires only on whole milliseconds: the time between the schedule and the wake-up, up to
    /// a millisecond, is the load generator's, not the service's.
    pub async fn due(self, n: u64, deadline: Instant) -> Option<Instant> {
        let due = self.scheduled(n, deadline)?;
        if Instant::now() >= due {
            return Some(due);
        }
        tokio::time::sleep_until(due.into()).await;
        Some(Instant::now())
    }

    /// [`Pace::due`] for a thread that does its own blocking work (the SQLite baseline): the
    /// same schedule and the same time to count from, waiting on the thread's clock, which
    /// wakes within microseconds rather than on whole milliseconds.
    pub fn due_blocking(self, n: u64, deadline: Instant) -> Option<Instant> {
        let due = self.scheduled(n, deadline)?;
        let now = Instant::now();
        if now < due {
            std::thread::sleep(due - now);
        }
        Some(due)
    }
}

async fn worker(
    addr: String,
    token: String,
    deadline: Instant,
    work: Work,
    pace: Pace,
) -> anyhow::Result<RunStats> {
    let mut connection = wire::Connection::open(&addr).await?;
    let mut stats = RunStats::default();
    let auth = format!("Bearer {token}");
    let mut path = String::new();
    let mut body = Vec::new();
    let mut request = Vec::new();
    let mut n = 0u64;
    while Instant::now() < deadline {
        n += 1;
        match &work {
            Work::Registrations => {
                path.clear();
                let _ = write!(
                    path,
                    "/banking/v2/issuers/{ISSUER}/consumers/{}",
                    uuid::Uuid::new_v4()
                );
                write_pi_body(&mut body, n);
                wire::request(
                    &mut request,
                    "PUT",
                    &path,
                    &addr,
                    Some(&auth),
                    "application/json",
                    &body,
                );
            }
            Work::Reads(ids) => {
                path.clear();
                let id = &ids[rand::Rng::gen_range(&mut rand::thread_rng(), 0..ids.len())];
                let _ = write!(path, "/banking/v2/issuers/{ISSUER}/consumers/{id}");
                wire::request(
                    &mut request,
                    "GET",
                    &path,
                    &addr,
                    Some(&auth),
                    "application/json",
                    b"",
                );
            }
            Work::Prepared(pool) => match pool.take() {
                Some((path, body)) => wire::request(
                    &mut request,
                    pool.method,
                    path,
                    &addr,
                    Some(&auth),
                    "application/json",
                    body.as_bytes(),
                ),
                None => break,
            },
        }
        let Some(started) = pace.due(n, deadline).await else {
            break;
        };
        let answer = connection.exchange(&request).await?;
        let latency = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
        stats.latencies_us.push(latency);
        stats.completed += 1;
        if (200..300).contains(&answer.status) {
            stats.ok_latencies_us.push(latency);
        } else {
            stats.non_2xx += 1;
            stats.rate_limited += u64::from(answer.status == 429);
        }
    }
    Ok(stats)
}

/// Runs `connections` workers for `duration`, spread over `targets` in turn, each sending as
/// soon as its previous answer is back; merges what they saw.
pub async fn run(
    targets: &[String],
    token: &str,
    connections: usize,
    duration: Duration,
    work: &Work,
) -> anyhow::Result<RunStats> {
    run_with(targets, token, connections, duration, work, None).await
}

/// Like [`run`], but at a fixed total rate (requests per second), for latency at a given load.
pub async fn run_at(
    targets: &[String],
    token: &str,
    connections: usize,
    duration: Duration,
    work: &Work,
    rate: f64,
) -> anyhow::Result<RunStats> {
    run_with(targets, token, connections, duration, work, Some(rate)).await
}

async fn run_with(
    targets: &[String],
    token: &str,
    connections: usize,
    duration: Duration,
    work: &Work,
    rate: Option<f64>,
) -> anyhow::Result<RunStats> {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|i| {
            let pace = Pace::of_worker(rate, i, connections, started);
            tokio::spawn(worker(
                targets[i % targets.len()].clone(),
                token.to_owned(),
                deadline,
                work.clone(),
                pace,
            ))
        })
        .collect();
    let mut total = RunStats::default();
    for task in tasks {
        total.absorb(task.await??);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}
