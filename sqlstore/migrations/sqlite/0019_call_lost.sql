-- A call's device that lost its last socket (on every node) during the
-- call: epoch milliseconds since when, 0 while it has one. The lost-calls
-- job ends a call whose device stayed lost past the grace period; a socket
-- of that device reconnecting, on any node, sets it back to 0.
ALTER TABLE calls ADD COLUMN caller_lost_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN callee_lost_at INTEGER NOT NULL DEFAULT 0;
-- The live calls of one user, which every socket connect and disconnect
-- of theirs looks at.
CREATE INDEX calls_live_caller ON calls (caller_id) WHERE state IN ('ringing', 'accepted');
CREATE INDEX calls_live_callee ON calls (callee_id) WHERE state IN ('ringing', 'accepted');
