//! `d1-registry issuer-sim`: a simulator of an issuer backend, for the "we do not store PI"
//! model on one machine. It serves the issuer's `/oauth2/token` (client credentials, Basic)
//! and Get Consumer Information from a JSON file, receives card operation notifications and
//! prints one line per item (ids and status, never PI), serves the calls it received on
//! `GET /sim/notifications` (each envelope as sent, with its `x-correlation-id`), and counts
//! what it served on `GET /sim/stats`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use rand::Rng;
use serde::Deserialize;
use serde_json::{json, Value};

/// How long the simulator's access tokens live, in seconds.
const TOKEN_LIFETIME: u64 = 3600;

/// Notification calls kept for `GET /sim/notifications`, the latest ones; a benchmark's
/// millions would not fit in memory.
const KEPT_CALLS: usize = 10_000;

/// The consumers file.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumersFile {
    pub issuer_id: String,
    pub client_id: String,
    pub client_secret: String,
    /// consumerId → the `consumerInfo` served for it, as written.
    pub consumers: HashMap<String, Value>,
}

/// How the simulator behaves.
#[derive(Debug, Clone, Copy)]
pub struct Behaviour {
    /// Added to every answer.
    pub latency: Duration,
    /// The share of calls answered 500, 0.0 to 1.0.
    pub fail_rate: f64,
}

#[derive(Default)]
struct Stats {
    token_requests: AtomicU64,
    consumer_requests: AtomicU64,
    notifications: AtomicU64,
    notification_items: AtomicU64,
    injected_failures: AtomicU64,
}

/// The notification calls received, in arrival order.
#[derive(Default)]
struct Received {
    calls: VecDeque<Value>,
    /// Calls no longer kept.
    dropped: u64,
}

struct Sim {
    file: ConsumersFile,
    behaviour: Behaviour,
    tokens: Mutex<HashSet<String>>,
    stats: Stats,
    received: Mutex<Received>,
}

type Shared = Arc<Sim>;

/// Reads a consumers file.
///
/// # Errors
/// If it cannot be read or does not have the documented shape.
pub fn read_consumers(path: &Path) -> anyhow::Result<ConsumersFile> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| {
        format!(
            "{} must be {{\"issuerId\", \"clientId\", \"clientSecret\", \"consumers\": {{…}}}}",
            path.display()
        )
    })
}

/// The simulator's routes.
pub fn router(file: ConsumersFile, behaviour: Behaviour) -> Router {
    let sim = Arc::new(Sim {
        file,
        behaviour,
        tokens: Mutex::new(HashSet::new()),
        stats: Stats::default(),
        received: Mutex::new(Received::default()),
    });
    Router::new()
        .route("/oauth2/token", post(token))
        .route(
            "/banking/d1/v1/issuers/{issuer_id}/consumers/{consumer_id}",
            get(consumer_info),
        )
        .route(
            "/notifications/d1/v2/issuers/{issuer_id}/cards",
            post(notification),
        )
        .route("/sim/notifications", get(received))
        .route("/sim/stats", get(stats))
        .with_state(sim)
}

/// Serves the simulator on `listen` until Ctrl-C or SIGTERM.
///
/// # Errors
/// If the file is unusable or the address cannot be bound.
pub async fn run(listen: &str, consumers: &Path, behaviour: Behaviour) -> anyhow::Result<()> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&behaviour.fail_rate),
        "--fail-rate must be between 0.0 and 1.0"
    );
    let file = read_consumers(consumers)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    println!(
        "issuer-sim listening on http://{} for issuer {} with {} consumers (latency {} ms, fail rate {})",
        listener.local_addr()?,
        file.issuer_id,
        file.consumers.len(),
        behaviour.latency.as_millis(),
        behaviour.fail_rate
    );
    axum::serve(listener, router(file, behaviour))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

impl Sim {
    /// Waits the latency, then says whether this call is one to fail.
    async fn delay_and_roll(&self) -> bool {
        if !self.behaviour.latency.is_zero() {
            tokio::time::sleep(self.behaviour.latency).await;
        }
        let fail = self.behaviour.fail_rate > 0.0
            && rand::thread_rng().gen_bool(self.behaviour.fail_rate.min(1.0));
        if fail {
            self.stats.injected_failures.fetch_add(1, Ordering::Relaxed);
        }
        fail
    }

    fn bearer_ok(&self, headers: &HeaderMap) -> bool {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        token.is_some_and(|t| self.tokens.lock().is_ok_and(|tokens| tokens.contains(t)))
    }
}

fn failure() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({"error": "simulated failure"})),
    )
        .into_response()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": "invalid_token"})),
    )
        .into_response()
}

async fn token(State(sim): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    sim.stats.token_requests.fetch_add(1, Ordering::Relaxed);
    if sim.delay_and_roll().await {
        return failure();
    }
    let expected = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", sim.file.client_id, sim.file.client_secret));
    let basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "));
    if basic != Some(expected.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    let token = uuid::Uuid::new_v4().simple().to_string();
    if let Ok(mut tokens) = sim.tokens.lock() {
        tokens.insert(token.clone());
    }
    let expires_at = crate::clock::rfc3339(
        d1_store::now_ms() + i64::try_from(TOKEN_LIFETIME * 1000).unwrap_or(0),
    );
    Json(json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME.to_string(),
        "expires_at": expires_at,
    }))
    .into_response()
}

async fn consumer_info(
    State(sim): State<Shared>,
    headers: HeaderMap,
    UrlPath((issuer_id, consumer_id)): UrlPath<(String, String)>,
) -> Response {
    sim.stats.consumer_requests.fetch_add(1, Ordering::Relaxed);
    if sim.delay_and_roll().await {
        return failure();
    }
    if !sim.bearer_ok(&headers) {
        return unauthorized();
    }
    match sim.file.consumers.get(&consumer_id) {
        Some(info) if issuer_id == sim.file.issuer_id => Json(info.clone()).into_response(),
        _ => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "consumer not found"})),
        )
            .into_response(),
    }
}

async fn notification(
    State(sim): State<Shared>,
    headers: HeaderMap,
    UrlPath(issuer_id): UrlPath<String>,
    body: Bytes,
) -> Response {
    if sim.delay_and_roll().await {
        return failure();
    }
    if !sim.bearer_ok(&headers) {
        return unauthorized();
    }
    let Ok(value) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "not JSON"}))).into_response();
    };
    sim.stats.notifications.fetch_add(1, Ordering::Relaxed);
    let field = |op: &Value, k: &str| op.get(k).and_then(Value::as_str).unwrap_or("-").to_owned();
    let items = value
        .get("operations")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    sim.stats
        .notification_items
        .fetch_add(u64::try_from(items.len()).unwrap_or(0), Ordering::Relaxed);
    // One write per call, so that the lines of concurrent calls do not interleave.
    let mut lines = String::new();
    for op in items {
        lines.push_str(&format!(
            "notification issuer={issuer_id} operationId={} operation={} status={} cardId={} startTime={}\n",
            field(op, "operationId"),
            field(op, "operation"),
            field(op, "status"),
            field(op, "cardId"),
            field(op, "startTime"),
        ));
    }
    let _ = std::io::stdout().lock().write_all(lines.as_bytes());
    let correlation_id = headers
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Ok(mut received) = sim.received.lock() {
        if received.calls.len() == KEPT_CALLS {
            received.calls.pop_front();
            received.dropped += 1;
        }
        received.calls.push_back(json!({
            "issuerId": issuer_id,
            "correlationId": correlation_id,
            "envelope": value,
        }));
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /sim/notifications`: the calls received, oldest first, each with its
/// `x-correlation-id` and its envelope as sent.
async fn received(State(sim): State<Shared>) -> Json<Value> {
    let Ok(received) = sim.received.lock() else {
        return Json(json!({"calls": [], "dropped": 0}));
    };
    Json(json!({
        "calls": received.calls.iter().collect::<Vec<_>>(),
        "dropped": received.dropped,
    }))
}

async fn stats(State(sim): State<Shared>) -> Json<Value> {
    let s = &sim.stats;
    Json(json!({
        "tokenRequests": s.token_requests.load(Ordering::Relaxed),
        "consumerRequests": s.consumer_requests.load(Ordering::Relaxed),
        "notifications": s.notifications.load(Ordering::Relaxed),
        "notificationItems": s.notification_items.load(Ordering::Relaxed),
        "injectedFailures": s.injected_failures.load(Ordering::Relaxed),
    }))
}
