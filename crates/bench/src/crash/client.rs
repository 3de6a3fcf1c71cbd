//! One crash-test writer: a keep-alive connection sending the client's own writes one at a
//! time, as fast as answers come, until the node is killed under it. Each write is chosen at
//! random among those its ledger allows: a new consumer with PI, an update, a card for one of
//! its consumers or for a new consumer (an implicit registration), a life-cycle operation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use serde_json::json;

use super::ledger::{Card, Consumer, Ledger, Op, Stage};
use crate::seal::Recipient;
use crate::service::ISSUER;
use crate::wire::{self, Connection};

/// What the round's writers share.
pub struct Shared {
    pub addr: String,
    pub authorization: String,
    pub recipient: Recipient,
    /// The next PAN serial and PI version, unique across clients and rounds.
    pub serial: Arc<AtomicU64>,
    pub product: &'static str,
    pub expiry: String,
}

/// What one writer did in a round.
#[derive(Default)]
pub struct Tally {
    pub acknowledged: u64,
    /// Answers other than 2xx: the write must not be there.
    pub refused: u64,
    pub refusals: Vec<u16>,
}

/// A distinct, Luhn-valid 16-digit PAN for serial `n`.
fn pan(n: u64) -> String {
    let mut digits = format!("{n:09}")
        .into_bytes()
        .into_iter()
        .rev()
        .map(|d| d - b'0');
    d1_domain::card::Pan::allocate("4000002", 16, &mut || digits.next().unwrap_or(0))
        .digits()
        .to_owned()
}

/// Picks the next write and records the entities it creates in the ledger (not yet existing).
fn choose(ledger: &mut Ledger, shared: &Shared, rng: &mut impl Rng, tag: &str) -> Op {
    let serial = shared.serial.fetch_add(1, Ordering::Relaxed);
    let live: Vec<usize> = (0..ledger.consumers.len())
        .filter(|&i| ledger.consumers[i].exists)
        .collect();
    let cards: Vec<usize> = (0..ledger.cards.len())
        .filter(|&i| ledger.cards[i].exists && ledger.cards[i].stage != Stage::Deleted)
        .collect();
    let roll = rng.gen_range(0..100);
    let new_consumer = |ledger: &mut Ledger| {
        ledger.consumers.push(Consumer {
            id: format!("crash-{tag}-{serial}"),
            exists: false,
            pi: None,
            updates: 0,
            cards: Vec::new(),
        });
        ledger.consumers.len() - 1
    };
    let new_card = |ledger: &mut Ledger, consumer: usize| {
        ledger.cards.push(Card {
            id: format!("card-{tag}-{serial}"),
            consumer,
            exists: false,
            stage: Stage::Registered,
            operations: Default::default(),
        });
        ledger.consumers[consumer]
            .cards
            .push(ledger.cards.len() - 1);
        ledger.cards.len() - 1
    };
    if live.is_empty() || roll < 20 {
        let consumer = new_consumer(ledger);
        return Op::Register {
            consumer,
            pi: serial,
        };
    }
    if roll < 40 {
        let consumer = live[rng.gen_range(0..live.len())];
        return Op::Update {
            consumer,
            pi: serial,
        };
    }
    if roll < 52 || cards.is_empty() {
        let card = new_card(ledger, live[rng.gen_range(0..live.len())]);
        return Op::Card {
            card,
            implicit: false,
        };
    }
    if roll < 60 {
        let consumer = new_consumer(ledger);
        let card = new_card(ledger, consumer);
        return Op::Card {
            card,
            implicit: true,
        };
    }
    let card = cards[rng.gen_range(0..cards.len())];
    let to = match ledger.cards[card].stage {
        _ if roll >= 97 => Stage::Deleted,
        Stage::Suspended => Stage::Resumed,
        _ => Stage::Suspended,
    };
    Op::LifeCycle { card, to }
}

/// The method, path and body of `op`.
fn request(
    ledger: &Ledger,
    op: &Op,
    shared: &Shared,
) -> anyhow::Result<(&'static str, String, String)> {
    let base = format!("/banking/v2/issuers/{ISSUER}");
    Ok(match *op {
        Op::Register { consumer, pi } => (
            "PUT",
            format!("{base}/consumers/{}", ledger.consumers[consumer].id),
            json!({"personalInformation": super::ledger::pi(pi)}).to_string(),
        ),
        Op::Update { consumer, pi } => (
            "POST",
            format!(
                "{base}/consumers/{}/operations/update",
                ledger.consumers[consumer].id
            ),
            json!({"personalInformation": super::ledger::pi(pi)}).to_string(),
        ),
        Op::Card { card, .. } => {
            let card = &ledger.cards[card];
            let serial = shared.serial.fetch_add(1, Ordering::Relaxed);
            let plain = json!({"pan": pan(serial), "exp": shared.expiry}).to_string();
            (
                "PUT",
                format!("{base}/cards/{}", card.id),
                json!({
                    "consumerId": ledger.consumers[card.consumer].id,
                    "cardProductId": shared.product,
                    "encryptedData": shared.recipient.seal(&plain)?,
                })
                .to_string(),
            )
        }
        Op::LifeCycle { card, to } => {
            let (name, reason, _) = to.operation();
            (
                "POST",
                format!("{base}/cards/{}/operations:{name}", ledger.cards[card].id),
                json!({ "reasonCode": reason }).to_string(),
            )
        }
    })
}

/// Writes until the connection fails (the node was killed). The write in flight then is left
/// in `ledger.pending`: its outcome is for the next read to tell.
pub async fn run(ledger: &mut Ledger, shared: Arc<Shared>, tag: String, seed: u64) -> Tally {
    let mut tally = Tally::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let Ok(mut connection) = Connection::open(&shared.addr).await else {
        return tally;
    };
    let mut bytes = Vec::new();
    loop {
        let op = choose(ledger, &shared, &mut rng, &tag);
        let Ok((method, path, body)) = request(ledger, &op, &shared) else {
            return tally;
        };
        wire::request(
            &mut bytes,
            method,
            &path,
            &shared.addr,
            Some(&shared.authorization),
            "application/json",
            body.as_bytes(),
        );
        match connection.exchange(&bytes).await {
            Ok(answer) if (200..300).contains(&answer.status) => {
                ledger.apply(&op);
                tally.acknowledged += 1;
            }
            Ok(answer) => {
                tally.refused += 1;
                if tally.refusals.len() < 5 {
                    tally.refusals.push(answer.status);
                }
            }
            Err(_) => {
                ledger.pending = Some(op);
                return tally;
            }
        }
    }
}
