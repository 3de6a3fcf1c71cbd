-- Operation ids are UUIDv7, unique by construction, and the trail is read by consumer only:
-- the unique index on them cost every trail entry (two per registered card) an index insert.
DROP INDEX operations_by_operation_id;
