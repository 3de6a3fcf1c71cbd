-- Cards keep consumer_ref without a foreign key, as the trail does (0003). Its check cost
-- PostgreSQL a lookup and a KEY SHARE lock on the consumer's row for every card written, and
-- could never fire: a consumer row is never deleted (a deleted consumerId keeps its row,
-- shredded), and every card takes its consumer_ref from a row that its transaction locked,
-- or registered, itself (the consumer's lock in each use case, and `FOR SHARE` or the
-- consumer's insert in the group commit of new cards).
ALTER TABLE cards DROP CONSTRAINT IF EXISTS cards_consumer_ref_fkey;
