-- Half of each outbox page stays free, so that a claim's lease (`lease_until`, `claim`, which
-- no index covers) updates an item in its own page as a heap-only tuple. On full pages every
-- claimed item was a new tuple elsewhere with an entry in each of the table's three indexes,
-- about 45 µs an item under card load, as much as a third of the cost of writing the card.
ALTER TABLE notifications SET (fillfactor = 50);
