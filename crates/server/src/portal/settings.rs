//! `[portal]`: where the operator portal is served and how long its sessions live (contract
//! section 11).

use serde::{Deserialize, Serialize};

/// A session unused for this long ends (15 minutes).
pub const IDLE_TIMEOUT_SECS: u64 = 15 * 60;
/// A session ends this long after its sign-in, used or not (8 hours).
pub const ABSOLUTE_TIMEOUT_SECS: u64 = 8 * 60 * 60;

/// `[portal]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PortalConfig {
    /// Whether `serve` serves the portal; off, every path under `path` is 404.
    pub enabled: bool,
    /// The path the portal is served under, such as `/portal`.
    pub path: String,
    /// A session unused for this long ends.
    pub idle_timeout_secs: u64,
    /// A session ends this long after its sign-in.
    pub absolute_timeout_secs: u64,
}

impl Default for PortalConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            path: "/portal".into(),
            idle_timeout_secs: IDLE_TIMEOUT_SECS,
            absolute_timeout_secs: ABSOLUTE_TIMEOUT_SECS,
        }
    }
}

impl PortalConfig {
    /// The path without a trailing slash, starting with one: `/portal`.
    #[must_use]
    pub fn base(&self) -> String {
        let trimmed = self.path.trim_matches('/');
        format!("/{trimmed}")
    }

    /// The idle timeout in milliseconds.
    #[must_use]
    pub fn idle_ms(&self) -> i64 {
        i64::try_from(self.idle_timeout_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }

    /// The absolute timeout in milliseconds.
    #[must_use]
    pub fn absolute_ms(&self) -> i64 {
        i64::try_from(self.absolute_timeout_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_path_has_one_leading_slash_and_no_trailing_one() {
        let mut c = PortalConfig::default();
        assert_eq!(c.base(), "/portal");
        c.path = "/ops/portal/".into();
        assert_eq!(c.base(), "/ops/portal");
        c.path = "care".into();
        assert_eq!(c.base(), "/care");
    }
}
