-- Bumped by every change of a group's membership, roles or settings, in the
-- same transaction: a node may keep a group's member list between sends
-- and re-reads it only when the version it finds under the lock moved.
ALTER TABLE conversations ADD COLUMN members_version BIGINT NOT NULL DEFAULT 0;
