-- The card life cycle (contract section 6), PostgreSQL (the same columns as
-- migrations/sqlite/0005).

-- How the card came to be: REGISTERED (the issuer's PAN, a JWE) or CREATED (a PAN we
-- allocated). Cards stored before this migration were created when their id has the shape
-- Create card gives (`crd_` and 26 characters).
ALTER TABLE cards ADD COLUMN model TEXT NOT NULL DEFAULT 'REGISTERED';
UPDATE cards SET model = 'CREATED' WHERE card_id LIKE 'crd\_%' ESCAPE '\' AND length(card_id) = 30;
ALTER TABLE cards ADD COLUMN state_reason TEXT;
ALTER TABLE cards ADD COLUMN ongoing_operation TEXT;
ALTER TABLE cards ADD COLUMN renewed_expiry TEXT;
ALTER TABLE cards ADD COLUMN replaces TEXT;
ALTER TABLE cards ADD COLUMN replaced_by TEXT;
ALTER TABLE cards ADD COLUMN last_operation TEXT;
ALTER TABLE cards ADD COLUMN last_reason_code TEXT;
ALTER TABLE cards ADD COLUMN last_operation_id TEXT;

-- A REPLACED card's cardId may be reused, like a DELETED one's: neither is live.
DROP INDEX cards_live_card_id;
CREATE UNIQUE INDEX cards_live_card_id ON cards (issuer_id, card_id)
    WHERE state NOT IN ('DELETED', 'REPLACED');
