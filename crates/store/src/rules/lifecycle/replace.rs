//! Replace: the new card, ACTIVE, of the same consumer and product, with its own
//! CARD_REGISTER or CARD_CREATE entry and notification; a Click to Pay enrolment of the old
//! card moves to it.

use d1_domain::card::{CardId, Expiry, Pan, Scheme};
use d1_domain::{CorrelationId, OperationKind, UserId};
use futures_util::future::try_join;

use super::apply::card_product;
use super::{leave_directory, OperateCard, Target};
use crate::db::{params, Db};
use crate::rows::{ConsumerRow, NewCard};
use crate::rules::cards;
use crate::rules::notify;
use crate::rules::trail::{self, Entry};
use crate::sql::clicktopay as c2p;
use crate::{
    CardAction, CardModel, CardState, OperateOutcome, ReasonCode, StoreError, StoreResult, Vault,
};

/// The replacement, checked and sealed, ready to insert once the old card is REPLACED.
pub(super) struct Replacement {
    pub card_id: CardId,
    pan: Pan,
    pan_mac: Vec<u8>,
    expiry: Expiry,
    scheme: Scheme,
    sealed: Vec<u8>,
}

/// Checks the replacement's id and PAN (a registered card's from the body, a created card's
/// allocated in the product's range) and seals its data, keeping the old card's holder data.
pub(super) async fn prepare<D: Db>(
    db: &D,
    vault: &Vault,
    cmd: &OperateCard,
    card: &Target,
    consumer: &ConsumerRow,
    today: time::Date,
) -> StoreResult<Result<Replacement, OperateOutcome>> {
    let CardAction::Replace { new_card_id, data } = &cmd.action else {
        return Err(StoreError::Other(anyhow::anyhow!("not a replace")));
    };
    let issuer = &cmd.issuer_id;
    let card_id = match new_card_id {
        Some(id) => id.clone(),
        None => crate::card::random_card_id()?,
    };
    // The card being replaced holds its id until the replace ends, so a replacement under
    // that id would name itself in `replaces`; the id may be reused by a later registration.
    if card_id == cmd.card_id {
        return Ok(Err(OperateOutcome::Conflict(
            "the newCardId is the id of the card being replaced",
        )));
    }
    if cards::live_card(db, issuer, &card_id).await?.is_some() {
        return Ok(Err(OperateOutcome::Conflict(
            "the newCardId belongs to another card",
        )));
    }
    let (pan, pan_mac, expiry, scheme) = match (card.model, data) {
        (CardModel::Registered, Some(d)) => {
            let mac = vault.pan_mac(issuer, &d.pan);
            if cards::pan_known(db, issuer, &mac).await? {
                return Ok(Err(OperateOutcome::Conflict(
                    "the PAN is registered, or was deleted, under another cardId",
                )));
            }
            (d.pan.clone(), mac, d.expiry, Scheme::of(&d.pan))
        }
        (CardModel::Created, None) => {
            let product = card_product(db, cmd, card).await?;
            let Some((pan, mac)) = cards::free_pan(db, vault, issuer, &product).await? else {
                return Ok(Err(OperateOutcome::Conflict(
                    "no free PAN is left in the product's range",
                )));
            };
            let expiry = Expiry::months_after(today, product.validity_months);
            (pan, mac, expiry, product.scheme)
        }
        _ => return Err(StoreError::Other(anyhow::anyhow!("replace body unchecked"))),
    };
    let key = consumer.data_key(vault, issuer, &card.consumer_id)?;
    let from = cmd.card_id.as_str();
    let sealed = vault.reseal_card(
        &key,
        issuer,
        from,
        card.sealed()?,
        &card_id,
        Some(&pan),
        expiry,
    )?;
    Ok(Ok(Replacement {
        card_id,
        pan,
        pan_mac,
        expiry,
        scheme,
        sealed,
    }))
}

impl Replacement {
    /// Stores the new card with its own entry and notification, and moves a Click to Pay
    /// enrolment of the old card to it: the old card leaves the directory and the new one is
    /// enrolled by a job, as a fresh enrolment would be.
    pub(super) async fn insert<D: Db>(
        &self,
        db: &D,
        cmd: &OperateCard,
        old: &Target,
        consumer: &ConsumerRow,
        now: i64,
    ) -> StoreResult<()> {
        let row = NewCard {
            issuer: &cmd.issuer_id,
            card_id: &self.card_id,
            consumer_ref: consumer.id,
            generation: consumer.generation,
            product: &old.product,
            state: CardState::Active,
            pan_mac: &self.pan_mac,
            sealed: &self.sealed,
            pan: &self.pan,
            expiry: self.expiry,
            scheme: self.scheme,
            model: old.model,
            replaces: Some(cmd.card_id.as_str()),
        };
        let kind = match old.model {
            CardModel::Registered => OperationKind::CardRegister,
            CardModel::Created => OperationKind::CardCreate,
        };
        let entry = Entry::card(kind, self.card_id.as_str());
        let owner = (consumer.id, &old.consumer_id);
        try_join(
            cards::insert_card(db, &row, now),
            notify::record_card_operation(db, &cmd.issuer_id, owner, &entry, &cmd.trail, now),
        )
        .await?;
        self.move_enrolment(db, cmd, old, consumer, now).await
    }

    async fn move_enrolment<D: Db>(
        &self,
        db: &D,
        cmd: &OperateCard,
        old: &Target,
        consumer: &ConsumerRow,
        now: i64,
    ) -> StoreResult<()> {
        let enrolled = db
            .query_opt(
                &c2p::EXISTING_ENROLMENT,
                params![consumer.id, cmd.card_id.as_str()],
            )
            .await?;
        if enrolled.is_none() {
            return Ok(());
        }
        leave_directory(db, cmd, &old.consumer_id, cmd.card_id.as_str()).await?;
        let operation_id = trail::operation_id();
        let correlation = cmd.trail.correlation_id.as_ref().map(CorrelationId::as_str);
        db.exec(
            &c2p::PENDING_ENROLMENT,
            params![
                consumer.id,
                &operation_id,
                now,
                self.card_id.as_str(),
                None::<&str>,
                // The enrolment is moved by the issuer's replace, not asked for by the user.
                ReasonCode::IssuerDecision.as_str(),
                correlation,
                cmd.trail.user_id.as_ref().map(UserId::as_str),
                cmd.trail
                    .aggregator_id
                    .as_ref()
                    .map(d1_domain::IssuerId::as_str),
            ],
        )
        .await?;
        db.exec(
            &c2p::ENROL_JOB,
            params![
                cmd.issuer_id.as_str(),
                consumer.id,
                &operation_id,
                self.card_id.as_str(),
                None::<&[u8]>,
                correlation,
                now,
            ],
        )
        .await?;
        Ok(())
    }
}
