//! The crash-safety scenario: writers on N connections (registrations with PI, updates, card
//! registrations with a JWE, implicit registrations, life-cycle operations), the node killed
//! with SIGKILL at a random moment of each round, then restarted and read back in full.
//!
//! After each restart: every acknowledged write is there with its acknowledged content (the
//! latest PI of each consumer, each card's state and reason after its last operation, one
//! trail entry per applied write); a write refused with an answer is not there; the write each
//! writer had in flight at the kill is there whole or not at all (PI of one version, a card and
//! its implicit consumer together, a trail entry exactly when its state change is there); on
//! SQLite, `PRAGMA integrity_check` and `foreign_key_check` of the file the kill left.

mod client;
mod ledger;
mod verify;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use rand::Rng;

use crate::seal::Recipient;
use crate::service::Service;
use crate::settings::Settings;
use crate::wire::request_once;
use ledger::Ledger;

const PRODUCT: &str = "crash-visa";

/// Totals over the rounds.
#[derive(Default)]
struct Totals {
    acknowledged: u64,
    refused: u64,
    unknown: u64,
    unknown_applied: u64,
    lost: u64,
    integrity_ok: usize,
}

/// Runs the scenario on SQLite, or on the PostgreSQL database at `--database-url` (in a
/// scratch schema), and fails if anything acknowledged was lost or anything half applied.
///
/// # Errors
/// On any loss, half-applied write, failed integrity check, or if the service fails.
pub fn run(settings: &Settings) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let schema = format!("d1crash_{}", uuid::Uuid::new_v4().simple());
    let database_url = match &settings.database_url {
        Some(url) => {
            runtime.block_on(d1_scratch::drop_all(url, "d1crash_"))?;
            Some(runtime.block_on(d1_scratch::create(url, &schema))?)
        }
        None => None,
    };
    let backend = if database_url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let mut service = Service::start(&settings.binary, database_url.as_deref())?;
    service.add_product(PRODUCT, "VISA", "400000")?;
    println!(
        "\ncrash safety on {backend}: {} writers, {} rounds of up to {}s, SIGKILL at a random moment of each",
        settings.clients,
        settings.rounds,
        settings.seconds.as_secs()
    );
    let result = runtime.block_on(rounds(&mut service, settings, database_url.is_none()));
    drop(service);
    if let Some(url) = &settings.database_url {
        runtime.block_on(d1_scratch::drop_all(url, "d1crash_"))?;
    }
    let totals = result?;
    println!(
        "{backend}: {} rounds, {} acknowledged writes, {} lost or half applied; {} refused; {} in flight at a kill, {} of them applied whole; integrity {}",
        settings.rounds,
        totals.acknowledged,
        totals.lost,
        totals.refused,
        totals.unknown,
        totals.unknown_applied,
        if database_url.is_some() {
            "n/a (PostgreSQL keeps running; the node is what is killed)".to_owned()
        } else {
            format!("ok {} of {}", totals.integrity_ok, settings.rounds)
        }
    );
    if totals.lost > 0 || totals.refused > 0 {
        bail!(
            "{backend}: {} lost or half-applied writes, {} refused",
            totals.lost,
            totals.refused
        );
    }
    if database_url.is_none() && totals.integrity_ok != settings.rounds {
        bail!("SQLite: an integrity check failed");
    }
    Ok(())
}

async fn recipient(service: &Service) -> anyhow::Result<Recipient> {
    let (status, text) = request_once(
        &service.addr,
        "GET",
        "/.well-known/jwks.json",
        "application/json",
        String::new(),
    )
    .await?;
    anyhow::ensure!(status == 200, "jwks answered {status}");
    Recipient::from_jwks(&serde_json::from_str(&text)?)
}

async fn rounds(
    service: &mut Service,
    settings: &Settings,
    sqlite: bool,
) -> anyhow::Result<Totals> {
    let mut ledgers: Vec<Ledger> = (0..settings.clients).map(|_| Ledger::default()).collect();
    let mut totals = Totals::default();
    let serial = Arc::new(AtomicU64::new(1));
    let mut rng = rand::thread_rng();
    for round in 1..=settings.rounds {
        let shared = Arc::new(client::Shared {
            addr: service.addr.clone(),
            authorization: format!("Bearer {}", service.token().await?),
            recipient: recipient(service).await?,
            serial: Arc::clone(&serial),
            product: PRODUCT,
            expiry: crate::cards::expiry(),
        });
        let max = settings.seconds.as_millis().max(300) as u64;
        let kill_at = Duration::from_millis(rng.gen_range(200..=max));
        let writers =
            futures_util::future::join_all(ledgers.iter_mut().enumerate().map(|(i, ledger)| {
                client::run(
                    ledger,
                    Arc::clone(&shared),
                    format!("r{round}c{i}"),
                    rng.gen(),
                )
            }));
        let killer = async {
            tokio::time::sleep(kill_at).await;
            service.kill()
        };
        let (tallies, killed) = tokio::join!(writers, killer);
        killed?;
        let integrity = if sqlite {
            verify::sqlite_integrity(&service.sqlite_file())?
        } else {
            "n/a".to_owned()
        };
        if integrity == "ok" {
            totals.integrity_ok += 1;
        }
        service
            .restart(round)
            .context("restarting after the kill")?;
        let authorization = format!("Bearer {}", service.token().await?);
        let snapshots =
            verify::read_all(&service.addr, &authorization, &ledgers, settings.clients).await?;
        let (mut acknowledged, mut refused, mut unknown, mut applied, mut lost) = (0, 0, 0, 0, 0);
        for tally in &tallies {
            acknowledged += tally.acknowledged;
            refused += tally.refused;
            if !tally.refusals.is_empty() {
                println!("  refused with {:?}", tally.refusals);
            }
        }
        for (ledger, snapshots) in ledgers.iter_mut().zip(&snapshots) {
            let pending = ledger.pending.take();
            let touched = pending.as_ref().map(|op| ledger.touched(op));
            let after = pending.as_ref().map(|op| {
                let mut after = ledger.clone();
                after.apply(op);
                after
            });
            unknown += u64::from(pending.is_some());
            let mut was_applied = false;
            for (i, found) in snapshots.iter().enumerate() {
                if *found == ledger.expected(i) {
                    continue;
                }
                if touched == Some(i) && after.as_ref().is_some_and(|a| *found == a.expected(i)) {
                    was_applied = true;
                    continue;
                }
                lost += 1;
                if lost <= 5 {
                    println!(
                        "  consumer {}: expected {:?}{}, found {found:?}",
                        ledger.consumers[i].id,
                        ledger.expected(i),
                        after
                            .as_ref()
                            .map_or(String::new(), |a| format!(" or {:?}", a.expected(i)))
                    );
                }
            }
            if was_applied {
                applied += 1;
                if let Some(after) = after {
                    *ledger = after;
                }
            }
        }
        println!(
            "round {round:>2}: killed at {:.2}s, {acknowledged} acknowledged, {unknown} in flight ({applied} applied whole), {lost} lost or half applied, integrity {integrity}",
            kill_at.as_secs_f64()
        );
        totals.acknowledged += acknowledged;
        totals.refused += refused;
        totals.unknown += unknown;
        totals.unknown_applied += applied;
        totals.lost += lost;
    }
    Ok(totals)
}
