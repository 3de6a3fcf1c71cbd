//! How a command refuses: one line on stderr and exit code 1, never a stack of causes;
//! and the checks of the flags every command shares (issuer id, kid, public key file).

use std::path::Path;

use anyhow::Context;
use d1_crypto::ec::PublicKey;
use d1_domain::{IssuerId, Kid};

/// A refusal: printed as one line, exit code 1.
#[derive(Debug)]
pub(crate) struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// A refusal of the command (exit code 1) with its one-line reason.
pub(crate) fn refuse(message: impl Into<String>) -> anyhow::Error {
    Refused(message.into()).into()
}

/// The P-256 public key (PEM or JWK) in `path`, as a JWK string.
pub(crate) fn read_public_key(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let key = PublicKey::parse(&text).map_err(|e| refuse(format!("{}: {e}", path.display())))?;
    serde_json::to_string(&key.to_jwk(None, None, None)).context("encoding the key")
}

/// `--issuer-id`.
pub(crate) fn parse_issuer(id: &str) -> anyhow::Result<IssuerId> {
    IssuerId::parse(id).map_err(|_| refuse("--issuer-id must be exactly 10 letters or digits"))
}

/// `--kid`.
pub(crate) fn parse_kid(kid: &str) -> anyhow::Result<String> {
    Kid::parse(kid)
        .map(|k| k.as_str().to_owned())
        .map_err(|_| refuse("--kid must be 1 to 128 visible ASCII characters"))
}
