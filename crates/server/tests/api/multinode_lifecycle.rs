//! Card life-cycle operations raced on the same cards from two `serve` processes on one
//! PostgreSQL database (issue 16, point 6): the reason table holds whatever the interleaving
//! (no resume slips past a `CARD_STOLEN` suspend), a refused operation writes nothing, and
//! the issuer backend is notified of exactly the operations that committed, in order per card.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use d1_domain::card::lifecycle::{CardOperation, Effect, ReasonCode, Standing};
use d1_domain::card::CardState;
use d1_domain::{OperationKind, OperationStatus};
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{json, Value};

use crate::fake_backend::{Answer, FakeBackend, CLIENT_ID, CLIENT_SECRET};
use crate::harness::test_pan;
use crate::multinode::{card_body, card_path, consumer_path, count, newest_jwk, Cluster, BANK};

/// Cards raced on, each of its own consumer so that one trail page holds it.
const CARDS: usize = 20;
/// Node B's workers per card.
const B_WORKERS: usize = 2;
/// Suspend-and-resume pairs of each of node B's workers.
const ROUNDS: usize = 20;
/// Node A's `CARD_STOLEN` suspends per card.
const A_ATTEMPTS: usize = 8;
/// Node A's first attempt on a card comes at a random point of this window, so that cards
/// are stolen early, late, or (rarely) not at all while node B cycles them.
const A_WINDOW_MS: u64 = 3_000;
const NODE_A: usize = 0;
const NODE_B: usize = 1;

fn card_id(card: usize) -> String {
    format!("race-card-{card}")
}

fn consumer_id(card: usize) -> String {
    format!("race-consumer-{card}")
}

/// One life-cycle request and its answer, as the client saw it.
#[derive(Debug, Clone)]
struct Answered {
    card: usize,
    operation: CardOperation,
    code: ReasonCode,
    status: u16,
    /// The operationId of a 200.
    operation_id: Option<String>,
}

/// What a trail entry of a life-cycle operation says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Written {
    card: usize,
    operation: CardOperation,
    code: ReasonCode,
}

async fn operate(
    cluster: &Cluster,
    token: &str,
    node: usize,
    card: usize,
    (operation, code): (CardOperation, ReasonCode),
    correlation: &str,
) -> Answered {
    let path = format!(
        "{}/operations:{}",
        card_path(&card_id(card)),
        operation.as_str()
    );
    let body = json!({"reasonCode": code.as_str()});
    let (status, reply) = cluster
        .request(node, Method::POST, &path, token, Some(&body), correlation)
        .await;
    let operation_id = match status {
        200 => {
            assert_eq!(reply["status"], "SUCCESSFUL", "{reply}");
            assert_eq!(reply["cardId"], card_id(card).as_str(), "{reply}");
            Some(reply["operationId"].as_str().unwrap().to_owned())
        }
        403 => {
            assert_eq!(reply["errorCode"], "INVALID_STATE", "{reply}");
            None
        }
        other => panic!("{operation:?} {code:?} on card {card}: {other} {reply}"),
    };
    Answered {
        card,
        operation,
        code,
        status,
        operation_id,
    }
}

/// Node B: suspend and resume, both with `USER_DECISION`, over and over.
async fn node_b(
    cluster: Arc<Cluster>,
    token: Arc<str>,
    card: usize,
    worker: usize,
) -> Vec<Answered> {
    let mut answers = Vec::new();
    for round in 0..ROUNDS {
        for op in [CardOperation::Suspend, CardOperation::Resume] {
            let correlation = format!("b{worker}-{card}-{round}");
            let step = (op, ReasonCode::UserDecision);
            answers.push(operate(&cluster, &token, NODE_B, card, step, &correlation).await);
        }
    }
    answers
}

/// Node A: a few `CARD_STOLEN` suspends, from a random point of [`A_WINDOW_MS`] on.
async fn node_a(cluster: Arc<Cluster>, token: Arc<str>, card: usize) -> Vec<Answered> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(u64::try_from(card).unwrap());
    tokio::time::sleep(Duration::from_millis(rng.gen_range(0..A_WINDOW_MS))).await;
    let mut answers = Vec::new();
    for attempt in 0..A_ATTEMPTS {
        let correlation = format!("a-{card}-{attempt}");
        let step = (CardOperation::Suspend, ReasonCode::CardStolen);
        answers.push(operate(&cluster, &token, NODE_A, card, step, &correlation).await);
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..30))).await;
    }
    answers
}

/// The trail of `card`'s consumer, oldest first, every page of it.
async fn trail_oldest_first(cluster: &Cluster, token: &str, card: usize) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = consumer_path(&consumer_id(card)) + "/operations?limit=200";
        if let Some(c) = &cursor {
            path = format!("{path}&cursor={c}");
        }
        let (status, body) = cluster
            .request(card, Method::GET, &path, token, None, "trail")
            .await;
        assert_eq!(status, 200, "{body}");
        entries.extend(body["operations"].as_array().unwrap().iter().cloned());
        match body["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    entries.reverse();
    entries
}

/// The life-cycle operation a trail entry's `operation` names, if it is one of the two
/// raced here.
fn raced(kind: OperationKind) -> Option<CardOperation> {
    [CardOperation::Suspend, CardOperation::Resume]
        .into_iter()
        .find(|op| op.kind() == kind)
}

/// Replays one card's trail entries (oldest first) through the domain's reason table and
/// answers where the card must stand, with what each life-cycle entry wrote, by operationId.
/// Panics at the first entry the table does not allow.
fn replay(card: usize, entries: &[Value]) -> (Standing, Vec<(String, Written)>) {
    let mut standing: Option<Standing> = None;
    let mut stolen = false;
    let mut written = Vec::new();
    for entry in entries {
        let id = entry["operationId"].as_str().unwrap().to_owned();
        let kind = OperationKind::parse(entry["operation"].as_str().unwrap()).unwrap();
        assert_eq!(
            entry["status"],
            OperationStatus::Successful.as_str(),
            "{entry}"
        );
        if kind == OperationKind::Register {
            assert!(entry.get("cardId").is_none_or(Value::is_null), "{entry}");
            continue;
        }
        assert_eq!(entry["cardId"], card_id(card).as_str(), "{entry}");
        if kind == OperationKind::CardRegister {
            assert!(standing.is_none(), "card {card} registered twice: {entry}");
            standing = Some(Standing {
                state: CardState::Active,
                reason: None,
                renewing: false,
            });
            continue;
        }
        let operation = raced(kind).unwrap_or_else(|| panic!("card {card}: {entry}"));
        let code = ReasonCode::parse(entry["reasonCode"].as_str().unwrap()).unwrap();
        let before =
            standing.unwrap_or_else(|| panic!("card {card}: {entry} before its registration"));
        assert!(
            !(stolen && operation == CardOperation::Resume),
            "card {card}: a resume slipped past a CARD_STOLEN suspend: {entry}"
        );
        let Some(Effect::Becomes(state)) = operation.effect(code, &before) else {
            panic!("card {card}: {operation:?} {code:?} is not allowed on {before:?}: {entry}");
        };
        stolen |= operation == CardOperation::Suspend && code == ReasonCode::CardStolen;
        standing = Some(Standing {
            state,
            reason: Some(code),
            renewing: false,
        });
        written.push((
            id,
            Written {
                card,
                operation,
                code,
            },
        ));
    }
    (
        standing.unwrap_or_else(|| panic!("card {card} has no CARD_REGISTER entry")),
        written,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_and_resume_raced_from_two_nodes_keep_the_reason_table_and_notify_what_committed() {
    let started = Instant::now();
    // A short poll, so that the outbox drains each card's queue (one item of a card at a
    // time) quickly after the race.
    let cluster = Arc::new(Cluster::start_with(&[("D1__JOBS__POLL_INTERVAL_MS", "50")]).await);
    let fake = FakeBackend::start(Answer::Status(404)).await;
    let secret = cluster.place.dir.path().join("backend-secret.txt");
    std::fs::write(&secret, CLIENT_SECRET).unwrap();
    cluster
        .cli(&[
            "issuer",
            "set-backend",
            "--issuer-id",
            BANK,
            "--url",
            &fake.url,
            "--client-id",
            CLIENT_ID,
            "--client-secret-file",
            secret.to_str().unwrap(),
            "--notification-batch-size",
            "10",
        ])
        .await;
    let token: Arc<str> = cluster.token(NODE_A).await.into();
    let jwk = newest_jwk(&cluster).await;
    for card in 0..CARDS {
        let pan = test_pan(700_000 + u64::try_from(card).unwrap());
        let body = card_body(&jwk, &consumer_id(card), &pan).await;
        let (status, reply) = cluster
            .request(
                card,
                Method::PUT,
                &card_path(&card_id(card)),
                &token,
                Some(&body),
                "register",
            )
            .await;
        assert_eq!(status, 204, "{reply}");
    }

    let racing = Instant::now();
    let mut tasks = Vec::new();
    for card in 0..CARDS {
        for worker in 0..B_WORKERS {
            let (cluster, token) = (Arc::clone(&cluster), Arc::clone(&token));
            tasks.push(tokio::spawn(node_b(cluster, token, card, worker)));
        }
        let (cluster, token) = (Arc::clone(&cluster), Arc::clone(&token));
        tasks.push(tokio::spawn(node_a(cluster, token, card)));
    }
    let mut answers: Vec<Answered> = Vec::new();
    for task in tasks {
        answers.extend(task.await.unwrap());
    }
    let raced_for = racing.elapsed();

    // (1) Each card's trail replays through the reason table, and the card reads as its last
    // entry left it.
    let mut trails = Vec::new();
    let mut written: HashMap<String, Written> = HashMap::new();
    let mut stolen_after_resume = 0;
    for card in 0..CARDS {
        let entries = trail_oldest_first(&cluster, &token, card).await;
        let (standing, entries_written) = replay(card, &entries);
        let (status, read) = cluster
            .request(
                card + 1,
                Method::GET,
                &card_path(&card_id(card)),
                &token,
                None,
                "read",
            )
            .await;
        assert_eq!(status, 200, "{read}");
        assert_eq!(
            read["state"],
            standing.state.as_str(),
            "card {card}: {read}"
        );
        assert_eq!(
            read["stateReason"].as_str(),
            standing.reason.map(ReasonCode::as_str),
            "card {card}: {read}"
        );
        let resumed = entries_written
            .iter()
            .position(|(_, w)| w.operation == CardOperation::Resume);
        let stolen = entries_written
            .iter()
            .position(|(_, w)| w.code == ReasonCode::CardStolen);
        if matches!((resumed, stolen), (Some(r), Some(s)) if r < s) {
            stolen_after_resume += 1;
        }
        for (id, w) in entries_written {
            assert!(
                written.insert(id.clone(), w).is_none(),
                "operationId {id} twice"
            );
        }
        trails.push(entries);
    }

    // (2) Every 200 names an entry of what it asked for (a retry, the first one's); every
    // entry was answered 200 to someone, so no refused (403) request wrote one.
    let mut answered: HashSet<&str> = HashSet::new();
    for a in &answers {
        let Some(id) = a.operation_id.as_deref() else {
            continue;
        };
        let asked = Written {
            card: a.card,
            operation: a.operation,
            code: a.code,
        };
        assert_eq!(
            written.get(id),
            Some(&asked),
            "the 200 {a:?} names no such entry"
        );
        answered.insert(id);
    }
    let unanswered: Vec<&String> = written
        .keys()
        .filter(|id| !answered.contains(id.as_str()))
        .collect();
    assert!(
        unanswered.is_empty(),
        "entries no 200 answered: {unanswered:?}"
    );

    // (3) Once the outbox is empty, the backend has had exactly each card's card-operation
    // entries, in trail order.
    let deadline = Instant::now() + Duration::from_secs(30);
    let pending = "SELECT count(*) FROM notifications WHERE state = 'PENDING'";
    while count(&cluster.place, pending).await > 0 {
        assert!(Instant::now() < deadline, "the outbox did not drain");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Time for a notification sent twice or out of turn to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let dead = "SELECT count(*) FROM notifications WHERE state = 'DEAD'";
    assert_eq!(count(&cluster.place, dead).await, 0);
    // Items, not calls: a call carries up to the batch size.
    let items = fake.items(None);
    let mut by_card: HashMap<String, Vec<&Value>> = HashMap::new();
    for item in &items {
        let card = item["cardId"].as_str().unwrap().to_owned();
        by_card.entry(card).or_default().push(item);
    }
    let mut expected_items = 0;
    for (card, entries) in trails.iter().enumerate() {
        let expected: Vec<&Value> = entries
            .iter()
            .filter(|e| {
                OperationKind::parse(e["operation"].as_str().unwrap())
                    .unwrap()
                    .notified_as()
                    .is_some()
            })
            .collect();
        expected_items += expected.len();
        let got = by_card.remove(&card_id(card)).unwrap_or_default();
        let ids = |v: &[&Value]| -> Vec<String> {
            v.iter()
                .map(|e| e["operationId"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            ids(&got),
            ids(&expected),
            "card {card}: notified operationIds, in order, against its trail"
        );
        for (item, entry) in got.iter().zip(&expected) {
            let kind = OperationKind::parse(entry["operation"].as_str().unwrap()).unwrap();
            assert_eq!(item["operation"], kind.notified_as().unwrap(), "{item}");
            assert_eq!(item["status"], "SUCCESSFUL", "{item}");
            assert_eq!(item["consumerId"], consumer_id(card).as_str(), "{item}");
            assert_eq!(item["reasonCode"], entry["reasonCode"], "{item}");
        }
    }
    assert!(
        by_card.is_empty(),
        "notified cards never operated on: {by_card:?}"
    );
    assert_eq!(items.len(), expected_items);

    // The race was run: cards stolen between resumes, and refusals on both sides.
    let refused = |op: CardOperation, code: ReasonCode| {
        answers
            .iter()
            .filter(|a| a.status == 403 && a.operation == op && a.code == code)
            .count()
    };
    let refused_resumes = refused(CardOperation::Resume, ReasonCode::UserDecision);
    let refused_stolen = refused(CardOperation::Suspend, ReasonCode::CardStolen);
    eprintln!(
        "{} requests in {raced_for:?}; {} entries; {stolen_after_resume} cards stolen after a \
         resume; {refused_resumes} resumes and {refused_stolen} CARD_STOLEN suspends refused; \
         {} items notified in {} calls; {:?} in all",
        answers.len(),
        written.len(),
        items.len(),
        fake.notifications().len(),
        started.elapsed()
    );
    assert!(stolen_after_resume > 0, "no card was stolen mid-cycle");
    assert!(refused_resumes > 0 && refused_stolen > 0);
    Arc::try_unwrap(cluster).ok().unwrap().stop().await;
}
