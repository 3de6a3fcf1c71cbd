//! The card life cycle (contract section 6): suspend, resume, delete, renew, replace and
//! activate, each one transaction that locks the card's consumer first (as every card write
//! does), so that two nodes serialise on it. The reason table is the domain's
//! ([`CardOperation::effect`]); this module adds the order of checks around it, the
//! identical-retry rule, and what each effect writes: the card, one trail entry and one
//! notification.
//!
//! The created-card renewal (`CardAction::Renew { data: None }` on a created card) is the same
//! call the automatic renewal job is to make.

mod apply;
mod replace;

use d1_domain::card::lifecycle::Standing;
use d1_domain::card::{CardId, Expiry};
use d1_domain::{ConsumerId, ConsumerState, FieldError};

use futures_util::future::try_join;

use super::consumers;
use super::notify;
use super::trail::{self, Entry};
use crate::db::{known, params, Db, Row};
use crate::sql::lifecycle as sql;
use crate::{
    CardAction, CardModel, CardOperation, CardState, OperateCard, OperateOutcome, ReasonCode,
    StoreError, StoreResult, Vault,
};

/// What `ongoing_operation` holds while a renewal waits for activation.
const RENEWAL: &str = "RENEWAL";

/// The card an operation names, with what its consumer row says of it.
pub(crate) struct Target {
    id: i64,
    consumer_id: ConsumerId,
    /// The card's life of its consumerId differs from the consumer's: the card reads DELETED.
    earlier_life: bool,
    state: CardState,
    state_reason: Option<String>,
    model: CardModel,
    pan_mac: Vec<u8>,
    expiry: String,
    renewed_expiry: Option<String>,
    ongoing: Option<String>,
    sealed: Option<Vec<u8>>,
    product: String,
    replaced_by: Option<String>,
    last_operation: Option<String>,
    last_reason_code: Option<String>,
    last_operation_id: Option<String>,
}

impl Target {
    fn decode(mut r: Row) -> StoreResult<Self> {
        let consumer_generation = r.int(4)?;
        Ok(Self {
            id: r.int(0)?,
            consumer_id: r.parsed(2, |s| ConsumerId::parse(s).map(|(c, _)| c))?,
            earlier_life: r.int(5)? != consumer_generation,
            state: r.parsed(6, |s| known(CardState::parse(s)))?,
            state_reason: r.opt_text(7)?,
            model: r.parsed(8, |s| known(CardModel::parse(s)))?,
            pan_mac: r.blob(9)?,
            expiry: r.text(10)?,
            renewed_expiry: r.opt_text(11)?,
            ongoing: r.opt_text(12)?,
            sealed: r.opt_blob(13)?,
            product: r.text(14)?,
            replaced_by: r.opt_text(15)?,
            last_operation: r.opt_text(16)?,
            last_reason_code: r.opt_text(17)?,
            last_operation_id: r.opt_text(18)?,
        })
    }

    fn standing(&self) -> Standing {
        Standing {
            state: self.state,
            reason: self.state_reason.as_deref().and_then(ReasonCode::parse),
            renewing: self.ongoing.as_deref() == Some(RENEWAL),
        }
    }

    fn refused(&self, state: CardState) -> OperateOutcome {
        OperateOutcome::InvalidState {
            state,
            reason: self.state_reason.clone().filter(|_| state == self.state),
        }
    }

    /// The first operation id again, when `cmd` repeats the operation that produced the
    /// card's current state with the same reasonCode (and, for renew and replace, the same
    /// data).
    fn retried(&self, cmd: &OperateCard, vault: &Vault) -> Option<OperateOutcome> {
        let op = cmd.action.operation();
        let repeated = self.last_operation.as_deref() == Some(op.as_str())
            && self.last_reason_code.as_deref() == Some(cmd.reason_code.as_str());
        let operation_id = self.last_operation_id.clone().filter(|_| repeated)?;
        let mut card_id = cmd.card_id.clone();
        let same = match &cmd.action {
            CardAction::Renew { data: Some(d) } => {
                vault.pan_mac(&cmd.issuer_id, &d.pan) == self.pan_mac
                    && d.expiry.mmyy() == self.expiry
            }
            CardAction::Renew { data: None } => self.ongoing.is_some(),
            CardAction::Replace { new_card_id, .. } => {
                let replaced_by = self.replaced_by.as_deref()?;
                card_id = CardId::parse(replaced_by).ok()?;
                self.state == CardState::Replaced
                    && new_card_id
                        .as_ref()
                        .is_none_or(|n| n.as_str() == replaced_by)
            }
            _ => true,
        };
        same.then_some(OperateOutcome::Retried {
            operation_id,
            card_id,
        })
    }

    /// What the card's model requires of renew and replace bodies.
    fn model_refusal(&self, cmd: &OperateCard, vault: &Vault) -> Option<FieldError> {
        let created = self.model == CardModel::Created;
        match (&cmd.action, created) {
            (CardAction::Renew { data: None }, false) => Some(FieldError::format(
                "encryptedData",
                "is required to renew a registered card",
            )),
            (CardAction::Renew { data: Some(d) }, false) => {
                if vault.pan_mac(&cmd.issuer_id, &d.pan) != self.pan_mac {
                    return Some(FieldError::value(
                        "encryptedData",
                        "must hold the PAN of the card",
                    ));
                }
                let later = Expiry::stored(&self.expiry).is_none_or(|e| d.expiry.is_after(e));
                (!later).then(|| FieldError::value("encryptedData", "must hold a later expiry"))
            }
            (CardAction::Replace { new_card_id, data }, false) => match (new_card_id, data) {
                (None, _) => Some(FieldError::format(
                    "newCardId",
                    "is required to replace a registered card",
                )),
                (_, None) => Some(FieldError::format(
                    "encryptedData",
                    "is required to replace a registered card",
                )),
                _ => None,
            },
            (
                CardAction::Renew { data: Some(_) } | CardAction::Replace { data: Some(_), .. },
                true,
            ) => Some(FieldError::value(
                "encryptedData",
                "a created card's PAN and expiry are the service's to give",
            )),
            _ => None,
        }
    }

    /// The card's sealed data; a card that is not final always has it.
    fn sealed(&self) -> StoreResult<&[u8]> {
        self.sealed.as_deref().ok_or_else(|| StoreError::Corrupt {
            table: "cards",
            column: "sealed".to_owned(),
        })
    }
}

/// The card's row after an operation: what [`sql::APPLY`] writes.
struct After {
    state: CardState,
    state_reason: Option<String>,
    expiry: String,
    renewed_expiry: Option<String>,
    ongoing: Option<String>,
    sealed: Option<Vec<u8>>,
    replaced_by: Option<String>,
}

impl After {
    fn of(card: &Target) -> Self {
        Self {
            state: card.state,
            state_reason: card.state_reason.clone(),
            expiry: card.expiry.clone(),
            renewed_expiry: card.renewed_expiry.clone(),
            ongoing: card.ongoing.clone(),
            sealed: card.sealed.clone(),
            replaced_by: card.replaced_by.clone(),
        }
    }

    /// A final state: the sealed data shredded, no renewal waiting.
    fn ended(card: &Target, state: CardState, code: ReasonCode) -> Self {
        Self {
            state,
            state_reason: Some(code.as_str().to_owned()),
            sealed: None,
            renewed_expiry: None,
            ongoing: None,
            ..Self::of(card)
        }
    }
}

/// Reads the card an operation names.
async fn target<D: Db>(db: &D, cmd: &OperateCard) -> StoreResult<Option<Target>> {
    let keys = params![cmd.issuer_id.as_str(), cmd.card_id.as_str()];
    db.query_opt(&sql::TARGET, keys)
        .await?
        .map(Target::decode)
        .transpose()
}

/// Runs one life-cycle operation. Every check runs before the first write, so a refusal
/// writes nothing.
pub(crate) async fn operate<D: Db>(
    db: &D,
    vault: &Vault,
    cmd: &OperateCard,
    today: time::Date,
    now: i64,
) -> StoreResult<OperateOutcome> {
    let Some(first) = target(db, cmd).await? else {
        return Ok(OperateOutcome::CardNotFound);
    };
    // Read again under the consumer's lock, sent with it and run after it ([`Db`]): only now
    // can no other node change the card. One writer (SQLite) has nobody to race, so its first
    // read stands.
    let locked = consumers::lock(db, &cmd.issuer_id, &first.consumer_id);
    let (consumer, card) = if db.locks_rows() {
        let (consumer, card) = try_join(locked, target(db, cmd)).await?;
        let card = card.ok_or_else(|| db.lost_race())?;
        if card.id != first.id {
            return Err(db.lost_race());
        }
        (consumer, card)
    } else {
        (locked.await?, first)
    };
    let consumer = consumer.ok_or_else(|| db.lost_race())?;
    if let Some(retried) = card.retried(cmd, vault) {
        return Ok(retried);
    }
    if consumer.state == ConsumerState::Deleted {
        return Ok(OperateOutcome::ConsumerDeleted);
    }
    if card.earlier_life {
        return Ok(card.refused(CardState::Deleted));
    }
    if card.state.is_final() {
        return Ok(card.refused(card.state));
    }
    if let Some(refused) = card.model_refusal(cmd, vault) {
        return Ok(OperateOutcome::Refused(refused));
    }
    let op = cmd.action.operation();
    let Some(effect) = op.effect(cmd.reason_code, &card.standing()) else {
        return Ok(card.refused(card.state));
    };
    let replacement = if op == CardOperation::Replace {
        match replace::prepare(db, vault, cmd, &card, &consumer, today).await? {
            Ok(replacement) => Some(replacement),
            Err(refused) => return Ok(refused),
        }
    } else {
        None
    };
    let after = match &replacement {
        Some(r) => After {
            replaced_by: Some(r.card_id.as_str().to_owned()),
            ..After::ended(&card, CardState::Replaced, cmd.reason_code)
        },
        None => apply::apply(db, vault, cmd, &card, &consumer, effect, today).await?,
    };
    let entry = Entry {
        reason: cmd.reason.as_deref(),
        reason_code: Some(cmd.reason_code.as_str()),
        ..Entry::card(op.kind(), cmd.card_id.as_str())
    };
    let owner = (consumer.id, &card.consumer_id);
    let operation_id = trail::operation_id();
    try_join(
        notify::record_card_operation_as(
            db,
            &cmd.issuer_id,
            owner,
            &entry,
            &operation_id,
            &cmd.trail,
            now,
        ),
        apply::write(db, &card, &after, op, cmd.reason_code, &operation_id, now),
    )
    .await?;
    let mut card_id = cmd.card_id.clone();
    if let Some(r) = replacement {
        card_id = r.card_id.clone();
        r.insert(db, cmd, &card, &consumer, now).await?;
    } else if op == CardOperation::Delete {
        leave_directory(db, cmd, &card.consumer_id, cmd.card_id.as_str()).await?;
    }
    Ok(OperateOutcome::Done {
        operation_id,
        card_id,
    })
}

/// Takes a card out of the simulated Click to Pay directory.
async fn leave_directory<D: Db>(
    db: &D,
    cmd: &OperateCard,
    consumer: &ConsumerId,
    card_id: &str,
) -> StoreResult<()> {
    let keys = params![cmd.issuer_id.as_str(), consumer.as_str(), card_id];
    db.exec(&sql::LEAVE_DIRECTORY, keys).await?;
    Ok(())
}
