//! The card life cycle: the card an operation names, with its consumer, and the one update
//! every operation makes.

/// The card an operation names (the live one, else the newest of its cardId) with its
/// consumer; `$1` issuer, `$2` cardId. Columns in the order `rules::lifecycle` reads them.
macro_rules! target {
    () => {
        "SELECT k.id, k.consumer_ref, c.consumer_id, c.state, c.generation,
                k.consumer_generation, k.state, k.state_reason, k.model, k.pan_mac, k.expiry,
                k.renewed_expiry, k.ongoing_operation, k.sealed, k.card_product_id,
                k.replaced_by, k.last_operation, k.last_reason_code, k.last_operation_id
         FROM cards k JOIN consumers c ON c.id = k.consumer_ref
         WHERE k.issuer_id = $1 AND k.card_id = $2
         ORDER BY k.id DESC LIMIT 1"
    };
}

super::statements! {
    TARGET = "cards", target!();
    /// What an operation leaves of a card: every column one may change, and the operation
    /// that did it, for the identical-retry rule.
    APPLY = "cards",
        "UPDATE cards SET state = $1, state_reason = $2, expiry = $3, renewed_expiry = $4,
                ongoing_operation = $5, sealed = $6, replaced_by = $7, last_operation = $8,
                last_reason_code = $9, last_operation_id = $10, updated_at = $11
         WHERE id = $12";
    /// A deleted or replaced card leaves the simulated Click to Pay directory.
    LEAVE_DIRECTORY = "directory_cards",
        "DELETE FROM directory_cards WHERE issuer_id = $1 AND consumer_id = $2 AND card_id = $3";
}
