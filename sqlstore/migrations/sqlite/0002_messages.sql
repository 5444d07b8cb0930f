-- Conversations, members with receipt cursors, messages, and the change
-- log that /api/sync reads. One sequence per conversation numbers its
-- messages; one global, commit-ordered counter numbers changes.
CREATE TABLE conversations (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,             -- direct | group | channel
    direct_key      TEXT UNIQUE,               -- "<lower id>|<higher id>" for direct chats
    last_seq        INTEGER NOT NULL DEFAULT 0,
    last_message_at INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL
);

CREATE TABLE conversation_members (
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role            TEXT NOT NULL DEFAULT 'member',
    joined_at       INTEGER NOT NULL,
    joined_seq      INTEGER NOT NULL DEFAULT 0, -- sees messages with seq > joined_seq
    delivered_seq   INTEGER NOT NULL DEFAULT 0, -- cursor: everything up to here delivered
    read_seq        INTEGER NOT NULL DEFAULT 0, -- cursor: everything up to here seen
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX conversation_members_user ON conversation_members (user_id);

-- One row per cursor advance (not per message): the time a message was
-- delivered or seen is that of the first advance that reached its seq.
CREATE TABLE receipt_marks (
    conversation_id TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    kind            TEXT NOT NULL,             -- delivered | seen
    seq             INTEGER NOT NULL,
    at              INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, user_id, kind, seq)
);

CREATE TABLE messages (
    id                   TEXT PRIMARY KEY,
    conversation_id      TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq                  INTEGER NOT NULL,
    sender_id            TEXT NOT NULL,
    recipient_id         TEXT NOT NULL DEFAULT '',
    client_message_id    TEXT,                  -- NULL when the client gave none
    content              TEXT NOT NULL,
    content_hash         TEXT NOT NULL,
    type                 TEXT NOT NULL,
    media_id             TEXT NOT NULL DEFAULT '',
    reply_to_id          TEXT NOT NULL DEFAULT '',
    sent_at              INTEGER NOT NULL,
    edited_at            INTEGER NOT NULL DEFAULT 0,
    deleted_for_everyone INTEGER NOT NULL DEFAULT 0,
    UNIQUE (conversation_id, seq),
    UNIQUE (sender_id, client_message_id)
);

CREATE TABLE message_reactions (
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    reaction   TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (message_id, user_id)
);

-- "Delete for me": hidden for one user only.
CREATE TABLE message_hidden (
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    PRIMARY KEY (user_id, message_id)
);

CREATE TABLE change_counter (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    last INTEGER NOT NULL
);
INSERT INTO change_counter (id, last) VALUES (1, 0);

-- The sync log. Each row is one event of a conversation; only_user limits
-- it to one member (delete for me). new_message rows carry no payload: sync
-- reads the message's current state instead.
CREATE TABLE changes (
    id              INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    seq             INTEGER NOT NULL,          -- the message seq it concerns (visibility by joined_seq)
    event           TEXT NOT NULL,
    message_id      TEXT NOT NULL DEFAULT '',
    only_user       TEXT NOT NULL DEFAULT '',
    payload         TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL
);
CREATE INDEX changes_conversation ON changes (conversation_id, id);
CREATE INDEX changes_message ON changes (message_id);

CREATE TABLE scheduled_messages (
    id                TEXT PRIMARY KEY,
    sender_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    recipient_id      TEXT NOT NULL,
    client_message_id TEXT,
    content           TEXT NOT NULL,
    type              TEXT NOT NULL,
    media_id          TEXT NOT NULL DEFAULT '',
    reply_to_id       TEXT NOT NULL DEFAULT '',
    scheduled_at      INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    status            TEXT NOT NULL DEFAULT 'pending', -- pending | sent | cancelled | failed
    claimed_by        TEXT NOT NULL DEFAULT '',
    claimed_until     INTEGER NOT NULL DEFAULT 0,
    UNIQUE (sender_id, client_message_id)
);
CREATE INDEX scheduled_due ON scheduled_messages (status, scheduled_at);
CREATE INDEX scheduled_sender ON scheduled_messages (sender_id, status, scheduled_at);
