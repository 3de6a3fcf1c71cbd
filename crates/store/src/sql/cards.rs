//! Card products, cards and Create card's idempotency keys.

/// The columns every card read selects, in the order `rules::cards` reads them.
macro_rules! card_columns {
    () => {
        "SELECT c.consumer_id, k.card_id, k.card_product_id, k.state, k.scheme, k.last4,
                k.expiry, k.created_at, k.updated_at, c.state, c.generation,
                k.consumer_generation, k.state_reason, k.ongoing_operation, k.renewed_expiry,
                k.replaces, k.replaced_by
         FROM cards k JOIN consumers c ON c.id = k.consumer_ref"
    };
}

super::statements! {
    /// A product unless it exists.
    INSERT_PRODUCT = "card_products",
        "INSERT INTO card_products (issuer_id, card_product_id, scheme, bin, validity_months,
                                    created_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING";
    /// An issuer's product.
    PRODUCT = "card_products",
        "SELECT scheme, bin, validity_months FROM card_products
         WHERE issuer_id = $1 AND card_product_id = $2";
    /// The live card under a cardId: neither DELETED nor REPLACED, whose ids may be reused.
    LIVE = "cards",
        "SELECT id, consumer_ref, card_product_id, state, pan_mac, expiry FROM cards
         WHERE issuer_id = $1 AND card_id = $2 AND state NOT IN ('DELETED', 'REPLACED')";
    /// Whether a PAN (by its MAC) was ever registered with the issuer, deleted ones included.
    PAN_KNOWN = "cards",
        "SELECT EXISTS (SELECT 1 FROM cards WHERE issuer_id = $1 AND pan_mac = $2)";
    /// A new card.
    INSERT = "cards",
        "INSERT INTO cards (issuer_id, card_id, consumer_ref, consumer_generation,
                            card_product_id, state, pan_mac, sealed, last4, expiry, scheme,
                            created_at, updated_at, model, replaces)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14)";
    /// A registered card again, with a new state or expiry. A new state was set by no
    /// life-cycle operation: its reason and the retry of the operation before it are gone.
    REFRESH = "cards",
        "UPDATE cards SET state = $1, expiry = $2, sealed = $3, updated_at = $4,
                state_reason = CASE WHEN state = $1 THEN state_reason END,
                last_operation = CASE WHEN state = $1 THEN last_operation END
         WHERE id = $5";
    /// A card by id: the live one, else the most recent deleted or replaced one (the live
    /// one, if any, is the newest of its cardId).
    BY_ID = "cards",
        concat!(card_columns!(), " WHERE k.issuer_id = $1 AND k.card_id = $2
             ORDER BY k.state = 'DELETED', k.id DESC LIMIT 1");
    /// The cards of a consumer's life `$2`.
    OF_CONSUMER = "cards",
        concat!(card_columns!(), " WHERE k.consumer_ref = $1 AND k.consumer_generation = $2
             ORDER BY k.id");
    /// The delete cascade: every live card of a consumer's life, its sealed data shredded.
    DELETE_OF_CONSUMER = "cards",
        "UPDATE cards SET state = 'DELETED', sealed = NULL, updated_at = $1
         WHERE consumer_ref = $2 AND consumer_generation = $3
           AND state NOT IN ('DELETED', 'REPLACED')
         RETURNING card_id";
    /// The request an Idempotency-Key came with first, and its card.
    IDEMPOTENCY_KEY = "idempotency_keys",
        "SELECT request_hash, card_id FROM idempotency_keys WHERE issuer_id = $1 AND key = $2";
    /// An Idempotency-Key's first use. A concurrent use of the key fails this insert; the
    /// use case then runs again and answers with the winner's card.
    INSERT_IDEMPOTENCY_KEY = "idempotency_keys",
        "INSERT INTO idempotency_keys (issuer_id, key, request_hash, card_id, created_at)
         VALUES ($1, $2, $3, $4, $5)";
}

/// Opens the v1 Register consumer with cards, all or nothing.
pub(crate) const SAVEPOINT: &str = "SAVEPOINT v1_cards";
/// Keeps what the savepoint covered.
pub(crate) const RELEASE: &str = "RELEASE SAVEPOINT v1_cards";
/// Takes back what the savepoint covered, and ends it.
pub(crate) const ROLLBACK: &str = "ROLLBACK TO SAVEPOINT v1_cards; RELEASE SAVEPOINT v1_cards";
