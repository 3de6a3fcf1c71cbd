//! The configuration example against the defaults.

use super::*;

#[test]
fn the_example_parses_to_the_defaults() {
    let parsed: Config = toml::from_str(EXAMPLE).unwrap();
    let defaults = Config::default();
    assert_eq!(parsed.server.listen, defaults.server.listen);
    assert_eq!(parsed.database.durability, defaults.database.durability);
    assert_eq!(parsed.auth.cache_ttl_secs, defaults.auth.cache_ttl_secs);
    assert_eq!(parsed.log.format, defaults.log.format);
    assert_eq!(
        parsed.server.header_timeout_ms,
        defaults.server.header_timeout_ms
    );
    assert_eq!(
        parsed.server.idle_timeout_ms,
        defaults.server.idle_timeout_ms
    );
    assert_eq!(
        parsed.server.max_connections,
        defaults.server.max_connections
    );
    assert_eq!(parsed.server.client_cert_header, None);
}
