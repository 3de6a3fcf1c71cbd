//! Consumers and their operations trail.

/// A new consumer, unless its consumerId is taken.
macro_rules! insert {
    () => {
        "INSERT INTO consumers (issuer_id, consumer_id, state, pi_source, wrapped_key, pi,
                                created_at, updated_at)
         VALUES ($1, $2, 'ACTIVE', $3, $4, $5, $6, $6)
         ON CONFLICT (issuer_id, consumer_id) DO NOTHING"
    };
}

super::statements! {
    /// A consumer's row; `$1` issuer, `$2` consumerId.
    FIND = "consumers",
        "SELECT id, state, pi_source, wrapped_key, pi, created_at, updated_at, generation
         FROM consumers WHERE issuer_id = $1 AND consumer_id = $2";
    /// [`FIND`], locking the row until the transaction ends.
    LOCK = "consumers",
        "SELECT id, state, pi_source, wrapped_key, pi, created_at, updated_at, generation
         FROM consumers WHERE issuer_id = $1 AND consumer_id = $2 FOR UPDATE";
    /// A new consumer unless its consumerId is taken.
    INSERT = "consumers", insert!();
    /// [`INSERT`], answering the new row's id.
    INSERT_RETURNING_ID = "consumers", concat!(insert!(), " RETURNING id");
    /// A deleted consumerId's next life in its existing row.
    RESTART = "consumers",
        "UPDATE consumers SET state = 'ACTIVE', pi_source = $1, wrapped_key = $2, pi = $3,
                              created_at = $4, updated_at = $4, generation = generation + 1
         WHERE id = $5";
    /// New PI under the consumer's data key.
    REPLACE_PI = "consumers",
        "UPDATE consumers SET pi_source = 'STORED', pi = $1, updated_at = $2 WHERE id = $3";
    /// Delete: the wrapped data key goes, which shreds everything sealed under it.
    SHRED = "consumers",
        "UPDATE consumers SET state = 'DELETED', wrapped_key = NULL, pi = NULL, updated_at = $1
         WHERE id = $2";
    /// One successful entry of the trail.
    RECORD = "operations",
        "INSERT INTO operations (consumer_ref, operation_id, operation, status, start_time,
                                 end_time, card_id, reason, reason_code, correlation_id, user_id,
                                 aggregator_id)
         VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9, $10, $11)";
    /// A page of a consumer's trail, newest first, before the cursor `$2`.
    PAGE = "operations",
        "SELECT id, operation_id, operation, status, start_time, end_time, card_id, reason,
                reason_code, correlation_id, user_id, aggregator_id
         FROM operations WHERE consumer_ref = $1 AND id < $2 ORDER BY id DESC LIMIT $3";
    /// `$2` entries of a consumer's trail, newest first, skipping the `$3` newest (v1).
    PAGE_AT = "operations",
        "SELECT operation_id, operation, status, start_time, end_time, card_id, reason,
                reason_code, correlation_id, user_id, aggregator_id
         FROM operations WHERE consumer_ref = $1 ORDER BY id DESC LIMIT $2 OFFSET $3";
    /// Whether the database holds anything a KEK protects.
    HAS_DATA = "issuers",
        "SELECT EXISTS (SELECT 1 FROM issuers) OR EXISTS (SELECT 1 FROM consumers)
             OR EXISTS (SELECT 1 FROM service_keys)";
    /// A fact about the database.
    META = "meta", "SELECT value FROM meta WHERE key = $1";
    /// A fact stored unless one is there already.
    META_ONCE = "meta",
        "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING";
}
