-- Notifications beyond messages (calls, join requests, key requests, admin
-- pushes), e-mail through the outbox, and devices tied to the session that
-- registered them. Times are epoch milliseconds.

-- The session (token hash) that registered a device: its logout removes
-- the device. Empty for devices registered before this migration.
ALTER TABLE push_devices ADD COLUMN session_hash TEXT NOT NULL DEFAULT '';
CREATE INDEX push_devices_session ON push_devices (session_hash);

-- The outbox now holds one pending push per device and topic: all of a
-- device's message pushes share the topic 'm' (and collapse), a call has
-- its own, join and key requests one per community. kind says what the
-- push is about, data holds its fields other than the conversation and the
-- sender's name (JSON, never message content). A node sending a push
-- claims it until claim_until, so no other node sends it meanwhile.
CREATE TABLE push_outbox_topics (
    user_id         TEXT NOT NULL,
    device_id       TEXT NOT NULL,
    topic           TEXT NOT NULL,
    kind            TEXT NOT NULL,
    notification_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL DEFAULT '',
    sender_name     TEXT NOT NULL DEFAULT '',
    data            TEXT NOT NULL DEFAULT '{}',
    count           INTEGER NOT NULL DEFAULT 1,
    version         INTEGER NOT NULL DEFAULT 1,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_at         INTEGER NOT NULL,
    claim_until     INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (user_id, device_id, topic),
    FOREIGN KEY (user_id, device_id) REFERENCES push_devices (user_id, device_id) ON DELETE CASCADE
);
INSERT INTO push_outbox_topics (user_id, device_id, topic, kind, notification_id, conversation_id, sender_name,
    count, version, attempts, next_at, created_at)
SELECT user_id, device_id, 'm', 'message', notification_id, conversation_id, sender_name,
    count, version, attempts, next_at, created_at FROM push_outbox;
DROP TABLE push_outbox;
ALTER TABLE push_outbox_topics RENAME TO push_outbox;
CREATE INDEX push_outbox_due ON push_outbox (next_at);

-- E-mail waiting to be sent: a password reset (kind 'reset': the token is
-- made when it is sent, so none is ever stored in clear), a new-device
-- sign-in alert or an admin's e-mail. Written in the transaction of what
-- caused it; retried with backoff until sent; claimed like pushes.
CREATE TABLE mail_outbox (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    to_addr    TEXT NOT NULL,
    subject    TEXT NOT NULL DEFAULT '',
    body       TEXT NOT NULL DEFAULT '',
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_at     INTEGER NOT NULL,
    claim_until INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_at);
