//! The operator portal: operators, their sessions (keyed by a hash of the cookie), the
//! operator audit trail, and the card lookups of the portal's search.

super::statements! {
    /// A new operator unless the username is taken.
    INSERT = "operators",
        "INSERT INTO operators (username, role, issuers, password_hash, must_change_password,
                                disabled, failed_sign_ins, locked_until, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, FALSE, 0, NULL, $6, $6) ON CONFLICT DO NOTHING";
    /// Changes what is given; a new password also clears the failed sign-ins and the lock.
    CHANGE = "operators",
        "UPDATE operators SET role = COALESCE($1, role), issuers = COALESCE($2, issuers),
                password_hash = COALESCE($3, password_hash),
                failed_sign_ins = CASE WHEN $3 IS NULL THEN failed_sign_ins ELSE 0 END,
                locked_until = CASE WHEN $3 IS NULL THEN locked_until ELSE NULL END,
                must_change_password = COALESCE($4, must_change_password), updated_at = $5
         WHERE username = $6";
    /// Disables an operator.
    DISABLE = "operators",
        "UPDATE operators SET disabled = TRUE, updated_at = $1 WHERE username = $2";
    /// Every operator, by username.
    EVERY = "operators",
        "SELECT username, role, issuers, password_hash, must_change_password, disabled,
                failed_sign_ins, locked_until, created_at, updated_at
         FROM operators ORDER BY username";
    /// One operator.
    ONE = "operators",
        "SELECT username, role, issuers, password_hash, must_change_password, disabled,
                failed_sign_ins, locked_until, created_at, updated_at
         FROM operators WHERE username = $1";
    /// Counts a failed sign-in in one statement (so that nodes cannot lose a count); the count
    /// reaching `$1` locks until `$2` and starts again from 0.
    FAILED_SIGN_IN = "operators",
        "UPDATE operators SET
                locked_until = CASE WHEN failed_sign_ins + 1 >= $1 THEN $2 ELSE locked_until END,
                failed_sign_ins = CASE WHEN failed_sign_ins + 1 >= $1 THEN 0
                                       ELSE failed_sign_ins + 1 END
         WHERE username = $3
         RETURNING failed_sign_ins, locked_until";
    /// A successful sign-in: no failures counted, no lock.
    SIGNED_IN = "operators",
        "UPDATE operators SET failed_sign_ins = 0, locked_until = NULL
         WHERE username = $1 AND (failed_sign_ins <> 0 OR locked_until IS NOT NULL)";
    /// Whether a username is an operator's.
    EXISTS = "operators", "SELECT 1 FROM operators WHERE username = $1";

    /// A new session.
    INSERT_SESSION = "operator_sessions",
        "INSERT INTO operator_sessions (id_hash, username, csrf_token, created_at, last_seen_at)
         VALUES ($1, $2, $3, $4, $4)";
    /// A session with whether its operator is disabled.
    SESSION = "operator_sessions",
        "SELECT s.username, s.csrf_token, s.created_at, s.last_seen_at, o.disabled
         FROM operator_sessions s JOIN operators o ON o.username = s.username
         WHERE s.id_hash = $1";
    /// Refreshes a session's last use.
    TOUCH_SESSION = "operator_sessions",
        "UPDATE operator_sessions SET last_seen_at = $1 WHERE id_hash = $2 AND last_seen_at < $1";
    /// Ends a session.
    DELETE_SESSION = "operator_sessions", "DELETE FROM operator_sessions WHERE id_hash = $1";
    /// Ends every session of an operator.
    DELETE_SESSIONS_OF = "operator_sessions",
        "DELETE FROM operator_sessions WHERE username = $1";

    /// An audit entry.
    INSERT_AUDIT = "operator_audit",
        "INSERT INTO operator_audit (at, operator, action, issuer_id, consumer_id, card_id,
                                     outcome)
         VALUES ($1, $2, $3, $4, $5, $6, $7)";
    /// Audit entries from `$1` on, newest first (index `operator_audit_by_time`).
    AUDIT = "operator_audit",
        "SELECT at, operator, action, issuer_id, consumer_id, card_id, outcome
         FROM operator_audit WHERE at >= $1 ORDER BY at DESC, id DESC LIMIT $2";
    /// One operator's audit entries from `$2` on, newest first (`operator_audit_by_operator`).
    AUDIT_OF = "operator_audit",
        "SELECT at, operator, action, issuer_id, consumer_id, card_id, outcome
         FROM operator_audit WHERE operator = $1 AND at >= $2 ORDER BY at DESC, id DESC
         LIMIT $3";

    /// The consumer of a card by cardId, deleted or replaced cards included, the latest first
    /// (index `cards_by_card_id`).
    LOCATE_CARD = "cards",
        "SELECT c.consumer_id FROM cards k JOIN consumers c ON c.id = k.consumer_ref
         WHERE k.issuer_id = $1 AND k.card_id = $2 ORDER BY k.id DESC LIMIT 1";
    /// The consumer and cardId of a card by its PAN's MAC (unique index `cards_by_pan`).
    LOCATE_PAN = "cards",
        "SELECT c.consumer_id, k.card_id FROM cards k JOIN consumers c ON c.id = k.consumer_ref
         WHERE k.issuer_id = $1 AND k.pan_mac = $2";
}
