-- What a member removed from a group keeps: read access (history and
-- sync) to the messages and changes of the time they were a member, and
-- nothing after. One row per removal; a member removed again later gets a
-- second row. Only used while the user is not a member again.
CREATE TABLE former_members (
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL,
    joined_seq      INTEGER NOT NULL, -- saw messages with joined_seq < seq <= left_seq
    left_seq        INTEGER NOT NULL,
    joined_change   INTEGER NOT NULL, -- and changes with joined_change < id < left_change
    left_change     INTEGER NOT NULL, -- the id of the removal's own change
    PRIMARY KEY (user_id, conversation_id, left_change)
);
CREATE INDEX former_members_conversation ON former_members (conversation_id);
