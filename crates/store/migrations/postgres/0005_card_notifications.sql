-- Notifications of every card operation (contract section 9a), PostgreSQL (as
-- migrations/sqlite/0006). The outbox holds one item per card operation, with the correlation
-- id of the request that caused it, so that delivery can batch several items of an issuer
-- into one call; it held one prebuilt envelope per row before. A row is claimed by a tag, so
-- that one statement settles every item a claim delivered. The issuer backend's settings say
-- which operations are notified and how many items a call may carry.

ALTER TABLE issuer_backends
    ADD COLUMN card_notifications TEXT NOT NULL DEFAULT 'all'
        CHECK (card_notifications IN ('all', 'click-to-pay', 'off')),
    ADD COLUMN notification_batch_size BIGINT NOT NULL DEFAULT 1
        CHECK (notification_batch_size BETWEEN 1 AND 100);

ALTER TABLE notifications
    ADD COLUMN item TEXT,
    ADD COLUMN correlation_id TEXT,
    ADD COLUMN claim BIGINT NOT NULL DEFAULT 0;

-- Rows of the previous shape keep their place in the queue: each envelope held one item,
-- which gains the consumerId and endTime items now carry.
UPDATE notifications n SET
    item = ((n.body::jsonb -> 'operations' -> 0)
        || jsonb_strip_nulls(jsonb_build_object(
               'consumerId', c.consumer_id,
               'endTime', to_char(to_timestamp(o.end_time / 1000.0) AT TIME ZONE 'UTC',
                                  'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))))::text,
    correlation_id = o.correlation_id,
    lease_until = 0
FROM operations o JOIN consumers c ON c.id = o.consumer_ref
WHERE o.operation_id = n.operation_id;
-- One whose trail entry is gone keeps its item as it was.
UPDATE notifications SET item = (body::jsonb -> 'operations' -> 0)::text, lease_until = 0
WHERE item IS NULL;

ALTER TABLE notifications ALTER COLUMN item SET NOT NULL, DROP COLUMN body;
