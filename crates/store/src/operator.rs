//! The operator portal's records (contract section 11): operators with their role and
//! issuers, their sessions, and the operator audit trail. Times are unix milliseconds.

use std::fmt;
use std::str::FromStr;

use d1_domain::IssuerId;

/// What an operator may do; each role may do everything the roles below it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OperatorRole {
    /// Search, view, and card suspend/resume.
    Cci,
    /// Also card delete, replace, consumer delete and revealing PI.
    Manager,
    /// Also operator management.
    Admin,
}

impl OperatorRole {
    /// The stored and typed word: `cci`, `manager` or `admin`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cci => "cci",
            Self::Manager => "manager",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for OperatorRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A word that names no role, or a list that names no issuers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OperatorParseError(&'static str);

impl FromStr for OperatorRole {
    type Err = OperatorParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cci" => Ok(Self::Cci),
            "manager" => Ok(Self::Manager),
            "admin" => Ok(Self::Admin),
            _ => Err(OperatorParseError("a role is cci, manager or admin")),
        }
    }
}

/// The issuers an operator works for: its organization context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorIssuers {
    /// Every issuer, present and future.
    All,
    /// These issuers only (at least one, no repeats).
    Only(Vec<IssuerId>),
}

impl OperatorIssuers {
    /// Whether the operator may see this issuer's data.
    #[must_use]
    pub fn allows(&self, issuer: &IssuerId) -> bool {
        match self {
            Self::All => true,
            Self::Only(ids) => ids.contains(issuer),
        }
    }
}

impl fmt::Display for OperatorIssuers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("all"),
            Self::Only(ids) => {
                for (i, id) in ids.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    f.write_str(id.as_str())?;
                }
                Ok(())
            }
        }
    }
}

impl FromStr for OperatorIssuers {
    type Err = OperatorParseError;

    /// `all`, or issuer ids separated by commas (spaces around them ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim() == "all" {
            return Ok(Self::All);
        }
        let mut ids: Vec<IssuerId> = Vec::new();
        for part in s.split(',') {
            let id = IssuerId::parse(part.trim())
                .map_err(|_| OperatorParseError("issuers are `all` or issuer ids like ID,ID"))?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        if ids.is_empty() {
            return Err(OperatorParseError("name one issuer at least, or `all`"));
        }
        Ok(Self::Only(ids))
    }
}

/// A new operator.
#[derive(Clone)]
pub struct NewOperator {
    pub username: String,
    pub role: OperatorRole,
    pub issuers: OperatorIssuers,
    /// The PHC string of the password's hash.
    pub password_hash: String,
    pub must_change_password: bool,
}

/// A change to an operator; `None` keeps the value.
#[derive(Clone, Default)]
pub struct OperatorChange {
    pub role: Option<OperatorRole>,
    pub issuers: Option<OperatorIssuers>,
    /// A new password's PHC string; it also clears failed sign-ins and a lock.
    pub password_hash: Option<String>,
    pub must_change_password: Option<bool>,
}

/// An operator as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct OperatorRecord {
    pub username: String,
    pub role: OperatorRole,
    pub issuers: OperatorIssuers,
    pub password_hash: String,
    pub must_change_password: bool,
    pub disabled: bool,
    /// Failed sign-ins since the last success, lock or password change.
    pub failed_sign_ins: u32,
    /// Sign-in is refused until then (ms), when set.
    pub locked_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl OperatorRecord {
    /// Whether sign-in is locked at `now` (ms).
    #[must_use]
    pub fn is_locked(&self, now: i64) -> bool {
        self.locked_until.is_some_and(|until| until > now)
    }
}

// The password hash is kept out of every `Debug`, so that no log line can carry it.
impl fmt::Debug for NewOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewOperator")
            .field("username", &self.username)
            .field("role", &self.role)
            .field("issuers", &self.issuers)
            .field("must_change_password", &self.must_change_password)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for OperatorChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperatorChange")
            .field("role", &self.role)
            .field("issuers", &self.issuers)
            .field("password_hash", &self.password_hash.as_ref().map(|_| "…"))
            .field("must_change_password", &self.must_change_password)
            .finish()
    }
}

impl fmt::Debug for OperatorRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperatorRecord")
            .field("username", &self.username)
            .field("role", &self.role)
            .field("issuers", &self.issuers)
            .field("must_change_password", &self.must_change_password)
            .field("disabled", &self.disabled)
            .field("failed_sign_ins", &self.failed_sign_ins)
            .field("locked_until", &self.locked_until)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish_non_exhaustive()
    }
}

/// A new session, keyed by the SHA-256 of its cookie value (never the value itself).
#[derive(Clone)]
pub struct NewSession {
    pub id_hash: Vec<u8>,
    pub username: String,
    pub csrf_token: String,
}

/// A live session.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub username: String,
    pub csrf_token: String,
    pub created_at: i64,
    pub last_seen_at: i64,
}

impl fmt::Debug for NewSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSession")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRecord")
            .field("username", &self.username)
            .field("created_at", &self.created_at)
            .field("last_seen_at", &self.last_seen_at)
            .finish_non_exhaustive()
    }
}

/// One entry of the operator audit trail: facts only, never a PAN or PI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// When (ms), given by the caller.
    pub at: i64,
    /// The operator's username, or `cli` for a command-line change.
    pub operator: String,
    /// What was done, e.g. `sign-in`, `search`, `card.suspend`, `operator.add`.
    pub action: String,
    pub issuer_id: Option<String>,
    pub consumer_id: Option<String>,
    pub card_id: Option<String>,
    /// How it ended, e.g. `ok`, `denied`, `not-found`.
    pub outcome: String,
}

/// Which audit entries to read: newest first, at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this operator's entries.
    pub operator: Option<String>,
    /// Only entries at or after this time (ms).
    pub since: Option<i64>,
    pub limit: u32,
}
