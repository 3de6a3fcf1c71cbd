//! `d1-registry operator` and `audit` (contract section 11): the operators of the portal,
//! made, changed, listed and disabled from the command line, each change itself written to the
//! operator audit trail as the operator `cli`; and that trail read back as JSON Lines.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{ArgGroup, Subcommand};
use d1_store::{
    AuditEntry, AuditQuery, NewOperator, OperatorChange, OperatorIssuers, OperatorRecord,
    OperatorRole, Store, StoreError,
};

use super::refuse::refuse;
use crate::bootstrap;
use crate::config::Config;
use crate::operators::{check_password, check_username, hash_password, one_time_password};

#[derive(Debug, Subcommand)]
pub(crate) enum OperatorCommand {
    /// Make a portal operator. Without --password-file a one-time password is printed once,
    /// and the first sign-in with it asks for a new one.
    Add {
        /// 1 to 64 characters of A-Z a-z 0-9 . _ @ -
        #[arg(long)]
        username: String,
        #[arg(long, value_parser = parse_role)]
        role: OperatorRole,
        /// `all`, or the issuer ids of the operator's context, comma-separated.
        #[arg(long, value_parser = parse_issuers)]
        issuers: OperatorIssuers,
        /// A file whose first line is the password (12 characters at least).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Change an operator's role, issuers or password; a new password ends its sessions.
    #[command(group(ArgGroup::new("change").required(true).multiple(true)
        .args(["role", "issuers", "password_file"])))]
    Set {
        #[arg(long)]
        username: String,
        #[arg(long, value_parser = parse_role)]
        role: Option<OperatorRole>,
        #[arg(long, value_parser = parse_issuers)]
        issuers: Option<OperatorIssuers>,
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// List the operators: username, role, issuers, state, whether a new password is due.
    List {
        /// One JSON object a line instead.
        #[arg(long)]
        json: bool,
    },
    /// Disable an operator and end its sessions.
    Disable {
        #[arg(long)]
        username: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Print the operator audit trail as JSON Lines, newest first.
    List {
        /// Only this operator's entries (`cli` for the command line's).
        #[arg(long)]
        operator: Option<String>,
        /// Only entries at or after this time, RFC 3339.
        #[arg(long, value_parser = parse_time)]
        since: Option<i64>,
        #[arg(long, default_value_t = 100,
              value_parser = clap::value_parser!(u32).range(1..=100_000))]
        limit: u32,
    },
}

fn parse_role(value: &str) -> Result<OperatorRole, String> {
    value.parse().map_err(|e| format!("{e}"))
}

fn parse_issuers(value: &str) -> Result<OperatorIssuers, String> {
    value.parse().map_err(|e| format!("{e}"))
}

/// RFC 3339 as unix milliseconds.
fn parse_time(value: &str) -> Result<i64, String> {
    let at = time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map_err(|_| "an RFC 3339 time, e.g. 2026-12-01T09:00:00Z".to_owned())?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).map_err(|_| "out of range".to_owned())
}

/// Runs an `operator` subcommand.
pub(super) async fn run(cmd: OperatorCommand, config: &Config) -> anyhow::Result<()> {
    match cmd {
        OperatorCommand::Add {
            username,
            role,
            issuers,
            password_file,
        } => {
            check_username(&username).map_err(refuse)?;
            let (password, must_change_password) = match &password_file {
                Some(path) => (read_password(path)?, false),
                None => (one_time_password(), true),
            };
            let password_hash = hash_password(&password)?;
            let store = bootstrap::open(config).await?.store;
            known_issuers(store.as_ref(), &issuers).await?;
            let new = NewOperator {
                username: username.clone(),
                role,
                issuers,
                password_hash,
                must_change_password,
            };
            let done = store.add_operator(new).await;
            audited(store, "operator.add", &username, done).await?;
            if must_change_password {
                println!("{password}");
                eprintln!("operator {username} added; the one-time password above is shown once");
            } else {
                println!("operator {username} added");
            }
            Ok(())
        }
        OperatorCommand::Set {
            username,
            role,
            issuers,
            password_file,
        } => {
            let password = password_file.as_deref().map(read_password).transpose()?;
            let password_hash = password.as_deref().map(hash_password).transpose()?;
            let store = bootstrap::open(config).await?.store;
            if let Some(issuers) = &issuers {
                known_issuers(store.as_ref(), issuers).await?;
            }
            let new_password = password_hash.is_some();
            let change = OperatorChange {
                role,
                issuers,
                must_change_password: new_password.then_some(false),
                password_hash,
            };
            let done = store.change_operator(&username, change).await;
            if done.is_ok() && new_password {
                store.delete_sessions_of(&username).await?;
            }
            audited(store, "operator.set", &username, done).await?;
            println!("operator {username} changed");
            Ok(())
        }
        OperatorCommand::List { json } => {
            let store = bootstrap::open_existing(config).await?.store;
            let now = d1_store::now_ms();
            for op in store.operators().await? {
                println!(
                    "{}",
                    if json {
                        as_json(&op, now)
                    } else {
                        as_line(&op, now)
                    }
                );
            }
            Ok(())
        }
        OperatorCommand::Disable { username } => {
            let store = bootstrap::open(config).await?.store;
            let done = store.disable_operator(&username).await;
            audited(store, "operator.disable", &username, done).await?;
            println!("operator {username} disabled");
            Ok(())
        }
    }
}

/// Runs an `audit` subcommand.
pub(super) async fn run_audit(cmd: AuditCommand, config: &Config) -> anyhow::Result<()> {
    let AuditCommand::List {
        operator,
        since,
        limit,
    } = cmd;
    let store = bootstrap::open_existing(config).await?.store;
    let entries = store
        .audit(AuditQuery {
            operator,
            since,
            limit,
        })
        .await?;
    for e in entries {
        let mut line = serde_json::Map::new();
        line.insert("at".into(), d1_domain::clock::rfc3339(e.at).into());
        line.insert("operator".into(), e.operator.into());
        line.insert("action".into(), e.action.into());
        for (name, value) in [
            ("issuerId", e.issuer_id),
            ("consumerId", e.consumer_id),
            ("cardId", e.card_id),
        ] {
            if let Some(value) = value {
                line.insert(name.into(), value.into());
            }
        }
        line.insert("outcome".into(), e.outcome.into());
        println!("{}", serde_json::Value::Object(line));
    }
    Ok(())
}

/// The first line of `path` as a password, checked; the password itself is never echoed.
fn read_password(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let first = text.lines().next().unwrap_or_default();
    check_password(first).map_err(|why| refuse(format!("{}: {why}", path.display())))?;
    Ok(first.to_owned())
}

/// Refuses issuers that are not onboarded.
async fn known_issuers(store: &dyn Store, issuers: &OperatorIssuers) -> anyhow::Result<()> {
    if let OperatorIssuers::Only(ids) = issuers {
        for id in ids {
            if store.issuer(id).await?.is_none() {
                return Err(refuse(format!("issuer {id} is not onboarded")));
            }
        }
    }
    Ok(())
}

/// Writes a change's audit entry (the operator `cli`, the action naming whom it changed), then
/// says how the change ended: a refusal in one line.
async fn audited(
    store: Arc<dyn Store>,
    action: &str,
    username: &str,
    done: Result<(), StoreError>,
) -> anyhow::Result<()> {
    let outcome = match &done {
        Ok(()) => "ok",
        Err(StoreError::NotFound | StoreError::Conflict(_)) => "refused",
        Err(_) => "error",
    };
    store
        .append_audit(AuditEntry {
            at: d1_store::now_ms(),
            operator: "cli".into(),
            action: format!("{action}:{username}"),
            issuer_id: None,
            consumer_id: None,
            card_id: None,
            outcome: outcome.into(),
        })
        .await?;
    match done {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => Err(refuse(format!("no operator {username}"))),
        Err(StoreError::Conflict(why)) => Err(refuse(format!("operator {username}: {why}"))),
        Err(e) => Err(e.into()),
    }
}

/// The state an operator is in at `now`: `active`, `disabled` or `locked`.
fn state(op: &OperatorRecord, now: i64) -> &'static str {
    if op.disabled {
        "disabled"
    } else if op.is_locked(now) {
        "locked"
    } else {
        "active"
    }
}

fn as_line(op: &OperatorRecord, now: i64) -> String {
    let locked = match op.locked_until {
        Some(until) if state(op, now) == "locked" => {
            format!(" until={}", d1_domain::clock::rfc3339(until))
        }
        _ => String::new(),
    };
    format!(
        "{} role={} issuers={} state={}{locked} must_change_password={}",
        op.username,
        op.role,
        op.issuers,
        state(op, now),
        if op.must_change_password { "yes" } else { "no" }
    )
}

fn as_json(op: &OperatorRecord, now: i64) -> String {
    let mut line = serde_json::json!({
        "username": op.username,
        "role": op.role.as_str(),
        "issuers": op.issuers.to_string(),
        "state": state(op, now),
        "mustChangePassword": op.must_change_password,
        "createdAt": d1_domain::clock::rfc3339(op.created_at),
        "updatedAt": d1_domain::clock::rfc3339(op.updated_at),
    });
    if let Some(until) = op.locked_until.filter(|_| state(op, now) == "locked") {
        line["lockedUntil"] = d1_domain::clock::rfc3339(until).into();
    }
    line.to_string()
}
