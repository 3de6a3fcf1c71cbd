//! Time on the wire ([`d1_domain::clock`]) and the server's clock.

use time::OffsetDateTime;

pub use d1_domain::clock::rfc3339;

/// Unix seconds now.
#[must_use]
pub fn now_secs() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}
