//! `d1-registry keys`: the service's JWE keys, printed, rotated and retired.

use d1_store::StoreError;

use super::args::KeysCommand;
use super::refuse::refuse;
use crate::bootstrap;
use crate::config::Config;

/// Runs a `keys` subcommand.
pub(super) async fn run(cmd: KeysCommand, config: &Config) -> anyhow::Result<()> {
    let opened = match cmd {
        KeysCommand::Jwks => bootstrap::open_existing(config).await?,
        _ => bootstrap::open(config).await?,
    };
    match cmd {
        KeysCommand::Jwks => println!("{}", serde_json::to_string_pretty(&opened.keyring.jwks())?),
        KeysCommand::Rotate => println!("{}", opened.keyring.rotate(opened.store.as_ref()).await?),
        KeysCommand::Retire { kid } => {
            let is_enc = opened
                .keyring
                .jwks()
                .keys
                .iter()
                .any(|k| k.kid.as_deref() == Some(kid.as_str()));
            if !is_enc {
                return Err(refuse(format!("{kid} is not an active JWE key")));
            }
            match opened.store.retire_service_key(&kid).await {
                Ok(()) => println!("{kid} retired"),
                Err(StoreError::Conflict(why)) => return Err(refuse(why)),
                Err(StoreError::NotFound) => {
                    return Err(refuse(format!("{kid} is not an active key")))
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}
