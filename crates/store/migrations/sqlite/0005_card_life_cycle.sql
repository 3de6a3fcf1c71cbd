-- The card life cycle (contract section 6): suspend, resume, delete, renew, replace, activate.

-- How the card came to be: REGISTERED (the issuer's PAN, a JWE) or CREATED (a PAN we
-- allocated). Renew and replace differ between the two. Cards stored before this migration
-- were created when their id has the shape Create card gives (`crd_` and 26 characters).
ALTER TABLE cards ADD COLUMN model TEXT NOT NULL DEFAULT 'REGISTERED';
UPDATE cards SET model = 'CREATED' WHERE card_id LIKE 'crd\_%' ESCAPE '\' AND length(card_id) = 30;
-- The reasonCode of the operation that set the current state (`stateReason`).
ALTER TABLE cards ADD COLUMN state_reason TEXT;
-- 'RENEWAL' while a created card's renewal waits for activation, with its new expiry.
ALTER TABLE cards ADD COLUMN ongoing_operation TEXT;
ALTER TABLE cards ADD COLUMN renewed_expiry TEXT;
-- The cardIds of the card this one replaced, and of the card that replaced it.
ALTER TABLE cards ADD COLUMN replaces TEXT;
ALTER TABLE cards ADD COLUMN replaced_by TEXT;
-- The last life-cycle operation on the card, its reasonCode and operationId: an identical
-- retry answers with that operationId and changes nothing.
ALTER TABLE cards ADD COLUMN last_operation TEXT;
ALTER TABLE cards ADD COLUMN last_reason_code TEXT;
ALTER TABLE cards ADD COLUMN last_operation_id TEXT;
