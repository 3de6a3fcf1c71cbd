//! What every handler shares: the store, the keys, the authenticator, settings and counters.

use std::sync::Arc;
use std::time::Duration;

use d1_domain::card::CardProductId;
use d1_domain::IssuerId;
use d1_store::{IssuerRecord, ProductRecord, Store, StoreError};
use moka::sync::Cache;

use crate::auth::Authenticator;
use crate::clicktopay::directory::SimulatedDirectory;
use crate::clicktopay::ClickToPay;
use crate::config::{Config, ISSUER_CACHE_TTL};
use crate::keyring::Keyring;
use crate::metrics::Metrics;

/// The shared state of the app.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The fields behind [`AppState`].
pub struct Inner {
    pub store: Arc<dyn Store>,
    pub keyring: Arc<Keyring>,
    pub auth: Authenticator,
    pub config: Config,
    pub metrics: Metrics,
    /// This node's rate limits.
    pub limits: crate::limits::Limits,
    /// Click to Pay's background side: the routes wake it, `serve` starts it.
    pub click_to_pay: Arc<ClickToPay>,
    issuers: Cache<IssuerId, IssuerRecord>,
    products: Cache<(IssuerId, String), ProductRecord>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Assembles the state, with the outbound client and the simulated directory.
    ///
    /// # Errors
    /// If the outbound HTTP client cannot be built.
    pub fn new(
        store: Arc<dyn Store>,
        keyring: Arc<Keyring>,
        config: Config,
    ) -> anyhow::Result<Self> {
        let client = d1_issuer_client::HttpIssuerClient::new(
            config.issuer_backend.client_options(),
            crate::wire::pi::consumer_info,
        )?;
        let click_to_pay = Arc::new(ClickToPay::new(
            Arc::clone(&store),
            Arc::new(client),
            Arc::new(SimulatedDirectory::new(Arc::clone(&store))),
            config.jobs.clone(),
        ));
        let auth = Authenticator::new(
            Arc::clone(&store),
            Arc::clone(&keyring),
            config.audiences(),
            Duration::from_secs(config.auth.cache_ttl_secs),
        );
        Ok(Self(Arc::new(Inner {
            store,
            click_to_pay,
            keyring,
            auth,
            limits: crate::limits::Limits::new(&config.limits),
            config,
            metrics: Metrics::default(),
            products: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(ISSUER_CACHE_TTL)
                .build(),
            issuers: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(ISSUER_CACHE_TTL)
                .build(),
        })))
    }

    /// An issuer's card product, cached like issuers. Unknown products are not cached.
    ///
    /// # Errors
    /// If the store fails.
    pub async fn product(
        &self,
        issuer: &IssuerId,
        product: &CardProductId,
    ) -> Result<Option<ProductRecord>, StoreError> {
        let key = (issuer.clone(), product.as_str().to_owned());
        if let Some(hit) = self.products.get(&key) {
            return Ok(Some(hit));
        }
        let found = self.store.product(issuer, product).await?;
        if let Some(record) = &found {
            self.products.insert(key, record.clone());
        }
        Ok(found)
    }

    /// An issuer's settings read from the store now, refreshing the cache: for a refusal that
    /// a setting changed through the CLI a moment ago may lift.
    ///
    /// # Errors
    /// If the store fails.
    pub async fn issuer_now(&self, issuer: &IssuerId) -> Result<Option<IssuerRecord>, StoreError> {
        self.issuers.invalidate(issuer);
        self.issuer(issuer).await
    }

    /// An issuer's settings, cached briefly. Unknown issuers are not cached.
    ///
    /// # Errors
    /// If the store fails.
    pub async fn issuer(&self, issuer: &IssuerId) -> Result<Option<IssuerRecord>, StoreError> {
        if let Some(hit) = self.issuers.get(issuer) {
            return Ok(Some(hit));
        }
        let found = self.store.issuer(issuer).await?;
        if let Some(record) = &found {
            self.issuers.insert(issuer.clone(), record.clone());
        }
        Ok(found)
    }
}
