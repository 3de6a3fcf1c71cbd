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
    CardAction, CardModel, CardState, EnrolmentDetails, OperateOutcome, ReasonCode, Sealed,
    StoreError, StoreResult, Vault,
};
use d1_crypto::envelope::DataKey;
use d1_crypto::policy::directory_context;

/// The replacement, checked and sealed, ready to insert once the old card is REPLACED.
pub(super) struct Replacement {
    pub card_id: CardId,
    pan: Pan,
    pan_mac: Vec<u8>,
    expiry: Expiry,
    scheme: Scheme,
    sealed: Vec<u8>,
    /// The old card's Click to Pay enrolment, pending or done, that moves to the new card.
    enrolment: Option<Moved>,
}

/// An enrolment that moves: what the old card's enrolment was given (billing address,
/// cardholder name), sealed for the job that enrols the new card, if anything.
struct Moved {
    given: Option<Vec<u8>>,
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
                    "the PAN is registered to another card, or was deleted, and cannot be registered again",
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
    let enrolment = moved_enrolment(db, vault, cmd, card, consumer, &key).await?;
    Ok(Ok(Replacement {
        card_id,
        pan,
        pan_mac,
        expiry,
        scheme,
        sealed,
        enrolment,
    }))
}

/// The old card's enrolment as the directory holds it: the fields [`EnrolmentDetails`] names
/// (the server's `EnrolledCard` writes them; the PAN and expiry it also holds are left).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Enrolled {
    billing_address: d1_domain::Address,
    cardholder_name: String,
}

/// The old card's enrolment, if it has one (PENDING or SUCCESSFUL), with what it was given
/// (billing address, cardholder name) sealed for the job that enrols the new card, so the move
/// does not depend on the consumer's PI holding an address: from the card's directory entry
/// once enrolled, else from its pending job. An entry that does not open is logged and carries
/// nothing; the new card's enrolment then takes what the PI gives, as a fresh one would.
async fn moved_enrolment<D: Db>(
    db: &D,
    vault: &Vault,
    cmd: &OperateCard,
    card: &Target,
    consumer: &ConsumerRow,
    key: &DataKey,
) -> StoreResult<Option<Moved>> {
    let enrolled = db
        .query_opt(
            &c2p::EXISTING_ENROLMENT,
            params![consumer.id, cmd.card_id.as_str()],
        )
        .await?;
    if enrolled.is_none() {
        return Ok(None);
    }
    let (issuer, holder, old) = (&cmd.issuer_id, &card.consumer_id, cmd.card_id.as_str());
    let entry = db
        .query_opt(
            &c2p::DIRECTORY_CARD,
            params![issuer.as_str(), holder.as_str(), old],
        )
        .await?;
    let Some(mut entry) = entry else {
        let job = db
            .query_opt(&c2p::ENROL_JOB_DETAILS, params![consumer.id, old])
            .await?;
        let given = job.map_or(Ok(None), |mut r| r.opt_blob(0))?;
        return Ok(Some(Moved { given }));
    };
    let sealed = Sealed {
        wrapped_key: entry.blob(0)?,
        sealed: entry.blob(1)?,
    };
    let context = directory_context(issuer.as_str(), holder.as_str(), Some(old));
    let opened = vault
        .open_alone(&context, &sealed)
        .ok()
        .and_then(|plain| serde_json::from_slice::<Enrolled>(&plain).ok());
    let Some(enrolled) = opened else {
        tracing::warn!(
            "a replaced card's directory entry does not open; its enrolment moves without it"
        );
        return Ok(Some(Moved { given: None }));
    };
    let details = EnrolmentDetails {
        billing_address: Some(enrolled.billing_address),
        cardholder_name: Some(enrolled.cardholder_name),
    };
    let given = vault.seal_enrolment(key, issuer, holder, &details)?;
    Ok(Some(Moved { given: Some(given) }))
}

impl Replacement {
    /// Stores the new card with its own entry and notification, and moves a Click to Pay
    /// enrolment of the old card to it: the old card leaves the directory and the new one is
    /// enrolled by a job, as a fresh enrolment would be, given what the old one was given.
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
        let Some(moved) = &self.enrolment else {
            return Ok(());
        };
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
                moved.given.as_deref(),
                correlation,
                now,
            ],
        )
        .await?;
        Ok(())
    }
}
