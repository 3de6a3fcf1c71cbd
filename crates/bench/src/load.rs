//! The load: N keep-alive HTTP/1.1 connections, each registering distinct consumers with PI
//! under random UUIDv4 consumerIds, as fast as answers come back.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::Request;
use hyper_util::rt::TokioIo;

use crate::service::ISSUER;

/// What one timed run saw.
#[derive(Debug, Default, Clone)]
pub struct RunStats {
    pub completed: u64,
    pub non_2xx: u64,
    pub elapsed: Duration,
    /// Per-request latency in microseconds (empty for the baseline).
    pub latencies_us: Vec<u32>,
}

impl RunStats {
    pub fn rate(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64()
    }
}

fn pi_body(n: u64) -> String {
    serde_json::json!({"personalInformation": {
        "language": "en-GB",
        "firstName": format!("Bench{n}"),
        "lastName": "Loadtest",
        "email": format!("bench{n}@example.com"),
        "mobilePhoneNumber": {"countryCode": "+44", "phoneNumber": "7700900123"},
        "residencyAddress": {"line1": "1 Bench Street", "city": "London", "zipCode": "EC1A 1BB", "countryCode": "GB"}
    }})
    .to_string()
}

async fn connect(addr: &str) -> anyhow::Result<http1::SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// One request on a fresh connection (for the token).
pub async fn request_once(
    addr: &str,
    method: &str,
    path: &str,
    content_type: &str,
    body: String,
) -> anyhow::Result<(u16, String)> {
    let mut sender = connect(addr).await?;
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))?;
    let response = sender.send_request(req).await?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

/// What the workers send.
#[derive(Clone)]
pub enum Work {
    /// Register consumer with PI, under random UUIDv4 consumerIds.
    Registrations,
    /// Register card, each request from a pool of prepared, distinct JWE bodies.
    Cards(Arc<CardPool>),
}

/// Prepared Register card requests, taken in order; none is sent twice.
pub struct CardPool {
    requests: Vec<(String, String)>,
    next: AtomicUsize,
}

impl CardPool {
    pub fn new(requests: Vec<(String, String)>) -> Self {
        Self {
            requests,
            next: AtomicUsize::new(0),
        }
    }

    fn take(&self) -> Option<&(String, String)> {
        self.requests.get(self.next.fetch_add(1, Ordering::Relaxed))
    }

    pub fn left(&self) -> usize {
        self.requests
            .len()
            .saturating_sub(self.next.load(Ordering::Relaxed))
    }
}

/// When a worker sends: as soon as the previous answer is back, or on a fixed schedule.
#[derive(Clone, Copy)]
enum Pace {
    Closed,
    /// One request every `interval`, starting at `first`; latency counts from the scheduled
    /// time, so a late answer also delays what was due behind it.
    Every {
        first: Instant,
        interval: Duration,
    },
}

async fn worker(
    addr: String,
    token: String,
    deadline: Instant,
    work: Work,
    pace: Pace,
) -> anyhow::Result<RunStats> {
    let mut sender = connect(&addr).await?;
    let mut stats = RunStats::default();
    let auth = format!("Bearer {token}");
    let mut n = 0u64;
    while Instant::now() < deadline {
        n += 1;
        let (path, body) = match &work {
            Work::Registrations => (
                format!(
                    "/banking/v2/issuers/{ISSUER}/consumers/{}",
                    uuid::Uuid::new_v4()
                ),
                pi_body(n),
            ),
            Work::Cards(pool) => match pool.take() {
                Some((path, body)) => (path.clone(), body.clone()),
                None => break,
            },
        };
        let req = Request::builder()
            .method("PUT")
            .uri(path)
            .header("host", &addr)
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))?;
        let started = match pace {
            Pace::Closed => Instant::now(),
            Pace::Every { first, interval } => {
                let due = first + interval * u32::try_from(n - 1).unwrap_or(u32::MAX);
                if due >= deadline {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                due
            }
        };
        sender.ready().await.context("connection closed")?;
        let response = sender.send_request(req).await?;
        let status = response.status();
        response.into_body().collect().await?;
        stats
            .latencies_us
            .push(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX));
        stats.completed += 1;
        if !status.is_success() {
            stats.non_2xx += 1;
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
    rate: f64,
) -> anyhow::Result<RunStats> {
    let work = Work::Registrations;
    run_with(targets, token, connections, duration, &work, Some(rate)).await
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
            let pace = match rate {
                None => Pace::Closed,
                Some(rate) => {
                    let interval = Duration::from_secs_f64(connections as f64 / rate);
                    // Workers start staggered, so the total arrives evenly.
                    let offset = interval.mul_f64(i as f64 / connections as f64);
                    Pace::Every {
                        first: started + offset,
                        interval,
                    }
                }
            };
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
        let stats = task.await??;
        total.completed += stats.completed;
        total.non_2xx += stats.non_2xx;
        total.latencies_us.extend(stats.latencies_us);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}
