-- The automatic renewal of created cards (contract section 6, "Renew").

-- A task that must run once across all nodes holds its row's lease while it runs; a node
-- takes it only once the lease has run out.
CREATE TABLE scheduled_runs (
    name        TEXT PRIMARY KEY,
    lease_until INTEGER NOT NULL
);

-- Created cards that no renewal is waiting on, by expiry: the ones the task looks at.
-- Registered cards are not in it, so it costs Register card nothing.
CREATE INDEX cards_due_renewal ON cards (expiry)
    WHERE model = 'CREATED' AND ongoing_operation IS NULL;
