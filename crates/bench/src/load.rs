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

use crate::service::{Service, ISSUER};

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

async fn worker(
    addr: String,
    token: String,
    deadline: Instant,
    work: Work,
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
        let started = Instant::now();
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

/// Runs `connections` workers for `duration` and merges what they saw.
pub async fn run(
    service: &Service,
    token: &str,
    connections: usize,
    duration: Duration,
    work: &Work,
) -> anyhow::Result<RunStats> {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            tokio::spawn(worker(
                service.addr.clone(),
                token.to_owned(),
                deadline,
                work.clone(),
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
