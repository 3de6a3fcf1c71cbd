//! The KEK file: 32 random bytes, base64 on one line, readable by its owner only.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use base64::Engine;
use zeroize::Zeroizing;

use crate::envelope::Kek;
use crate::random_bytes;

/// Why the KEK file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// The file does not hold a 32-byte key.
    #[error("key file {0} does not hold a 32-byte base64 key")]
    Malformed(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Reads the KEK from `path`.
///
/// # Errors
/// [`KeyFileError`] if it cannot be read or is not a key.
pub fn read(path: &Path) -> Result<Kek, KeyFileError> {
    let text = Zeroizing::new(fs::read_to_string(path).map_err(io(path))?);
    let bytes = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| KeyFileError::Malformed(path.display().to_string()))?,
    );
    Kek::from_bytes(&bytes).map_err(|_| KeyFileError::Malformed(path.display().to_string()))
}

/// Creates a new KEK at `path` with mode 0600. Fails if the file already exists, so an
/// existing key is never overwritten.
///
/// # Errors
/// [`KeyFileError::Io`] if the file exists or cannot be written.
pub fn create(path: &Path) -> Result<Kek, KeyFileError> {
    let bytes = Zeroizing::new(
        random_bytes::<{ Kek::LEN }>().map_err(|_| KeyFileError::Malformed("rng".into()))?,
    );
    let text = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(bytes.as_ref()));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(io(path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io(path))?;
    Kek::from_bytes(bytes.as_ref()).map_err(|_| KeyFileError::Malformed(path.display().to_string()))
}
