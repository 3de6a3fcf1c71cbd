//! Register card requests prepared before the timed window: each a distinct PAN in a fresh
//! JWE (its own ephemeral key), for a new random consumerId, made with an independent JOSE
//! library the way an issuer would.

use std::time::Instant;

use anyhow::{bail, Context};

use crate::load::{request_once, CardPool};
use crate::service::{Service, ISSUER};

const PRODUCT: &str = "bench-visa";

fn expiry() -> String {
    let today = time::OffsetDateTime::now_utc();
    format!(
        "{:02}{:02}",
        u8::from(today.month()),
        (today.year() + 3) % 100
    )
}

fn request(jwk: &josekit::jwk::Jwk, n: usize, exp: &str) -> anyhow::Result<(String, String)> {
    // A distinct PAN per request: the BIN, the counter, the Luhn digit.
    let mut digits = format!("{n:09}")
        .into_bytes()
        .into_iter()
        .rev()
        .map(|d| d - b'0')
        .collect::<Vec<_>>()
        .into_iter();
    let pan = d1_domain::card::Pan::allocate("4000001", 16, &mut || digits.next().unwrap_or(0));
    let plain = serde_json::json!({"pan": pan.digits(), "exp": exp}).to_string();
    let mut header = josekit::jwe::JweHeader::new();
    header.set_content_encryption("A256GCM");
    header.set_key_id(jwk.key_id().context("the JWK has no kid")?);
    let encrypter = josekit::jwe::ECDH_ES.encrypter_from_jwk(jwk)?;
    let jwe = josekit::jwe::serialize_compact(plain.as_bytes(), &header, &encrypter)?;
    let body = serde_json::json!({"consumerId": uuid::Uuid::new_v4().to_string(), "cardProductId": PRODUCT, "encryptedData": jwe});
    Ok((
        format!(
            "/banking/v2/issuers/{ISSUER}/cards/{}",
            uuid::Uuid::new_v4().simple()
        ),
        body.to_string(),
    ))
}

/// Onboards the product and prepares `count` requests on every core.
pub async fn prepare(service: &Service, count: usize) -> anyhow::Result<CardPool> {
    service.add_product(PRODUCT, "VISA", "400000")?;
    let (status, text) = request_once(
        &service.addr,
        "GET",
        "/.well-known/jwks.json",
        "application/json",
        String::new(),
    )
    .await?;
    if status != 200 {
        bail!("jwks answered {status}");
    }
    let jwks: serde_json::Value = serde_json::from_str(&text)?;
    let jwk = josekit::jwk::Jwk::from_bytes(jwks["keys"][0].to_string().as_bytes())?;
    let started = Instant::now();
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let exp = expiry();
    let chunks: Vec<Vec<(String, String)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (jwk, exp) = (jwk.clone(), exp.clone());
                scope.spawn(move || {
                    (t..count)
                        .step_by(threads)
                        .map(|n| request(&jwk, n, &exp))
                        .collect::<anyhow::Result<Vec<_>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a preparing thread panicked")))
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    println!(
        "\nprepared {count} card requests (distinct PANs, fresh JWEs) in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(CardPool::new(chunks.into_iter().flatten().collect()))
}
