-- Statuses (API.md §7): 24-hour stories. Times are epoch milliseconds.
CREATE TABLE statuses (
    id               TEXT PRIMARY KEY,
    owner_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type             TEXT NOT NULL,
    content          TEXT NOT NULL,
    media_id         TEXT NOT NULL DEFAULT '',
    background_color TEXT NOT NULL DEFAULT '',
    font_style       TEXT NOT NULL DEFAULT '',
    visible_to       TEXT NOT NULL,
    owner_key        TEXT NOT NULL DEFAULT '', -- the key the owner wrapped for themselves
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL          -- never shown from this instant on; then purged
);
CREATE INDEX statuses_owner ON statuses (owner_id, expires_at);
CREATE INDEX statuses_expiry ON statuses (expires_at);
CREATE INDEX statuses_media ON statuses (media_id) WHERE media_id <> '';

-- The users a status was sent to, each with the key wrapped for them, and
-- their first view (0: not yet). Whether they still see it is decided at
-- each read: still the owner's contact, no block either way.
CREATE TABLE status_viewers (
    status_id     TEXT NOT NULL REFERENCES statuses (id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    encrypted_key TEXT NOT NULL,
    viewed_at     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (status_id, user_id)
);
CREATE INDEX status_viewers_user ON status_viewers (user_id);

-- A direct message may answer a status (replyToStatusId).
ALTER TABLE messages ADD COLUMN reply_to_status_id TEXT NOT NULL DEFAULT '';
