//! The automatic renewal of created cards, and the lease that lets one node run it at a time.

super::statements! {
    /// The task's row, made the first time any node asks for it.
    ADD_RUN = "scheduled_runs",
        "INSERT INTO scheduled_runs (name, lease_until) VALUES ($1, 0)
         ON CONFLICT (name) DO NOTHING";
    /// Takes the task `$2` until `$1` if its lease has run out by `$3`, or has more than
    /// twice as long left as the lease asked for: one taken under a much longer interval than
    /// this node's (before a restart with a shorter one) does not hold the task back for the
    /// rest of that interval, while callers asking for the same length never take it from
    /// each other. One row changed when taken. On PostgreSQL the row lock makes two nodes'
    /// attempts take turns.
    TAKE_RUN = "scheduled_runs",
        "UPDATE scheduled_runs SET lease_until = $1
         WHERE name = $2 AND (lease_until <= $3 OR (lease_until - $3) / 2 > $1 - $3)";
    /// Created cards of live consumers expiring in the month `$1` (MMYY) that no renewal is
    /// waiting on and that can still be renewed, at most `$2`.
    DUE = "cards",
        "SELECT k.issuer_id, k.card_id
         FROM cards k JOIN consumers c ON c.id = k.consumer_ref
         WHERE k.expiry = $1 AND k.model = 'CREATED' AND k.ongoing_operation IS NULL
           AND k.state IN ('ACTIVE', 'INACTIVE', 'SUSPENDED')
           AND c.state = 'ACTIVE' AND c.generation = k.consumer_generation
         ORDER BY k.id LIMIT $2";
}
