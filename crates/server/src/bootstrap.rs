//! Opening the service's state the same way for every command: data directory, store
//! (migrated, unlocked by the KEK) and service keys, created if missing. A command that only
//! reads opens an existing store only ([`open_existing`]), so that a mistyped `--data-dir` is
//! noticed instead of answered from a new empty store.

use std::sync::Arc;

use d1_store::{Store, StoreOptions};

use crate::config::Config;
use crate::keyring::Keyring;

/// The opened store and keys.
pub struct Opened {
    pub store: Arc<dyn Store>,
    pub keyring: Arc<Keyring>,
}

/// Opens everything a command that writes needs. Idempotent: a fresh data directory is set
/// up, saying so in one line on stderr, and an existing one is reused.
///
/// # Errors
/// If the data directory, the database or the KEK cannot be used.
pub async fn open(config: &Config) -> anyhow::Result<Opened> {
    let options = options(config);
    if !d1_store::exists(&options).await? {
        let kek = &config.paths.kek_file;
        let key = if kek.exists() {
            format!("with the KEK in {}", kek.display())
        } else {
            format!("and a new KEK in {}", kek.display())
        };
        eprintln!(
            "d1-registry: no store at {}; creating a new store {key}",
            place(config)
        );
    }
    config.paths.ensure_data_dir()?;
    opened(options).await
}

/// Opens a store that exists already, for a command that only reads; creates nothing (no
/// directory, database or KEK) when there is none.
///
/// # Errors
/// If there is no store (the message names where it looked), or [`open`] fails.
pub async fn open_existing(config: &Config) -> anyhow::Result<Opened> {
    let options = options(config);
    if !d1_store::exists(&options).await? {
        anyhow::bail!(
            "no store at {}; check --data-dir and --database-url (a command that only reads creates none)",
            place(config)
        );
    }
    opened(options).await
}

/// Where the store is, as a user would name it: the data directory for SQLite.
fn place(config: &Config) -> String {
    let url = &config.paths.database_url;
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        "the PostgreSQL database of --database-url".to_owned()
    } else {
        let file = url
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:");
        format!("{} (database {file})", config.paths.data_dir.display())
    }
}

fn options(config: &Config) -> StoreOptions {
    StoreOptions {
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
    }
}

async fn opened(options: StoreOptions) -> anyhow::Result<Opened> {
    let store = d1_store::open(options).await?;
    let keyring = Arc::new(Keyring::open(store.as_ref()).await?);
    Ok(Opened { store, keyring })
}
