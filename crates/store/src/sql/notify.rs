//! The outbox of card operation notifications: one item per card operation, queued where
//! the issuer's backend takes it, claimed many at a time under a tag, settled by that tag.

/// Which items `n` are due at `$now`: none leased, none with an older item of its card still
/// waiting (so a card's items go out one after the other).
macro_rules! due {
    ($now:literal) => {
        concat!(
            "n.state = 'PENDING' AND n.next_attempt_at <= ",
            $now,
            " AND n.lease_until <= ",
            $now,
            " AND NOT EXISTS (SELECT 1 FROM notifications p
                              WHERE p.issuer_id = n.issuer_id AND p.card_id = n.card_id
                                AND p.state = 'PENDING' AND p.id < n.id)"
        )
    };
}

/// The claim of due items, the longest due first. `$1` lease end, `$2` the claim's tag, `$3`
/// now, `$4` how many; the locking clause goes inside the subquery. The order is the due
/// index's own (`state, next_attempt_at`, then the row id), so the claim reads as many items
/// as it takes and stops: ordered by id alone, it read and sorted every due item, and under
/// a backlog of thousands each claim cost more than the deliveries it started.
macro_rules! claim {
    ($locking:literal) => {
        concat!(
            "UPDATE notifications SET lease_until = $1, claim = $2
             WHERE id IN (
                SELECT n.id FROM notifications n WHERE ",
            due!("$3"),
            " ORDER BY n.next_attempt_at, n.id LIMIT $4",
            $locking,
            ")
             RETURNING id, issuer_id, card_id, CAST(operation_id AS TEXT), item, correlation_id,
                       attempts, created_at"
        )
    };
}

super::statements! {
    /// An item, if the issuer has a backend whose setting is one of `$7`, `$8`: one
    /// statement, so that a card operation pays for its notification with one insert.
    QUEUE = "notifications",
        "INSERT INTO notifications (issuer_id, card_id, operation_id, item, correlation_id,
                                    state, next_attempt_at, created_at)
         SELECT $1, $2, $3, $4, $5, 'PENDING', $6, $6 FROM issuer_backends
         WHERE issuer_id = $1 AND card_notifications IN ($7, $8)";
    /// Whether any item is due at `$1`: read before claiming, so that an idle node writes
    /// nothing.
    ANY_DUE = "notifications",
        concat!("SELECT 1 FROM notifications n WHERE ", due!("$1"), " LIMIT 1");
    CLAIM = "notifications", claim!("");
    /// [`CLAIM`], skipping the items other nodes are claiming.
    LOCK_CLAIM = "notifications", claim!(" FOR UPDATE OF n SKIP LOCKED");
    /// A claimed row that does not decode keeps its lease but leaves the claim, so that
    /// settling the claim does not take it for delivered.
    UNCLAIM = "notifications", "UPDATE notifications SET claim = 0 WHERE id = $1";
    /// Every item of the claim `$3` still held by it: delivered. `$1`..`$2` bound the ids,
    /// so the primary key finds them.
    DELIVERED = "notifications",
        "DELETE FROM notifications WHERE id BETWEEN $1 AND $2 AND claim = $3";
    /// An item to try again at `$1`, unless another claim took it since.
    RETRY = "notifications",
        "UPDATE notifications SET attempts = attempts + 1, next_attempt_at = $1,
                lease_until = 0, claim = 0
         WHERE id = $2 AND claim = $3";
    /// The trail entry of an item given up on says so.
    MARK_OPERATION_DEAD = "operations",
        "UPDATE operations SET reason_code = 'NOTIFICATION_DEAD' WHERE operation_id =
            (SELECT operation_id FROM notifications WHERE id = $1 AND claim = $2)";
    MARK_DEAD = "notifications",
        "UPDATE notifications SET state = 'DEAD', attempts = attempts + 1, claim = 0
         WHERE id = $1 AND claim = $2";
    /// Leases of a process that is gone (SQLite: only one process serves a file).
    RELEASE_LEASES = "notifications",
        "UPDATE notifications SET lease_until = 0, claim = 0 WHERE lease_until > 0";
}
