-- Groups. A group's id is the id of its conversation; its members are the
-- conversation's members (role admin or member).
CREATE TABLE group_chats (
    conversation_id  TEXT PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    description      TEXT NOT NULL DEFAULT '',
    avatar           TEXT NOT NULL DEFAULT '',
    created_by       TEXT NOT NULL,
    owner_id         TEXT NOT NULL,
    only_admins_send INTEGER NOT NULL DEFAULT 0,
    only_admins_add  INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);

-- A member sees the changes recorded after they joined (membership events,
-- group updates) besides the messages after joined_seq.
ALTER TABLE conversation_members ADD COLUMN joined_change INTEGER NOT NULL DEFAULT 0;

-- Changes addressed to one user whether or not they are a member: their
-- own removal, a group's deletion, receipts only a message's sender sees.
ALTER TABLE changes ADD COLUMN to_user TEXT NOT NULL DEFAULT '';
CREATE INDEX changes_to_user ON changes (to_user, id) WHERE to_user <> '';

-- Per-message receipt times of a group: the first mark at or after a seq.
CREATE INDEX receipt_marks_seq ON receipt_marks (conversation_id, seq);
