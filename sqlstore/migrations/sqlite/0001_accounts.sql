-- Accounts, devices, sessions, password resets, contacts, blocks, mutes.
-- Times are epoch milliseconds (INTEGER) in every table.
CREATE TABLE users (
    id                   TEXT PRIMARY KEY,
    username             TEXT NOT NULL,
    username_lower       TEXT NOT NULL UNIQUE,
    name                 TEXT NOT NULL DEFAULT '',
    name_lower           TEXT NOT NULL DEFAULT '',
    email                TEXT NOT NULL DEFAULT '',
    email_lower          TEXT NOT NULL DEFAULT '',
    password_hash        TEXT NOT NULL,
    about                TEXT NOT NULL DEFAULT '',
    avatar               TEXT NOT NULL DEFAULT '',
    last_seen_visibility TEXT NOT NULL DEFAULT 'everyone',
    read_receipts        INTEGER NOT NULL DEFAULT 1,
    push_previews        INTEGER NOT NULL DEFAULT 1,
    last_seen_at         INTEGER NOT NULL DEFAULT 0,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);
CREATE INDEX users_name_lower ON users (name_lower);
CREATE INDEX users_email_lower ON users (email_lower) WHERE email_lower <> '';

CREATE TABLE devices (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id  TEXT NOT NULL,
    public_key TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, device_id)
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id  TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE password_resets (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX password_resets_user ON password_resets (user_id);

CREATE TABLE contacts (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    contact_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, contact_id)
);
CREATE INDEX contacts_reverse ON contacts (contact_id);

CREATE TABLE blocks (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, blocked_id)
);
CREATE INDEX blocks_reverse ON blocks (blocked_id);

CREATE TABLE mutes (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    muted_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    until      INTEGER NOT NULL DEFAULT 0, -- 0: until unmuted
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, muted_id)
);
