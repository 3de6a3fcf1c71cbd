//! Opening the service's state the same way for every command: data directory, store
//! (migrated, unlocked by the KEK) and service keys, created if missing.

use std::sync::Arc;

use d1_store::{Store, StoreOptions};

use crate::config::Config;
use crate::keyring::Keyring;

/// The opened store and keys.
pub struct Opened {
    pub store: Arc<dyn Store>,
    pub keyring: Arc<Keyring>,
}

/// Opens everything a command needs. Idempotent: a fresh data directory is set up, an
/// existing one is reused.
///
/// # Errors
/// If the data directory, the database or the KEK cannot be used.
pub async fn open(config: &Config) -> anyhow::Result<Opened> {
    config.paths.ensure_data_dir()?;
    let store = d1_store::open(StoreOptions {
        database_url: config.paths.database_url.clone(),
        kek_file: config.paths.kek_file.clone(),
        durability: config.database.durability,
        read_connections: config.database.read_connections,
        pool: d1_store::postgres::PoolOptions {
            size: config.database.pool_size,
            statement_timeout: std::time::Duration::from_millis(
                config.database.statement_timeout_ms,
            ),
            connect_timeout: std::time::Duration::from_millis(config.database.connect_timeout_ms),
        },
    })
    .await?;
    let keyring = Arc::new(Keyring::open(store.as_ref()).await?);
    Ok(Opened { store, keyring })
}
