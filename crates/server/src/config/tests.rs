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

#[test]
fn the_portal_is_on_at_portal_with_its_session_timeouts() {
    let parsed: Config = toml::from_str(EXAMPLE).unwrap();
    assert!(parsed.portal.enabled);
    assert_eq!(parsed.portal.path, "/portal");
    assert_eq!(parsed.portal.idle_timeout_secs, 15 * 60);
    assert_eq!(parsed.portal.absolute_timeout_secs, 8 * 60 * 60);
    let off: Config = toml::from_str("[portal]\nenabled = false\nidle_timeout_secs = 2").unwrap();
    assert!(!off.portal.enabled);
    assert_eq!(off.portal.idle_ms(), 2000);
}
