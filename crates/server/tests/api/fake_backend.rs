//! A fake issuer backend on loopback, for the faults the simulator does not make: each answer
//! is set by the test, and every request is recorded.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use d1_domain::IssuerId;
use d1_store::{BackendRecord, CardNotifications};
use serde_json::{json, Value};

use crate::harness::{TestApp, ISSUER};

pub const CLIENT_ID: &str = "client-1";
pub const CLIENT_SECRET: &str = "secret-1";

/// How Get Consumer Information answers.
#[derive(Clone)]
pub enum Answer {
    /// 200 with this body.
    Pi(Value),
    /// This status, empty JSON body.
    Status(u16),
    /// 200 with bytes that are not JSON.
    Garbage,
    /// The answer after a pause.
    Slow(Duration, Box<Answer>),
}

/// One Get Consumer Information request as received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub query: Option<String>,
    pub authorization: Option<String>,
    pub correlation_id: Option<String>,
}

pub struct FakeState {
    pub answer: Mutex<Answer>,
    /// Token requests answer 401 while true.
    pub refuse_tokens: Mutex<bool>,
    /// Notifications answered 500 before the next 204s.
    pub notification_failures: AtomicU32,
    pub token_calls: AtomicU32,
    pub consumer_calls: AtomicU32,
    pub seen: Mutex<Vec<Seen>>,
    pub notifications: Mutex<Vec<Value>>,
    /// The `x-correlation-id` of each notification call taken, beside `notifications`.
    pub notification_correlation_ids: Mutex<Vec<Option<String>>>,
    /// Notification calls answer only after this pause.
    pub notification_delay: Mutex<Duration>,
}

pub struct FakeBackend {
    pub url: String,
    pub state: Arc<FakeState>,
}

impl FakeBackend {
    /// Starts a fake answering `answer` to Get Consumer Information.
    pub async fn start(answer: Answer) -> Self {
        let state = Arc::new(FakeState {
            answer: Mutex::new(answer),
            refuse_tokens: Mutex::new(false),
            notification_failures: AtomicU32::new(0),
            token_calls: AtomicU32::new(0),
            consumer_calls: AtomicU32::new(0),
            seen: Mutex::new(Vec::new()),
            notifications: Mutex::new(Vec::new()),
            notification_correlation_ids: Mutex::new(Vec::new()),
            notification_delay: Mutex::new(Duration::ZERO),
        });
        let router = Router::new()
            .route("/oauth2/token", post(token))
            .route(
                "/banking/d1/v1/issuers/{issuer}/consumers/{consumer}",
                get(consumer_info),
            )
            .route("/notifications/d1/v2/issuers/{issuer}/cards", post(notify))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            url: format!("http://{addr}"),
            state,
        }
    }

    pub fn set(&self, answer: Answer) {
        *self.state.answer.lock().unwrap() = answer;
    }

    pub fn consumer_calls(&self) -> u32 {
        self.state.consumer_calls.load(Ordering::SeqCst)
    }

    /// The notification envelopes taken, in arrival order.
    pub fn notifications(&self) -> Vec<Value> {
        self.state.notifications.lock().unwrap().clone()
    }

    /// The `x-correlation-id` of each call of [`FakeBackend::notifications`].
    pub fn notification_correlation_ids(&self) -> Vec<Option<String>> {
        self.state
            .notification_correlation_ids
            .lock()
            .unwrap()
            .clone()
    }

    /// Every item taken, in arrival order; only those of `operation` if given.
    pub fn items(&self, operation: Option<&str>) -> Vec<Value> {
        self.notifications()
            .iter()
            .flat_map(|n| n["operations"].as_array().cloned().unwrap_or_default())
            .filter(|item| operation.is_none_or(|op| item["operation"] == op))
            .collect()
    }

    /// Waits until at least `count` items (of `operation`, if given) were taken.
    pub async fn wait_for_items(&self, operation: Option<&str>, count: usize) -> Vec<Value> {
        for _ in 0..300 {
            let items = self.items(operation);
            if items.len() >= count {
                return items;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "expected {count} items of {operation:?}, got {:?}",
            self.notifications()
        );
    }

    /// Fails the next `n` notification calls with 500.
    pub fn fail_notifications(&self, n: u32) {
        self.state.notification_failures.store(n, Ordering::SeqCst);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }
}

/// Points the main issuer at `url`, with the fake's credentials, every card operation
/// notified one per call.
pub async fn set_backend(app: &TestApp, url: &str, send_card_id: bool, ttl: u32) {
    set_backend_notifying(app, url, send_card_id, ttl, CardNotifications::All, 1).await;
}

/// [`set_backend`] with the notification settings given.
pub async fn set_backend_notifying(
    app: &TestApp,
    url: &str,
    send_card_id: bool,
    ttl: u32,
    notifications: CardNotifications,
    batch_size: u32,
) {
    let issuer = IssuerId::parse(ISSUER).unwrap();
    let sealed = app
        .state
        .store
        .vault()
        .seal_backend_secret(&issuer, CLIENT_SECRET.as_bytes())
        .unwrap();
    app.state
        .store
        .set_issuer_backend(BackendRecord {
            issuer_id: issuer,
            url: url.to_owned(),
            client_id: Some(CLIENT_ID.to_owned()),
            sealed_secret: Some(sealed),
            send_card_id,
            pi_cache_ttl_s: ttl,
            card_notifications: notifications,
            notification_batch_size: batch_size,
        })
        .await
        .unwrap();
}

fn bearer_ok(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "Bearer fake-token")
}

async fn token(State(state): State<Arc<FakeState>>, headers: HeaderMap, body: Bytes) -> Response {
    state.token_calls.fetch_add(1, Ordering::SeqCst);
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    let authorised = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Basic {basic}"));
    let grant = String::from_utf8_lossy(&body).contains("grant_type=client_credentials");
    if *state.refuse_tokens.lock().unwrap() || !authorised || !grant {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    // expires_in as a string, as D1's schema has it.
    Json(json!({"access_token": "fake-token", "token_type": "Bearer", "expires_in": "3600"}))
        .into_response()
}

fn answer(a: &Answer) -> Response {
    match a {
        Answer::Pi(v) => Json(v.clone()).into_response(),
        Answer::Status(code) => {
            (StatusCode::from_u16(*code).unwrap(), Json(json!({}))).into_response()
        }
        Answer::Garbage => (StatusCode::OK, "<html>not json</html>").into_response(),
        Answer::Slow(_, inner) => answer(inner),
    }
}

async fn consumer_info(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    Path((issuer, consumer)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    state.consumer_calls.fetch_add(1, Ordering::SeqCst);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    state.seen.lock().unwrap().push(Seen {
        path: format!("/banking/d1/v1/issuers/{issuer}/consumers/{consumer}"),
        query,
        authorization: header("authorization"),
        correlation_id: header("x-correlation-id"),
    });
    if !bearer_ok(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let current = state.answer.lock().unwrap().clone();
    if let Answer::Slow(pause, _) = &current {
        tokio::time::sleep(*pause).await;
    }
    answer(&current)
}

async fn notify(State(state): State<Arc<FakeState>>, headers: HeaderMap, body: Bytes) -> Response {
    if !bearer_ok(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let delay = *state.notification_delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let failing = state
        .notification_failures
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let correlation_id = headers
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Both lists under one lock's turn, so that they stay side by side.
    let mut notifications = state.notifications.lock().unwrap();
    notifications.push(value);
    state
        .notification_correlation_ids
        .lock()
        .unwrap()
        .push(correlation_id);
    drop(notifications);
    StatusCode::NO_CONTENT.into_response()
}
