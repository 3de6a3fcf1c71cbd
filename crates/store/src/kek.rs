//! Which KEK unlocks a database: the one whose fingerprint the database stores.
//!
//! A KEK is created only for a database that holds no data yet. A node whose KEK does not
//! match refuses to start, and no new KEK is ever made against existing data.

use std::path::Path;

use anyhow::{bail, Context};
use d1_crypto::envelope::Kek;
use d1_crypto::keyfile;

/// The meta key under which the KEK's fingerprint is stored.
pub const FINGERPRINT_KEY: &str = "kek_fingerprint";

/// What the caller must do after [`resolve`].
#[derive(Debug)]
pub struct Resolved {
    pub kek: Kek,
    /// The database had no fingerprint yet: store this KEK's.
    pub store_fingerprint: bool,
}

/// Finds or creates the KEK for a database that stores `fingerprint` and `has_data`.
///
/// # Errors
/// A missing KEK file for a database with data, a KEK that does not match, or an I/O error.
pub fn resolve(path: &Path, fingerprint: Option<&str>, has_data: bool) -> anyhow::Result<Resolved> {
    let exists = path
        .try_exists()
        .with_context(|| format!("checking KEK file {}", path.display()))?;
    match (fingerprint, exists) {
        (Some(expected), true) => {
            let kek = keyfile::read(path)?;
            if kek.fingerprint() != expected {
                bail!("the KEK in {} does not match this database (fingerprint {} expected); refusing to start", path.display(), expected);
            }
            Ok(Resolved { kek, store_fingerprint: false })
        }
        (Some(_), false) => bail!(
            "the database is protected by a KEK but {} does not exist; restore the KEK file (or set D1_KEK_FILE) — a new one would make the data unreadable",
            path.display()
        ),
        (None, true) => Ok(Resolved { kek: keyfile::read(path)?, store_fingerprint: true }),
        (None, false) if has_data => bail!("the database holds data but has no KEK fingerprint; refusing to create a new KEK"),
        (None, false) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            }
            Ok(Resolved { kek: keyfile::create(path)?, store_fingerprint: true })
        }
    }
}
