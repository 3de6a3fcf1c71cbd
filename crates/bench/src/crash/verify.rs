//! Reads back what the clients wrote, over the API as a bank would: each consumer (its PI),
//! each of its cards (state and reason) and its whole operations trail, on N connections.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{bail, Context};
use serde_json::Value;

use super::ledger::{Ledger, Snapshot};
use crate::service::ISSUER;
use crate::wire::{self, Connection};

/// One GET: `None` for a 404, else the JSON body of a 200.
async fn get(
    connection: &mut Connection,
    addr: &str,
    authorization: &str,
    path: &str,
) -> anyhow::Result<Option<Value>> {
    let mut bytes = Vec::new();
    wire::request(
        &mut bytes,
        "GET",
        path,
        addr,
        Some(authorization),
        "application/json",
        b"",
    );
    let answer = connection.exchange(&bytes).await?;
    match answer.status {
        404 => Ok(None),
        200 => Ok(Some(serde_json::from_slice(&answer.body)?)),
        status => bail!("GET {path} answered {status}"),
    }
}

/// What the service holds for consumer `i` of `ledger`.
async fn read(
    connection: &mut Connection,
    addr: &str,
    authorization: &str,
    ledger: &Ledger,
    i: usize,
) -> anyhow::Result<Snapshot> {
    let base = format!("/banking/v2/issuers/{ISSUER}");
    let consumer = &ledger.consumers[i];
    let found = get(
        connection,
        addr,
        authorization,
        &format!("{base}/consumers/{}", consumer.id),
    )
    .await?;
    let consumer_read = found.map(|c| {
        if c["state"] == "ACTIVE" {
            c.get("personalInformation").cloned().unwrap_or(Value::Null)
        } else {
            serde_json::json!({"state": c["state"]})
        }
    });
    let mut cards = Vec::new();
    for &k in &consumer.cards {
        let path = format!("{base}/cards/{}", ledger.cards[k].id);
        cards.push(get(connection, addr, authorization, &path).await?.map(|c| {
            let reason = c["stateReason"].as_str().map(str::to_owned);
            (c["state"].as_str().unwrap_or("?").to_owned(), reason)
        }));
    }
    let mut trail = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("{base}/consumers/{}/operations?limit=200", consumer.id);
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let Some(page) = get(connection, addr, authorization, &path).await? else {
            break;
        };
        for entry in page["operations"].as_array().context("no operations")? {
            let mut name = entry["operation"].as_str().unwrap_or("?").to_owned();
            if entry["status"] != "SUCCESSFUL" {
                name.push_str(&format!("/{}", entry["status"]));
            }
            let card = name
                .starts_with("CARD_")
                .then(|| entry["cardId"].as_str().unwrap_or("?").to_owned());
            *trail.entry((name, card)).or_default() += 1;
        }
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    Ok(Snapshot {
        consumer: consumer_read,
        cards,
        trail,
    })
}

/// Reads every consumer of every ledger on `connections` connections; the snapshots come
/// back per ledger, in the ledgers' order.
pub async fn read_all(
    addr: &str,
    authorization: &str,
    ledgers: &[Ledger],
    connections: usize,
) -> anyhow::Result<Vec<Vec<Snapshot>>> {
    let jobs: Vec<(usize, usize)> = ledgers
        .iter()
        .enumerate()
        .flat_map(|(l, ledger)| (0..ledger.consumers.len()).map(move |i| (l, i)))
        .collect();
    let next = AtomicUsize::new(0);
    let worker = || async {
        let mut connection = Connection::open(addr).await?;
        let mut done = Vec::new();
        while let Some(&(l, i)) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
            done.push((
                l,
                i,
                read(&mut connection, addr, authorization, &ledgers[l], i).await?,
            ));
        }
        anyhow::Ok(done)
    };
    let results = futures_util::future::join_all((0..connections).map(|_| worker())).await;
    let mut out: Vec<Vec<Option<Snapshot>>> = ledgers
        .iter()
        .map(|l| l.consumers.iter().map(|_| None).collect())
        .collect();
    for result in results {
        for (l, i, snapshot) in result? {
            out[l][i] = Some(snapshot);
        }
    }
    out.into_iter()
        .map(|l| {
            l.into_iter()
                .map(|s| s.context("a consumer was not read"))
                .collect()
        })
        .collect()
}

/// SQLite's own checks of the file a killed node left: `integrity_check` and
/// `foreign_key_check`, opened as the next node would open it.
pub fn sqlite_integrity(file: &std::path::Path) -> anyhow::Result<String> {
    let db = rusqlite::Connection::open(file)?;
    let integrity: Vec<String> = db
        .prepare("PRAGMA integrity_check")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let foreign: usize = db
        .prepare("PRAGMA foreign_key_check")?
        .query_map([], |_| Ok(()))?
        .count();
    Ok(if integrity == ["ok"] && foreign == 0 {
        "ok".to_owned()
    } else {
        format!("integrity_check {integrity:?}, {foreign} foreign key violations")
    })
}
