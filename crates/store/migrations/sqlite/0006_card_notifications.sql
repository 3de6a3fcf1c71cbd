-- Notifications of every card operation (contract section 9a). The outbox holds one item per
-- card operation, with the correlation id of the request that caused it, so that delivery can
-- batch several items of an issuer into one call; it held one prebuilt envelope per row
-- before. A row is claimed by a tag, so that one statement settles every item a claim
-- delivered. The issuer backend's settings say which operations are notified and how many
-- items a call may carry.

ALTER TABLE issuer_backends ADD COLUMN card_notifications TEXT NOT NULL DEFAULT 'all'
    CHECK (card_notifications IN ('all', 'click-to-pay', 'off'));
ALTER TABLE issuer_backends ADD COLUMN notification_batch_size INTEGER NOT NULL DEFAULT 1
    CHECK (notification_batch_size BETWEEN 1 AND 100);

CREATE TABLE notification_items (
    id              INTEGER PRIMARY KEY,
    issuer_id       TEXT NOT NULL,
    card_id         TEXT NOT NULL,
    operation_id    TEXT NOT NULL,
    -- The item's JSON object, as it goes into the envelope; no PI in it.
    item            TEXT NOT NULL,
    correlation_id  TEXT,
    state           TEXT NOT NULL CHECK (state IN ('PENDING', 'DEAD')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER NOT NULL DEFAULT 0,
    claim           INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL
);

-- Rows of the previous shape keep their place in the queue: each envelope held one item,
-- which gains the consumerId and endTime items now carry.
INSERT INTO notification_items (id, issuer_id, card_id, operation_id, item, correlation_id,
                                state, attempts, next_attempt_at, lease_until, created_at)
SELECT n.id, n.issuer_id, n.card_id, n.operation_id,
       json_set(json_extract(n.body, '$.operations[0]'),
                '$.consumerId', c.consumer_id,
                '$.endTime', strftime('%Y-%m-%dT%H:%M:%fZ', o.end_time / 1000.0, 'unixepoch')),
       o.correlation_id, n.state, n.attempts, n.next_attempt_at, 0, n.created_at
FROM notifications n
LEFT JOIN operations o ON o.id = (SELECT x.id FROM operations x
                                  WHERE x.operation_id = n.operation_id LIMIT 1)
LEFT JOIN consumers c ON c.id = o.consumer_ref;

DROP TABLE notifications;
ALTER TABLE notification_items RENAME TO notifications;
CREATE INDEX notifications_due ON notifications (state, next_attempt_at);
CREATE INDEX notifications_by_card ON notifications (issuer_id, card_id, id);
