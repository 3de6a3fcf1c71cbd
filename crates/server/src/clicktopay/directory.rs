//! The Click to Pay directory: an interface, because a real deployment enrols cards with the
//! card network's directory, and [`SimulatedDirectory`], the built-in stand-in. The simulated
//! directory stands for that outside system, so it is the one place where fetched PI may
//! rest: in its own tables, each profile and card sealed under its own data key.

use std::sync::Arc;

use async_trait::async_trait;
use d1_domain::{ConsumerId, IssuerId};
use d1_store::{DirectoryWrite, Sealed, Store};

use super::profile::{EnrolledCard, Profile};

/// A directory that did not take a request.
#[derive(Debug, thiserror::Error)]
#[error("the Click to Pay directory failed: {0}")]
pub struct DirectoryError(String);

/// A Click to Pay directory. Every call is idempotent: a job that is run again after a crash
/// repeats its calls.
#[async_trait]
pub trait Directory: Send + Sync + 'static {
    /// Enrols a card; the consumer's first enrolment creates its profile, later ones add
    /// cards (and refresh the profile). Whether the profile is new.
    async fn enrol(
        &self,
        issuer: &IssuerId,
        consumer: &ConsumerId,
        profile: &Profile,
        card_id: &str,
        card: &EnrolledCard,
    ) -> Result<bool, DirectoryError>;

    /// Replaces an enrolled consumer's profile; nothing for one without a profile. Whether
    /// there was one.
    async fn update_profile(
        &self,
        issuer: &IssuerId,
        consumer: &ConsumerId,
        profile: &Profile,
    ) -> Result<bool, DirectoryError>;

    /// Removes a consumer's profile and its cards. Whether there was one.
    async fn remove_profile(
        &self,
        issuer: &IssuerId,
        consumer: &ConsumerId,
    ) -> Result<bool, DirectoryError>;
}

/// The local simulated directory, kept in the registry's database.
pub struct SimulatedDirectory {
    store: Arc<dyn Store>,
}

fn failed(e: impl std::fmt::Display) -> DirectoryError {
    DirectoryError(e.to_string())
}

/// What a profile's or card's seal is bound to (the policy lives in `d1_crypto::policy`).
#[must_use]
pub fn context(issuer: &IssuerId, consumer: &ConsumerId, card: Option<&str>) -> String {
    d1_crypto::policy::directory_context(issuer.as_str(), consumer.as_str(), card)
}

impl SimulatedDirectory {
    /// A directory in `store`'s database.
    #[must_use]
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    fn seal(&self, context: &str, value: &impl serde::Serialize) -> Result<Sealed, DirectoryError> {
        let plain = zeroize::Zeroizing::new(serde_json::to_vec(value).map_err(failed)?);
        self.store
            .vault()
            .seal_alone(context, &plain)
            .map_err(failed)
    }

    async fn put(
        &self,
        issuer: &IssuerId,
        consumer: &ConsumerId,
        profile: &Profile,
        card: Option<(&str, &EnrolledCard)>,
    ) -> Result<bool, DirectoryError> {
        let sealed_card = card
            .map(|(id, card)| {
                self.seal(&context(issuer, consumer, Some(id)), card)
                    .map(|s| (id.to_owned(), s))
            })
            .transpose()?;
        let write = DirectoryWrite {
            issuer_id: issuer.clone(),
            consumer_id: consumer.clone(),
            profile: self.seal(&context(issuer, consumer, None), profile)?,
            card: sealed_card,
        };
        self.store
            .directory_put(write, card.is_some())
            .await
            .map_err(failed)
    }
}

#[async_trait]
impl Directory for SimulatedDirectory {
    async fn enrol(
        &self,
        issuer: &IssuerId,
        consumer: &ConsumerId,
        profile: &Profile,
        card_id: &str,
        card: &EnrolledCard,
    ) -> Result<bool, DirectoryError> {
        let existed = self
            .put(issuer, consumer, profile, Some((card_id, card)))
            .await?;
        Ok(!existed)
    }

    async fn update_profile(
        &self,
        issuer: &IssuerId,
        consumer: &ConsumerId,
        profile: &Profile,
    ) -> Result<bool, DirectoryError> {
        self.put(issuer, consumer, profile, None).await
    }

    async fn remove_profile(
        &self,
        issuer: &IssuerId,
        consumer: &ConsumerId,
    ) -> Result<bool, DirectoryError> {
        self.store
            .directory_remove(issuer, consumer)
            .await
            .map_err(failed)
    }
}
