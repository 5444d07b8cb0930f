-- Uploaded files (API.md §8): metadata here, the encrypted bytes in the
-- blob store under id (and id || '.thumb'). Times are epoch milliseconds.
CREATE TABLE media (
    id            TEXT PRIMARY KEY,
    owner_id      TEXT NOT NULL,
    file_type     TEXT NOT NULL,
    mime_type     TEXT NOT NULL,
    original_name TEXT NOT NULL,
    size          INTEGER NOT NULL,
    sha256        TEXT NOT NULL,
    file_iv       TEXT NOT NULL,
    thumb_iv      TEXT NOT NULL,
    encrypted_key TEXT NOT NULL,
    thumb_size    INTEGER NOT NULL,
    thumb_sha256  TEXT NOT NULL,
    uploaded_at   INTEGER NOT NULL,
    used_at       INTEGER NOT NULL DEFAULT 0, -- first use by a message; 0: unused
    -- When the collector is to look at the file: uploaded_at + 24 h at
    -- first, 1 (at once) when a message using it is deleted, 0 (never)
    -- while a message uses it.
    check_after   INTEGER NOT NULL
);
CREATE INDEX media_unused_by_owner ON media (owner_id) WHERE used_at = 0;
CREATE INDEX media_check ON media (check_after) WHERE check_after > 0;
CREATE INDEX messages_media ON messages (media_id) WHERE media_id <> '';
CREATE INDEX scheduled_media ON scheduled_messages (media_id) WHERE media_id <> '';
CREATE INDEX users_avatar ON users (avatar) WHERE avatar <> '';
