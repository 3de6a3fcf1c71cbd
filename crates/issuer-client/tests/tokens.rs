//! Issuer tokens against a real loopback HTTP server: one token request per issuer however
//! many calls wait for it, and a slow token endpoint of one issuer does not delay another's.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use d1_domain::{PersonalInformation, PersonalInformationInput};
use d1_issuer_client::{Backend, ClientOptions, ConsumerRef, HttpIssuerClient, IssuerApi};
use secrecy::SecretString;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

/// Two banks behind one server, under `/a` and `/b`; bank A's token endpoint answers only
/// once the test opens its gate.
struct Banks {
    gate_a: Semaphore,
    token_requests_a: AtomicU32,
    token_requests_b: AtomicU32,
}

async fn token(State(banks): State<Arc<Banks>>, Path(bank): Path<String>) -> Json<Value> {
    if bank == "a" {
        banks.token_requests_a.fetch_add(1, Ordering::SeqCst);
        drop(banks.gate_a.acquire().await.expect("gate open"));
    } else {
        banks.token_requests_b.fetch_add(1, Ordering::SeqCst);
    }
    Json(json!({"access_token": format!("token-{bank}"), "expires_in": "3600"}))
}

async fn consumer() -> Json<Value> {
    Json(json!({}))
}

async fn start() -> (String, Arc<Banks>) {
    let banks = Arc::new(Banks {
        gate_a: Semaphore::new(0),
        token_requests_a: AtomicU32::new(0),
        token_requests_b: AtomicU32::new(0),
    });
    let router = Router::new()
        .route("/{bank}/oauth2/token", post(token))
        .route(
            "/{bank}/banking/d1/v1/issuers/{issuer}/consumers/{consumer}",
            get(consumer),
        )
        .with_state(Arc::clone(&banks));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}"), banks)
}

fn parse(_: &[u8]) -> Option<PersonalInformation> {
    PersonalInformation::parse(PersonalInformationInput {
        first_name: Some("Ada".into()),
        ..Default::default()
    })
    .ok()
}

fn client() -> HttpIssuerClient {
    let options = ClientOptions {
        retries: 0,
        ..ClientOptions::default()
    };
    HttpIssuerClient::new(options, parse).unwrap()
}

fn backend(url: &str, bank: &str, issuer: &str) -> Backend {
    Backend {
        issuer_id: issuer.into(),
        url: format!("{url}/{bank}"),
        credentials: Some(("client".into(), SecretString::from("secret"))),
        send_card_id: false,
        cache_ttl: Duration::ZERO,
    }
}

/// Calls Get Consumer Information for `consumer` in a task of its own.
fn spawn_call(
    client: &HttpIssuerClient,
    backend: &Backend,
    consumer: &str,
) -> tokio::task::JoinHandle<bool> {
    let (client, backend, consumer) = (client.clone(), backend.clone(), consumer.to_owned());
    tokio::spawn(async move {
        let asked = ConsumerRef {
            consumer_id: &consumer,
            card_id: None,
            correlation_id: None,
        };
        client.consumer_info(&backend, asked).await.is_ok()
    })
}

async fn until(what: impl Fn() -> bool) {
    tokio::time::timeout(Duration::from_secs(5), async {
        while !what() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("reached in time");
}

#[tokio::test]
async fn a_slow_token_endpoint_of_one_issuer_does_not_delay_another() {
    let (url, banks) = start().await;
    let client = client();
    let (bank_a, bank_b) = (
        backend(&url, "a", "BANKAAAAAA"),
        backend(&url, "b", "BANKBBBBBB"),
    );
    let waiting = spawn_call(&client, &bank_a, "consumer-1");
    until(|| banks.token_requests_a.load(Ordering::SeqCst) == 1).await;
    let other = spawn_call(&client, &bank_b, "consumer-2");
    let answered = tokio::time::timeout(Duration::from_secs(2), other).await;
    assert!(
        answered
            .expect("issuer B answered while A's token is pending")
            .unwrap(),
        "issuer B's call succeeded"
    );
    assert!(!waiting.is_finished(), "issuer A still waits for its token");
    banks.gate_a.add_permits(100);
    assert!(waiting.await.unwrap());
    assert_eq!(banks.token_requests_b.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn concurrent_calls_for_one_issuer_make_one_token_request() {
    let (url, banks) = start().await;
    let client = client();
    let bank_a = backend(&url, "a", "BANKAAAAAA");
    let calls: Vec<_> = (0..8)
        .map(|i| spawn_call(&client, &bank_a, &format!("consumer-{i}")))
        .collect();
    until(|| banks.token_requests_a.load(Ordering::SeqCst) == 1).await;
    // Give every call time to reach the token before the endpoint answers.
    tokio::time::sleep(Duration::from_millis(100)).await;
    banks.gate_a.add_permits(100);
    for call in calls {
        assert!(call.await.unwrap());
    }
    assert_eq!(banks.token_requests_a.load(Ordering::SeqCst), 1);
    // The token is kept: a later call needs none.
    assert!(spawn_call(&client, &bank_a, "consumer-9").await.unwrap());
    assert_eq!(banks.token_requests_a.load(Ordering::SeqCst), 1);
}
