//! What one crash-test client knows it wrote: its consumers and cards as of their last
//! acknowledged write, and at most one write whose outcome is unknown (in flight when the
//! node was killed). From it, [`Ledger::expected`] says what a read must find.

use std::collections::BTreeMap;

use serde_json::{json, Value};

/// A consumer a client owns.
#[derive(Clone)]
pub struct Consumer {
    pub id: String,
    /// Whether its registration was acknowledged.
    pub exists: bool,
    /// The PI version of its last acknowledged write; `None` for a consumer registered
    /// implicitly by a card (PI source ISSUER).
    pub pi: Option<u64>,
    /// Acknowledged Update consumer calls.
    pub updates: u32,
    /// Its cards, as indices into [`Ledger::cards`].
    pub cards: Vec<usize>,
}

/// Where a card's life cycle stands, as its last acknowledged write left it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Stage {
    Registered,
    Suspended,
    Resumed,
    Deleted,
}

/// A card a client owns.
#[derive(Clone)]
pub struct Card {
    pub id: String,
    pub consumer: usize,
    pub exists: bool,
    pub stage: Stage,
    /// Acknowledged life-cycle operations, by trail name.
    pub operations: BTreeMap<&'static str, u32>,
}

/// One write, as sent.
#[derive(Clone, Debug)]
pub enum Op {
    /// Register consumer (PUT with PI) of a new consumer.
    Register { consumer: usize, pi: u64 },
    /// Update consumer with a new PI version.
    Update { consumer: usize, pi: u64 },
    /// Register card (PUT with a JWE); `implicit` when it also registers its new consumer.
    Card { card: usize, implicit: bool },
    /// A life-cycle operation taking the card to `to`.
    LifeCycle { card: usize, to: Stage },
}

/// A client's ledger.
#[derive(Clone, Default)]
pub struct Ledger {
    pub consumers: Vec<Consumer>,
    pub cards: Vec<Card>,
    /// The write whose outcome is unknown, if any.
    pub pending: Option<Op>,
}

/// What a read of one consumer finds: its PI, its cards' states and its trail, counted.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// `None`: not found. Else its PI as read (`Value::Null` without PI).
    pub consumer: Option<Value>,
    /// Each card's `(state, stateReason)`, `None` if not found.
    pub cards: Vec<Option<(String, Option<String>)>>,
    /// Trail entries by `(operation, cardId for card operations)`.
    pub trail: BTreeMap<(String, Option<String>), u32>,
}

/// The PI of version `v`: every field carries `v`, so a mix of two versions shows.
pub fn pi(v: u64) -> Value {
    json!({
        "language": "en-GB",
        "firstName": format!("First{v}"),
        "lastName": format!("Last{v}"),
        "email": format!("crash{v}@example.com"),
        "mobilePhoneNumber": {"countryCode": "+44", "phoneNumber": format!("77{:08}", v % 100_000_000)},
        "residencyAddress": {"line1": format!("{v} Crash Street"), "city": "London", "countryCode": "GB"}
    })
}

impl Stage {
    /// The operation that leads here: its path name, body reason and trail name.
    pub fn operation(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Suspended => ("suspend", "USER_DECISION", "CARD_SUSPEND"),
            Self::Resumed => ("resume", "ISSUER_DECISION", "CARD_RESUME"),
            Self::Deleted => ("delete", "CLOSED_CARD", "CARD_DELETE"),
            Self::Registered => ("", "", "CARD_REGISTER"),
        }
    }

    /// `(state, stateReason)` as a read shows it.
    fn read_as(self) -> (String, Option<String>) {
        let (state, reason) = match self {
            Self::Registered => ("ACTIVE", None),
            Self::Suspended => ("SUSPENDED", Some("USER_DECISION")),
            Self::Resumed => ("ACTIVE", Some("ISSUER_DECISION")),
            Self::Deleted => ("DELETED", Some("CLOSED_CARD")),
        };
        (state.to_owned(), reason.map(str::to_owned))
    }
}

impl Ledger {
    /// Records `op` as applied.
    pub fn apply(&mut self, op: &Op) {
        match *op {
            Op::Register { consumer, pi } => {
                let c = &mut self.consumers[consumer];
                c.exists = true;
                c.pi = Some(pi);
            }
            Op::Update { consumer, pi } => {
                let c = &mut self.consumers[consumer];
                c.pi = Some(pi);
                c.updates += 1;
            }
            Op::Card { card, implicit } => {
                self.cards[card].exists = true;
                if implicit {
                    self.consumers[self.cards[card].consumer].exists = true;
                }
            }
            Op::LifeCycle { card, to } => {
                let c = &mut self.cards[card];
                c.stage = to;
                *c.operations.entry(to.operation().2).or_default() += 1;
            }
        }
    }

    /// The consumer an op touches.
    pub fn touched(&self, op: &Op) -> usize {
        match *op {
            Op::Register { consumer, .. } | Op::Update { consumer, .. } => consumer,
            Op::Card { card, .. } | Op::LifeCycle { card, .. } => self.cards[card].consumer,
        }
    }

    /// What a read of consumer `i` must find if the ledger is right.
    pub fn expected(&self, i: usize) -> Snapshot {
        let c = &self.consumers[i];
        let mut trail = BTreeMap::new();
        let mut cards = Vec::new();
        if c.exists {
            trail.insert(("REGISTER".to_owned(), None), 1);
            if c.updates > 0 {
                trail.insert(("UPDATE".to_owned(), None), c.updates);
            }
        }
        for &k in &c.cards {
            let card = &self.cards[k];
            if !card.exists {
                cards.push(None);
                continue;
            }
            cards.push(Some(card.stage.read_as()));
            trail.insert(("CARD_REGISTER".to_owned(), Some(card.id.clone())), 1);
            for (name, n) in &card.operations {
                trail.insert(((*name).to_owned(), Some(card.id.clone())), *n);
            }
        }
        Snapshot {
            consumer: c.exists.then(|| c.pi.map_or(Value::Null, pi)),
            cards,
            trail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger() -> Ledger {
        let mut ledger = Ledger::default();
        ledger.consumers.push(Consumer {
            id: "c".into(),
            exists: false,
            pi: None,
            updates: 0,
            cards: vec![0],
        });
        ledger.cards.push(Card {
            id: "k".into(),
            consumer: 0,
            exists: false,
            stage: Stage::Registered,
            operations: BTreeMap::new(),
        });
        ledger
    }

    #[test]
    fn an_implicit_card_brings_its_consumer_and_both_trail_entries() {
        let mut ledger = ledger();
        let before = ledger.expected(0);
        assert_eq!(before.consumer, None);
        assert!(before.trail.is_empty());
        ledger.apply(&Op::Card {
            card: 0,
            implicit: true,
        });
        let after = ledger.expected(0);
        assert_eq!(after.consumer, Some(Value::Null));
        assert_eq!(after.cards, [Some(("ACTIVE".to_owned(), None))]);
        assert_eq!(after.trail.len(), 2);
        assert_ne!(before, after);
    }

    #[test]
    fn an_operation_changes_state_reason_and_trail_together() {
        let mut ledger = ledger();
        ledger.apply(&Op::Register { consumer: 0, pi: 7 });
        ledger.apply(&Op::Card {
            card: 0,
            implicit: false,
        });
        ledger.apply(&Op::Update { consumer: 0, pi: 8 });
        ledger.apply(&Op::LifeCycle {
            card: 0,
            to: Stage::Suspended,
        });
        let found = ledger.expected(0);
        assert_eq!(found.consumer, Some(pi(8)));
        assert_eq!(
            found.cards,
            [Some((
                "SUSPENDED".to_owned(),
                Some("USER_DECISION".to_owned())
            ))]
        );
        let key = ("CARD_SUSPEND".to_owned(), Some("k".to_owned()));
        assert_eq!(found.trail.get(&key), Some(&1));
        assert_eq!(found.trail.get(&("UPDATE".to_owned(), None)), Some(&1));
        assert_ne!(pi(7), pi(8));
    }
}
