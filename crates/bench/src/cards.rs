//! Register card requests prepared before the timed window: each a distinct PAN in a fresh
//! JWE (its own ephemeral key), sealed the way an issuer would (see [`crate::seal`]).
//! Half are for consumers registered (with PI) before the timed window, the usual order of a
//! bank's calls; half are for new random consumerIds, which the card registers implicitly.
//! A third kind of run is the card life cycle: suspend and resume pairs on cards registered
//! before the timed window. Notifications are on throughout: `issuer-sim` is the issuer's
//! backend and receives one item for every card operation (contract section 9a).

use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;

use crate::load::{write_pi_body, Prepared};
use crate::seal::Recipient;
use crate::service::{Service, ISSUER};
use crate::sim::Simulator;
use crate::wire::request_once;

pub const PRODUCT: &str = "bench-visa";
/// Cards the life-cycle run suspends and resumes, registered before the timed window.
const LIFE_CYCLE_CARDS: usize = 20_000;
/// Requests, at the least, between a card's suspend and its resume: far more than are ever in
/// flight, so that the suspend has been answered before its resume is sent.
const LAG: usize = 1_000;

/// An expiry three years ahead, `MMYY`.
pub fn expiry() -> String {
    let today = time::OffsetDateTime::now_utc();
    format!(
        "{:02}{:02}",
        u8::from(today.month()),
        (today.year() + 3) % 100
    )
}

/// The requests of one card: the Register card itself and, for a card of a consumer to be
/// registered beforehand (even `n`), that consumer's registration.
pub struct CardRequests {
    pub consumer: Option<(String, String)>,
    pub card: (String, String),
}

/// The PAN of request `n`, distinct per `n`: the BIN, the counter, the Luhn digit.
pub fn pan(n: usize) -> d1_domain::card::Pan {
    let mut digits = format!("{n:09}")
        .into_bytes()
        .into_iter()
        .rev()
        .map(|d| d - b'0')
        .collect::<Vec<_>>()
        .into_iter();
    d1_domain::card::Pan::allocate("4000001", 16, &mut || digits.next().unwrap_or(0))
}

/// The requests of card `n`: with its consumer's registration (with PI) for an even `n`.
pub fn request(recipient: &Recipient, n: usize, exp: &str) -> anyhow::Result<CardRequests> {
    let pan = pan(n);
    let plain = serde_json::json!({"pan": pan.digits(), "exp": exp}).to_string();
    let jwe = recipient.seal(&plain)?;
    let consumer_id = uuid::Uuid::new_v4().to_string();
    let consumer = if n.is_multiple_of(2) {
        let mut pi = Vec::new();
        write_pi_body(&mut pi, n as u64);
        Some((
            format!("/banking/v2/issuers/{ISSUER}/consumers/{consumer_id}"),
            String::from_utf8(pi)?,
        ))
    } else {
        None
    };
    let body = serde_json::json!({"consumerId": consumer_id, "cardProductId": PRODUCT, "encryptedData": jwe});
    Ok(CardRequests {
        consumer,
        card: (
            format!(
                "/banking/v2/issuers/{ISSUER}/cards/{}",
                uuid::Uuid::new_v4().simple()
            ),
            body.to_string(),
        ),
    })
}

/// The prepared requests of the `cards` scenario.
pub struct Cards {
    /// What is sent before the timed window, in order: Register consumer, with PI, for the
    /// consumers of the first kind, then the cards of the life-cycle run.
    pub before: Vec<(&'static str, Prepared)>,
    /// The kinds of card run, in the order they alternate with the registrations.
    pub kinds: Vec<Kind>,
    /// The issuer backend receiving the notifications.
    pub sim: Simulator,
}

/// One kind of card run.
pub struct Kind {
    pub name: &'static str,
    /// What its ratio to the registrations is.
    pub ratio: &'static str,
    pub requests: Arc<Prepared>,
}

/// The life-cycle requests over the pool `cards`: first the suspends of the first `LAG` cards,
/// then, over and over, pairs of the resume of the card suspended `LAG` pairs before and the
/// suspend of the next card. A card is suspended again only a whole pass of the pool after its
/// resume, so the pairs last as long as any run, and the service allows every one of them.
fn life_cycle(cards: &[String]) -> Prepared {
    let operation = |name: &str, card: usize| {
        (
            format!(
                "/banking/v2/issuers/{ISSUER}/cards/{}/operations:{name}",
                cards[card % cards.len()]
            ),
            r#"{"reasonCode":"USER_DECISION"}"#.to_owned(),
        )
    };
    let first = (0..LAG).map(|t| operation("suspend", t)).collect();
    let cycle = (LAG..LAG + cards.len())
        .flat_map(|t| [operation("resume", t - LAG), operation("suspend", t)])
        .collect();
    Prepared::cycling("POST", first, cycle)
}

/// Onboards the product, starts the issuer backend with notifications of every card operation
/// in batches of up to `batch`, and prepares `count` card requests of each kind on every core.
pub async fn prepare(service: &Service, count: usize, batch: u16) -> anyhow::Result<Cards> {
    service.add_product(PRODUCT, "VISA", "400000")?;
    let sim = Simulator::start(service.binary(), serde_json::Map::new(), 0)?;
    let batch = batch.to_string();
    sim.connect(
        service,
        &[
            "--card-notifications",
            "all",
            "--notification-batch-size",
            &batch,
        ],
    )?;
    let (status, text) = request_once(
        &service.addr,
        "GET",
        "/.well-known/jwks.json",
        "application/json",
        String::new(),
    )
    .await?;
    if status != 200 {
        bail!("jwks answered {status}");
    }
    let jwks: serde_json::Value = serde_json::from_str(&text)?;
    let recipient = Recipient::from_jwks(&jwks)?;
    let started = Instant::now();
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let exp = expiry();
    let total = count * 2 + LIFE_CYCLE_CARDS;
    let chunks: Vec<Vec<CardRequests>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (recipient, exp) = (&recipient, &exp);
                scope.spawn(move || {
                    (t..total)
                        .step_by(threads)
                        .map(|n| request(recipient, n, exp))
                        .collect::<anyhow::Result<Vec<_>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a preparing thread panicked")))
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    println!(
        "\nprepared {total} card requests (distinct PANs, fresh JWEs) in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let (mut consumers, mut for_registered, mut implicit) = (Vec::new(), Vec::new(), Vec::new());
    let mut requests = chunks.into_iter().flatten();
    let life_cycle_cards: Vec<(String, String)> = requests
        .by_ref()
        .take(LIFE_CYCLE_CARDS)
        .map(|r| r.card)
        .collect();
    for requests in requests {
        if let Some(consumer) = requests.consumer {
            consumers.push(consumer);
            for_registered.push(requests.card);
        } else {
            implicit.push(requests.card);
        }
    }
    let card_ids: Vec<String> = life_cycle_cards
        .iter()
        .filter_map(|(path, _)| path.rsplit('/').next().map(str::to_owned))
        .collect();
    let operations = life_cycle(&card_ids);
    Ok(Cards {
        before: vec![
            (
                "consumers of the cards for registered consumers",
                Prepared::new(consumers),
            ),
            (
                "cards of the life-cycle runs",
                Prepared::new(life_cycle_cards),
            ),
        ],
        sim,
        kinds: vec![
            Kind {
                name: "life-cycle operations",
                ratio: "target >= 0.8x; suspend and resume pairs, each notified",
                requests: Arc::new(operations),
            },
            Kind {
                name: "cards for registered consumers",
                ratio: "target >= 0.5x; each card is a fresh JWE",
                requests: Arc::new(Prepared::new(for_registered)),
            },
            Kind {
                name: "cards registering their consumer",
                ratio: "each request registers a consumer and a card, from a fresh JWE",
                requests: Arc::new(Prepared::new(implicit)),
            },
        ],
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::{life_cycle, LAG};

    /// Three passes of the pool: each suspend finds its card active, each resume finds it
    /// suspended, and a resume comes at least `LAG` requests after its suspend.
    #[test]
    fn the_life_cycle_pairs_are_always_allowed() {
        let cards: Vec<String> = (0..LAG * 3).map(|n| format!("card{n}")).collect();
        let pool = life_cycle(&cards);
        let mut suspended_at: HashMap<String, usize> = HashMap::new();
        for n in 0..cards.len() * 6 + LAG {
            let (path, _) = pool.take().expect("a cycling pool does not run out");
            let (card, operation) = path
                .rsplit_once("/operations:")
                .map(|(head, op)| (head.rsplit('/').next().unwrap_or_default(), op))
                .expect("an operation path");
            match operation {
                "suspend" => {
                    let before = suspended_at.insert(card.to_owned(), n);
                    assert!(before.is_none(), "{card} suspended twice, at request {n}");
                }
                "resume" => {
                    let at = suspended_at.remove(card);
                    let at = at.unwrap_or_else(|| panic!("{card} resumed while active"));
                    assert!(n - at >= LAG, "{card} resumed {} requests after", n - at);
                }
                other => panic!("unexpected operation {other}"),
            }
        }
        assert_eq!(pool.left(), usize::MAX);
    }
}
