//! Issuers, their assertion keys, used jtis and the service's own keys.

super::statements! {
    /// A new issuer unless it exists.
    INSERT = "issuers",
        "INSERT INTO issuers (issuer_id, pi_storage, click_to_pay, lookalike_policy, created_at,
                              require_jti)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING";
    /// Whether an issuer is onboarded.
    EXISTS = "issuers", "SELECT 1 FROM issuers WHERE issuer_id = $1";
    /// [`EXISTS`], locking the issuer: two key removals then cannot each leave the other's
    /// last key.
    LOCK = "issuers", "SELECT 1 FROM issuers WHERE issuer_id = $1 FOR UPDATE";
    SET_PI_STORAGE = "issuers", "UPDATE issuers SET pi_storage = $1 WHERE issuer_id = $2";
    SET_CLICK_TO_PAY = "issuers", "UPDATE issuers SET click_to_pay = $1 WHERE issuer_id = $2";
    SET_LOOKALIKE = "issuers", "UPDATE issuers SET lookalike_policy = $1 WHERE issuer_id = $2";
    SET_REQUIRE_JTI = "issuers", "UPDATE issuers SET require_jti = $1 WHERE issuer_id = $2";
    /// One issuer's settings.
    BY_ID = "issuers",
        "SELECT issuer_id, pi_storage, click_to_pay, lookalike_policy, created_at, require_jti
         FROM issuers WHERE issuer_id = $1";
    /// Every issuer's settings.
    ALL_ISSUERS = "issuers",
        "SELECT issuer_id, pi_storage, click_to_pay, lookalike_policy, created_at, require_jti
         FROM issuers ORDER BY issuer_id";
    /// An assertion key unless its kid is taken (by any issuer).
    INSERT_KEY = "issuer_keys",
        "INSERT INTO issuer_keys (kid, issuer_id, public_jwk, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING";
    DELETE_KEY = "issuer_keys", "DELETE FROM issuer_keys WHERE kid = $1 AND issuer_id = $2";
    COUNT_KEYS = "issuer_keys", "SELECT count(*) FROM issuer_keys WHERE issuer_id = $1";
    /// An issuer's kids, oldest first.
    KIDS = "issuer_keys",
        "SELECT kid FROM issuer_keys WHERE issuer_id = $1 ORDER BY created_at, kid";
    /// The assertion key with a kid, an issuer's or an aggregator's: owner, JWK, whether the
    /// owner requires a jti, whether it is an aggregator.
    ASSERTION_KEY = "issuer_keys",
        "SELECT k.issuer_id, k.public_jwk, i.require_jti, FALSE
         FROM issuer_keys k JOIN issuers i ON i.issuer_id = k.issuer_id WHERE k.kid = $1
         UNION ALL
         SELECT k.aggregator_id, k.public_jwk, a.require_jti, TRUE
         FROM aggregator_keys k JOIN aggregators a ON a.aggregator_id = k.aggregator_id
         WHERE k.kid = $1";
    /// One client certificate binding of an issuer.
    INSERT_CLIENT_CERT = "issuer_client_certs",
        "INSERT INTO issuer_client_certs (issuer_id, kind, value) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING";
    CLEAR_CLIENT_CERTS = "issuer_client_certs",
        "DELETE FROM issuer_client_certs WHERE issuer_id = $1";
    /// An issuer's client certificate bindings.
    CLIENT_CERTS = "issuer_client_certs",
        "SELECT kind, value FROM issuer_client_certs WHERE issuer_id = $1 ORDER BY kind, value";
    PURGE_JTIS = "used_jtis", "DELETE FROM used_jtis WHERE expires_at < $1";
    /// A jti unless seen; the key refuses it on every node once any node has seen it.
    USE_JTI = "used_jtis",
        "INSERT INTO used_jtis (issuer_id, jti, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING";
    SERVICE_KEYS = "service_keys",
        "SELECT kid, purpose, wrapped, created_at, retired_at FROM service_keys
         ORDER BY created_at, kid";
    INSERT_SERVICE_KEY = "service_keys",
        "INSERT INTO service_keys (kid, purpose, wrapped, created_at, retired_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";
    /// The purpose of an active service key.
    ACTIVE_PURPOSE = "service_keys",
        "SELECT purpose FROM service_keys WHERE kid = $1 AND retired_at IS NULL";
    /// The active keys of a purpose.
    ACTIVE_OF_PURPOSE = "service_keys",
        "SELECT kid FROM service_keys WHERE purpose = $1 AND retired_at IS NULL";
    /// [`ACTIVE_OF_PURPOSE`], locking them, so that two nodes retiring the last two keys at
    /// once cannot leave none.
    LOCK_ACTIVE_OF_PURPOSE = "service_keys",
        "SELECT kid FROM service_keys WHERE purpose = $1 AND retired_at IS NULL FOR UPDATE";
    RETIRE = "service_keys", "UPDATE service_keys SET retired_at = $1 WHERE kid = $2";
}
