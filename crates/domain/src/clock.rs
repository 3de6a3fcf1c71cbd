//! Time on the wire: RFC 3339 UTC with milliseconds.

use time::macros::format_description;
use time::OffsetDateTime;

/// Formats Unix milliseconds as RFC 3339 UTC, e.g. `2026-11-25T10:00:00.123Z`.
#[must_use]
pub fn rfc3339(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    let at = OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    at.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    ))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc_with_milliseconds() {
        assert_eq!(
            super::rfc3339(1_764_064_800_123),
            "2025-11-25T10:00:00.123Z"
        );
    }
}
