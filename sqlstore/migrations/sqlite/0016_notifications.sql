-- Push notifications (API.md §10). Times are epoch milliseconds.

-- The devices a user registered for pushes: a Web Push subscription (JSON)
-- or an FCM/APNs token. last_push_at spaces a device's pushes (collapse).
CREATE TABLE push_devices (
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id    TEXT NOT NULL,
    platform     TEXT NOT NULL,
    token        TEXT NOT NULL DEFAULT '',
    subscription TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    last_push_at INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, device_id)
);

-- The outbox: at most one pending push per device; the messages that
-- arrive before it is sent collapse into it (count, version).
CREATE TABLE push_outbox (
    user_id         TEXT NOT NULL,
    device_id       TEXT NOT NULL,
    notification_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    sender_name     TEXT NOT NULL DEFAULT '',
    count           INTEGER NOT NULL DEFAULT 1,
    version         INTEGER NOT NULL DEFAULT 1,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_at         INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (user_id, device_id),
    FOREIGN KEY (user_id, device_id) REFERENCES push_devices (user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX push_outbox_due ON push_outbox (next_at);

-- Values every node shares (the VAPID key pair), generated once.
CREATE TABLE server_keys (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- How far the outbox has read the change log (one row).
CREATE TABLE push_cursor (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    last INTEGER NOT NULL
);
INSERT INTO push_cursor (id, last) SELECT 1, COALESCE(MAX(id), 0) FROM changes;
