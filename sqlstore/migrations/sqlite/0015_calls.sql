-- Voice and video calls (API.md §9). The state is the one every node
-- reads; moves are conditional updates on it. Times are epoch
-- milliseconds; 0 means not yet.
CREATE TABLE calls (
    id            TEXT PRIMARY KEY,
    caller_id     TEXT NOT NULL,
    callee_id     TEXT NOT NULL,
    type          TEXT NOT NULL,
    state         TEXT NOT NULL,
    reason        TEXT NOT NULL DEFAULT '',
    caller_device TEXT NOT NULL,
    callee_device TEXT NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    answered_at   INTEGER NOT NULL DEFAULT 0,
    ended_at      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX calls_caller ON calls (caller_id, created_at);
CREATE INDEX calls_callee ON calls (callee_id, created_at);
-- The calls the missed-call job and the busy check look at.
CREATE INDEX calls_live ON calls (state, created_at) WHERE state IN ('ringing', 'accepted');
