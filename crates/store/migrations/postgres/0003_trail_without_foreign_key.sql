-- The operations trail keeps consumer_ref without a foreign key. Its check cost PostgreSQL a
-- lookup and a KEY SHARE lock on the consumer's row for every trail entry, about a sixth of the
-- database's CPU per registration, and could never fire: a consumer row is never deleted (a
-- deleted consumerId keeps its row, shredded), and every entry takes its consumer_ref from a
-- row read in the same transaction, the consumer's own or that of a Click to Pay job, which
-- keeps its foreign key, as cards do.
ALTER TABLE operations DROP CONSTRAINT IF EXISTS operations_consumer_ref_fkey;
