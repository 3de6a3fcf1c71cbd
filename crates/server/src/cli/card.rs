//! `d1-registry card encrypt`: card data encrypted to the service's key the way an issuer's
//! card system encrypts it (contract section 6, "Encrypting card data for a try-out"), so that
//! trying Register card needs only the binary and curl.
//!
//! The card data is checked as Register card checks it (12 to 19 digits passing Luhn, a real
//! month not already past) before any key is read, and a refusal never repeats the digits.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use d1_crypto::ec::{Jwk, PublicKey};
use d1_domain::card::{Expiry, Pan};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::refuse::refuse;

/// How long the service may take to serve its key set.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the service's JWK set comes from.
enum KeySource<'a> {
    /// `URL/.well-known/jwks.json` of a running service.
    Url(&'a str),
    /// A file holding the set, as `keys jwks` prints it.
    File(&'a Path),
}

/// Runs `card encrypt`: the key set from the file `jwks` if given, else from the service at
/// `url`. It needs no data directory and no configuration, so it runs before either is read.
pub(super) fn run(pan: &str, exp: &str, url: &str, jwks: Option<&Path>) -> anyhow::Result<()> {
    let keys = jwks.map_or(KeySource::Url(url), KeySource::File);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(encrypt(pan, exp, keys))
}

/// A JWK set; only its first key is read, so the others may be of any shape.
#[derive(Deserialize)]
struct KeySet {
    keys: Vec<serde_json::Value>,
}

/// Prints the compact JWE of `{"pan", "exp"}` for the first key of the service's set.
async fn encrypt(pan: &str, exp: &str, keys: KeySource<'_>) -> anyhow::Result<()> {
    let pan = Pan::parse(pan, "--pan").map_err(|e| refuse(e.to_string()))?;
    let today = time::OffsetDateTime::now_utc().date();
    let expiry = Expiry::parse(exp, today, "--exp").map_err(|e| refuse(e.to_string()))?;
    let set = match keys {
        KeySource::Url(url) => fetch(url).await?,
        KeySource::File(path) => read(path)?,
    };
    let (kid, key) = first_key(&set)?;
    // Digits and a month only: nothing in them needs escaping.
    let plain = Zeroizing::new(format!(
        r#"{{"pan":"{}","exp":"{}"}}"#,
        pan.digits(),
        expiry.mmyy()
    ));
    let jwe = d1_crypto::jwe::encrypt(plain.as_bytes(), &key, &kid)
        .map_err(|e| refuse(format!("could not encrypt: {e}")))?;
    println!("{jwe}");
    Ok(())
}

/// The set the service at `url` publishes.
async fn fetch(url: &str) -> anyhow::Result<KeySet> {
    let endpoint = format!("{}/.well-known/jwks.json", url.trim_end_matches('/'));
    let response = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .build()
        .context("building the HTTP client")?
        .get(&endpoint)
        .send()
        .await
        .map_err(|e| refuse(format!("could not reach {endpoint}: {}", e.without_url())))?;
    let status = response.status();
    if !status.is_success() {
        return Err(refuse(format!("{endpoint} answered {status}")));
    }
    response
        .json()
        .await
        .map_err(|_| refuse(format!("{endpoint} did not answer a JWK set")))
}

/// The set in the file at `path`.
fn read(path: &Path) -> anyhow::Result<KeySet> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|_| refuse(format!("{} does not hold a JWK set", path.display())))
}

/// The kid and key issuers encrypt to: the first of the set, a P-256 key for ECDH-ES.
fn first_key(set: &KeySet) -> anyhow::Result<(String, PublicKey)> {
    let first = set
        .keys
        .first()
        .ok_or_else(|| refuse("the JWK set holds no key"))?;
    let jwk: Jwk = serde_json::from_value(first.clone())
        .map_err(|_| refuse("the first key of the set is not an EC public key"))?;
    if jwk.use_.as_deref().is_some_and(|u| u != "enc")
        || jwk.alg.as_deref().is_some_and(|a| a != "ECDH-ES")
    {
        return Err(refuse("the first key of the set is not an ECDH-ES key"));
    }
    let kid = jwk
        .kid
        .clone()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| refuse("the first key of the set has no kid"))?;
    let key =
        PublicKey::from_jwk(&jwk).map_err(|e| refuse(format!("the first key of the set: {e}")))?;
    Ok((kid, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(keys: serde_json::Value) -> KeySet {
        serde_json::from_value(serde_json::json!({ "keys": keys })).unwrap()
    }

    fn refusal(set: &KeySet) -> String {
        first_key(set).unwrap_err().to_string()
    }

    #[test]
    fn the_first_key_is_taken_with_its_kid() {
        let a = d1_crypto::ec::AgreementKey::generate().unwrap();
        let b = d1_crypto::ec::AgreementKey::generate().unwrap();
        let jwk = |k: &d1_crypto::ec::AgreementKey, kid: &str| {
            serde_json::to_value(
                k.public_key()
                    .to_jwk(Some(kid), Some("enc"), Some("ECDH-ES")),
            )
            .unwrap()
        };
        let (kid, key) =
            first_key(&set(serde_json::json!([jwk(&a, "new"), jwk(&b, "old")]))).unwrap();
        assert_eq!(kid, "new");
        assert_eq!(&key, a.public_key());
    }

    #[test]
    fn a_set_without_a_usable_first_key_is_refused_saying_why() {
        let a = d1_crypto::ec::AgreementKey::generate().unwrap();
        assert!(refusal(&set(serde_json::json!([]))).contains("no key"));
        let no_kid = serde_json::to_value(a.public_key().to_jwk(None, None, None)).unwrap();
        assert!(refusal(&set(serde_json::json!([no_kid]))).contains("no kid"));
        let signing =
            serde_json::to_value(a.public_key().to_jwk(Some("s"), Some("sig"), None)).unwrap();
        assert!(refusal(&set(serde_json::json!([signing]))).contains("ECDH-ES"));
        let rsa = serde_json::json!([{"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB"}]);
        assert!(refusal(&set(rsa)).contains("not an EC"));
    }
}
