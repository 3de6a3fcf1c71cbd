//! Aggregators: their keys, the issuers they sign for, and the checks that keep ids and kids
//! unique across issuers and aggregators.

super::statements! {
    /// A new aggregator unless it exists.
    INSERT = "aggregators",
        "INSERT INTO aggregators (aggregator_id, require_jti, created_at) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING";
    /// Whether an id is an aggregator's.
    EXISTS = "aggregators", "SELECT 1 FROM aggregators WHERE aggregator_id = $1";
    /// An aggregator's assertion key unless the kid is taken by another aggregator.
    INSERT_KEY = "aggregator_keys",
        "INSERT INTO aggregator_keys (kid, aggregator_id, public_jwk, created_at)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
    /// One issuer an aggregator signs for.
    INSERT_ISSUER = "aggregator_issuers",
        "INSERT INTO aggregator_issuers (aggregator_id, issuer_id) VALUES ($1, $2)
         ON CONFLICT DO NOTHING";
    /// Whether a kid is an aggregator's.
    KID_TAKEN = "aggregator_keys", "SELECT 1 FROM aggregator_keys WHERE kid = $1";
    /// Whether a kid is an issuer's.
    ISSUER_KID_TAKEN = "issuer_keys", "SELECT 1 FROM issuer_keys WHERE kid = $1";
    /// Every aggregator, by id.
    EVERY = "aggregators",
        "SELECT aggregator_id, require_jti, created_at FROM aggregators ORDER BY aggregator_id";
    /// An aggregator's kids, oldest first.
    KIDS = "aggregator_keys",
        "SELECT kid FROM aggregator_keys WHERE aggregator_id = $1 ORDER BY created_at, kid";
    /// The issuers an aggregator signs for, by id.
    ISSUERS = "aggregator_issuers",
        "SELECT issuer_id FROM aggregator_issuers WHERE aggregator_id = $1 ORDER BY issuer_id";
}
