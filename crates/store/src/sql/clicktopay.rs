//! Click to Pay: the issuer backend's settings, enrolment and sync jobs and the simulated
//! directory.

/// The card an enrolment names (the live one, else the last deleted one, as Get card reads
/// it) and its consumer; `$1` issuer, `$2` cardId.
macro_rules! enrol_target {
    () => {
        "SELECT k.state, c.id, c.consumer_id, c.state, c.wrapped_key
         FROM cards k JOIN consumers c ON c.id = k.consumer_ref
         WHERE k.issuer_id = $1 AND k.card_id = $2
         ORDER BY k.state = 'DELETED', k.id DESC LIMIT 1"
    };
}

/// Which jobs may be claimed now: leased to nobody (or a lease that ran out), and, for a sync,
/// no earlier job of the same consumer still waiting, so that a sync never overtakes the
/// enrolment or change it follows. Enrolments of one consumer run side by side.
macro_rules! claimable_where {
    () => {
        "j.lease_until <= $1 AND (j.kind = 'ENROL' OR NOT EXISTS (
            SELECT 1 FROM c2p_jobs e WHERE e.consumer_ref = j.consumer_ref AND e.id < j.id))"
    };
}

/// The jobs that may be claimed at `$1`, oldest first, at most `$2`.
macro_rules! claimable {
    () => {
        concat!(
            "SELECT j.id FROM c2p_jobs j WHERE ",
            claimable_where!(),
            " ORDER BY j.id LIMIT $2"
        )
    };
}

/// A job's end: its consumer, and what the enrolment's notification item tells.
macro_rules! finishing {
    () => {
        "SELECT j.consumer_ref, CAST(j.operation_id AS TEXT), j.card_id, j.correlation_id,
                j.issuer_id, c.consumer_id, j.created_at,
                (SELECT o.reason_code FROM operations o WHERE o.operation_id = j.operation_id)
         FROM c2p_jobs j JOIN consumers c ON c.id = j.consumer_ref WHERE j.id = $1"
    };
}

macro_rules! profile_exists {
    () => {
        "SELECT 1 FROM directory_profiles WHERE issuer_id = $1 AND consumer_id = $2"
    };
}

super::statements! {
    /// An issuer's backend, set or replaced.
    UPSERT_BACKEND = "issuer_backends",
        "INSERT INTO issuer_backends (issuer_id, url, client_id, secret, send_card_id,
                                      pi_cache_ttl_s, card_notifications,
                                      notification_batch_size, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (issuer_id) DO UPDATE SET url = excluded.url, client_id = excluded.client_id,
            secret = excluded.secret, send_card_id = excluded.send_card_id,
            pi_cache_ttl_s = excluded.pi_cache_ttl_s,
            card_notifications = excluded.card_notifications,
            notification_batch_size = excluded.notification_batch_size,
            updated_at = excluded.updated_at";
    BACKEND = "issuer_backends",
        "SELECT url, client_id, secret, send_card_id, pi_cache_ttl_s, card_notifications,
                notification_batch_size
         FROM issuer_backends WHERE issuer_id = $1";
    ENROL_TARGET = "cards", enrol_target!();
    /// [`ENROL_TARGET`], locking the consumer: two enrolments of one card take turns, so the
    /// second sees the first's PENDING entry.
    LOCK_ENROL_TARGET = "cards", concat!(enrol_target!(), " FOR UPDATE OF c");
    /// A card's PENDING or SUCCESSFUL enrolment and its status; `$1` consumer, `$2` cardId.
    EXISTING_ENROLMENT = "operations",
        "SELECT CAST(operation_id AS TEXT), status FROM operations
         WHERE consumer_ref = $1 AND operation = 'CLICK_TO_PAY_ENROLMENT' AND card_id = $2
           AND status IN ('PENDING', 'SUCCESSFUL')
         ORDER BY id DESC LIMIT 1";
    /// A card's directory entry: its data key, wrapped, and the card sealed under it.
    DIRECTORY_CARD = "directory_cards",
        "SELECT wrapped_key, sealed FROM directory_cards
         WHERE issuer_id = $1 AND consumer_id = $2 AND card_id = $3";
    /// What the latest enrolment job of a consumer's card was given, sealed, if anything.
    ENROL_JOB_DETAILS = "c2p_jobs",
        "SELECT billing FROM c2p_jobs
         WHERE consumer_ref = $1 AND card_id = $2 AND kind = 'ENROL'
         ORDER BY id DESC LIMIT 1";
    /// The PENDING trail entry of an accepted enrolment, with the body's reason and code.
    PENDING_ENROLMENT = "operations",
        "INSERT INTO operations (consumer_ref, operation_id, operation, status, start_time,
                                 card_id, reason, reason_code, correlation_id, user_id,
                                 aggregator_id)
         VALUES ($1, $2, 'CLICK_TO_PAY_ENROLMENT', 'PENDING', $3, $4, $5, $6, $7, $8, $9)";
    ENROL_JOB = "c2p_jobs",
        "INSERT INTO c2p_jobs (kind, issuer_id, consumer_ref, operation_id, card_id, billing,
                               correlation_id, created_at)
         VALUES ('ENROL', $1, $2, $3, $4, $5, $6, $7)";
    /// A directory sync for a consumer once enrolled; `$1` issuer, `$2` consumer, `$3` now.
    QUEUE_SYNC = "c2p_jobs",
        "INSERT INTO c2p_jobs (kind, issuer_id, consumer_ref, created_at)
         SELECT 'SYNC', $1, $2, $3 WHERE EXISTS (
            SELECT 1 FROM operations WHERE consumer_ref = $2
              AND operation = 'CLICK_TO_PAY_ENROLMENT' AND status IN ('PENDING', 'SUCCESSFUL'))";
    /// Whether any job may be claimed at `$1`: read before claiming, so that an idle node
    /// writes nothing.
    ANY_CLAIMABLE = "c2p_jobs",
        concat!("SELECT 1 FROM c2p_jobs j WHERE ", claimable_where!(), " LIMIT 1");
    CLAIMABLE = "c2p_jobs", claimable!();
    /// [`CLAIMABLE`], skipping the jobs other nodes are claiming.
    LOCK_CLAIMABLE = "c2p_jobs", concat!(claimable!(), " FOR UPDATE OF j SKIP LOCKED");
    LEASE_JOB = "c2p_jobs",
        "UPDATE c2p_jobs SET lease_until = $1, attempts = attempts + 1 WHERE id = $2";
    /// A job with its consumer's row and its card's, still sealed.
    JOB = "c2p_jobs",
        "SELECT j.id, j.kind, j.issuer_id, c.consumer_id, CAST(j.operation_id AS TEXT),
                j.card_id, j.billing, j.correlation_id, j.attempts, j.created_at,
                c.state, c.pi_source, c.wrapped_key, c.pi, k.state, k.sealed
         FROM c2p_jobs j
         JOIN consumers c ON c.id = j.consumer_ref
         LEFT JOIN cards k ON k.id = (
            SELECT x.id FROM cards x
            WHERE x.issuer_id = j.issuer_id AND x.card_id = j.card_id
              AND x.consumer_ref = j.consumer_ref AND x.consumer_generation = c.generation
            ORDER BY x.id DESC LIMIT 1)
         WHERE j.id = $1";
    FINISHING = "c2p_jobs", finishing!();
    LOCK_FINISHING = "c2p_jobs", concat!(finishing!(), " FOR UPDATE OF j");
    /// The end of an enrolment: a failure's reason code replaces the issuer's `reason`, a
    /// success keeps it.
    END_OPERATION = "operations",
        "UPDATE operations SET status = $1, end_time = $2, reason = COALESCE($3, reason)
         WHERE operation_id = $4";
    PI_FETCH = "operations",
        "INSERT INTO operations (consumer_ref, operation_id, operation, status, start_time,
                                 end_time, card_id, reason, correlation_id)
         VALUES ($1, $2, 'PI_FETCH', $3, $4, $5, $6, $7, $8)";
    DELETE_JOB = "c2p_jobs", "DELETE FROM c2p_jobs WHERE id = $1";
    /// One entry of an issuer's trail by its operation id.
    OPERATION = "operations",
        "SELECT o.operation_id, o.operation, o.status, o.start_time, o.end_time, o.card_id,
                o.reason, o.reason_code, o.correlation_id, o.user_id, o.aggregator_id
         FROM operations o JOIN consumers c ON c.id = o.consumer_ref
         WHERE o.operation_id = $1 AND c.issuer_id = $2";
    PROFILE_EXISTS = "directory_profiles", profile_exists!();
    LOCK_PROFILE = "directory_profiles", concat!(profile_exists!(), " FOR UPDATE");
    UPSERT_PROFILE = "directory_profiles",
        "INSERT INTO directory_profiles (issuer_id, consumer_id, wrapped_key, profile,
                                         created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $5)
         ON CONFLICT (issuer_id, consumer_id) DO UPDATE SET wrapped_key = excluded.wrapped_key,
            profile = excluded.profile, updated_at = excluded.updated_at";
    UPSERT_DIRECTORY_CARD = "directory_cards",
        "INSERT INTO directory_cards (issuer_id, consumer_id, card_id, wrapped_key, sealed,
                                      created_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (issuer_id, consumer_id, card_id) DO UPDATE SET
            wrapped_key = excluded.wrapped_key, sealed = excluded.sealed";
    DELETE_DIRECTORY_CARDS = "directory_cards",
        "DELETE FROM directory_cards WHERE issuer_id = $1 AND consumer_id = $2";
    DELETE_PROFILE = "directory_profiles",
        "DELETE FROM directory_profiles WHERE issuer_id = $1 AND consumer_id = $2";
    PROFILE = "directory_profiles",
        "SELECT wrapped_key, profile, created_at, updated_at FROM directory_profiles
         WHERE issuer_id = $1 AND consumer_id = $2";
    DIRECTORY_CARD_IDS = "directory_cards",
        "SELECT card_id FROM directory_cards WHERE issuer_id = $1 AND consumer_id = $2
         ORDER BY created_at, card_id";
    /// Leases of a process that is gone (SQLite: only one process serves a file).
    RELEASE_JOB_LEASES = "c2p_jobs",
        "UPDATE c2p_jobs SET lease_until = 0 WHERE lease_until > 0";
}
