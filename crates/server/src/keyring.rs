//! The service's own keys: the ES256 key that signs access tokens and the P-256 JWE key(s)
//! issuers encrypt card data to. They live in the database, wrapped by the KEK, so every node
//! on one database shares them; each node holds them unwrapped in memory.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use anyhow::Context;
use d1_crypto::ec::{AgreementKey, Jwk, PublicKey, SigningKey};
use d1_store::{now_ms, KeyPurpose, ServiceKeyRecord, Store};
use serde::Serialize;

fn new_kid(prefix: &str) -> anyhow::Result<String> {
    let bytes: [u8; 8] = d1_crypto::random_bytes().context("random kid")?;
    Ok(format!(
        "{prefix}-{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

/// A public JWK set.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JwkSet {
    #[schema(value_type = Vec<Object>)]
    pub keys: Vec<Jwk>,
}

#[derive(Default)]
struct Keys {
    signer: Option<(String, Arc<SigningKey>)>,
    verifiers: HashMap<String, PublicKey>,
    /// Active JWE keys, newest first.
    encryption: Vec<(String, Arc<AgreementKey>)>,
}

impl Keys {
    fn decrypter(&self, kid: &str) -> Option<Arc<AgreementKey>> {
        self.encryption
            .iter()
            .find(|(k, _)| k == kid)
            .map(|(_, key)| Arc::clone(key))
    }
}

/// How long this node trusts its copy of the keys: a key rotated or retired through another
/// node or the CLI is seen within this.
pub const KEYS_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// The least time between two reloads caused by unknown kids.
pub const UNKNOWN_KID_RELOAD: std::time::Duration = std::time::Duration::from_secs(1);

/// The unwrapped service keys of this node.
pub struct Keyring {
    keys: RwLock<Keys>,
    loaded: std::sync::Mutex<std::time::Instant>,
    reloading: tokio::sync::Mutex<()>,
}

impl Keyring {
    /// Loads the keys, first creating any that are missing (a new database).
    ///
    /// # Errors
    /// If the database fails or a wrapped key does not open under the KEK.
    pub async fn open(store: &dyn Store) -> anyhow::Result<Self> {
        let records = store.service_keys().await?;
        let active = |p: KeyPurpose| {
            records
                .iter()
                .any(|r| r.purpose == p && r.retired_at.is_none())
        };
        if !active(KeyPurpose::Signing) {
            let key = SigningKey::generate()?;
            add(store, "sig", KeyPurpose::Signing, key.pkcs8()).await?;
        }
        if !active(KeyPurpose::Encryption) {
            let key = AgreementKey::generate()?;
            add(store, "enc", KeyPurpose::Encryption, key.der()).await?;
        }
        let keyring = Self {
            keys: RwLock::new(Keys::default()),
            loaded: std::sync::Mutex::new(std::time::Instant::now()),
            reloading: tokio::sync::Mutex::new(()),
        };
        keyring.reload(store).await?;
        Ok(keyring)
    }

    /// Reads every key again: another node may have rotated one.
    ///
    /// # Errors
    /// If the database fails or a key does not unwrap.
    pub async fn reload(&self, store: &dyn Store) -> anyhow::Result<()> {
        // The time the read began: every key committed before it is in what is read.
        let began = std::time::Instant::now();
        let kek = store.vault().kek();
        let mut keys = Keys::default();
        for record in store.service_keys().await? {
            let secret = kek
                .unwrap(
                    &record.wrapped,
                    &d1_crypto::policy::service_key_context(&record.kid),
                )
                .context("a service key does not open under this KEK")?;
            match record.purpose {
                KeyPurpose::Signing => {
                    let key = SigningKey::from_pkcs8(&secret)?;
                    keys.verifiers
                        .insert(record.kid.clone(), key.public_key().clone());
                    if record.retired_at.is_none() {
                        keys.signer = Some((record.kid.clone(), Arc::new(key)));
                    }
                }
                KeyPurpose::Encryption if record.retired_at.is_none() => {
                    keys.encryption.insert(
                        0,
                        (
                            record.kid.clone(),
                            Arc::new(AgreementKey::from_der(&secret)?),
                        ),
                    );
                }
                KeyPurpose::Encryption => {}
            }
        }
        *self
            .keys
            .write()
            .map_err(|_| anyhow::anyhow!("keyring lock poisoned"))? = keys;
        if let Ok(mut loaded) = self.loaded.lock() {
            *loaded = began;
        }
        Ok(())
    }

    /// Reloads the keys if this copy is older than [`KEYS_TTL`].
    ///
    /// # Errors
    /// If reloading fails.
    pub async fn refresh_if_stale(&self, store: &dyn Store) -> anyhow::Result<()> {
        self.refresh_if_older(store, KEYS_TTL).await
    }

    /// Reloads for a kid this copy does not know: another node may have just rotated. A reload
    /// that began after the caller asked has seen that key already, so concurrent callers share
    /// one; and reloads are spaced at least [`UNKNOWN_KID_RELOAD`] apart (a caller waits out the
    /// rest), so made-up kids cannot turn into a database read each.
    ///
    /// # Errors
    /// If reloading fails.
    pub async fn refresh_for_unknown_kid(&self, store: &dyn Store) -> anyhow::Result<()> {
        let asked = std::time::Instant::now();
        let _one_at_a_time = self.reloading.lock().await;
        let Ok(began) = self.loaded.lock().map(|l| *l) else {
            return self.reload(store).await;
        };
        if began > asked {
            return Ok(());
        }
        if let Some(rest) = UNKNOWN_KID_RELOAD.checked_sub(began.elapsed()) {
            tokio::time::sleep(rest).await;
        }
        self.reload(store).await
    }

    async fn refresh_if_older(
        &self,
        store: &dyn Store,
        age: std::time::Duration,
    ) -> anyhow::Result<()> {
        let stale = self
            .loaded
            .lock()
            .map(|l| l.elapsed() > age)
            .unwrap_or(true);
        // One reload at a time: requests that find one under way use the keys they have.
        if stale {
            if let Ok(_reloading) = self.reloading.try_lock() {
                self.reload(store).await?;
            }
        }
        Ok(())
    }

    /// The key that signs new access tokens, with its kid.
    #[must_use]
    pub fn signer(&self) -> Option<(String, Arc<SigningKey>)> {
        self.keys.read().ok().and_then(|k| k.signer.clone())
    }

    /// The public key that verifies tokens signed under `kid`.
    #[must_use]
    pub fn verifier(&self, kid: &str) -> Option<PublicKey> {
        self.keys
            .read()
            .ok()
            .and_then(|k| k.verifiers.get(kid).cloned())
    }

    /// The active JWE key with this kid. An unknown kid may re-read the keys, since another
    /// node may have rotated them (see [`Keyring::refresh_for_unknown_kid`]).
    ///
    /// # Errors
    /// If reloading fails.
    pub async fn decrypter(
        &self,
        store: &dyn Store,
        kid: &str,
    ) -> anyhow::Result<Option<Arc<AgreementKey>>> {
        self.refresh_if_stale(store).await?;
        if let Some(key) = self.keys.read().ok().and_then(|k| k.decrypter(kid)) {
            return Ok(Some(key));
        }
        self.refresh_for_unknown_kid(store).await?;
        Ok(self.keys.read().ok().and_then(|k| k.decrypter(kid)))
    }

    /// Adds a new JWE key; issuers encrypt to it from now on, and older ones keep working
    /// until retired. Returns its kid.
    ///
    /// # Errors
    /// If the database fails.
    pub async fn rotate(&self, store: &dyn Store) -> anyhow::Result<String> {
        let key = AgreementKey::generate()?;
        let kid = add(store, "enc", KeyPurpose::Encryption, key.der()).await?;
        self.reload(store).await?;
        Ok(kid)
    }

    /// The active JWE public keys, newest first: issuers encrypt to the first.
    #[must_use]
    pub fn jwks(&self) -> JwkSet {
        let keys = self.keys.read().map(|k| {
            k.encryption
                .iter()
                .map(|(kid, key)| {
                    key.public_key()
                        .to_jwk(Some(kid), Some("enc"), Some("ECDH-ES"))
                })
                .collect()
        });
        JwkSet {
            keys: keys.unwrap_or_default(),
        }
    }
}

async fn add(
    store: &dyn Store,
    prefix: &str,
    purpose: KeyPurpose,
    secret: &[u8],
) -> anyhow::Result<String> {
    let kid = new_kid(prefix)?;
    let wrapped = store
        .vault()
        .kek()
        .wrap(secret, &d1_crypto::policy::service_key_context(&kid))?;
    let record = ServiceKeyRecord {
        kid: kid.clone(),
        purpose,
        wrapped,
        created_at: now_ms(),
        retired_at: None,
    };
    store.add_service_key(record).await?;
    Ok(kid)
}
