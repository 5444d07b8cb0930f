-- Communities and their channels (API.md §6). A channel's id is the id of
-- its conversation (kind 'channel'); the users who may read a channel are
-- that conversation's members, so history, receipts, chats and sync work
-- as for groups. A community's own members, with their role and whether
-- they are still waiting for approval, are in community_members.
CREATE TABLE communities (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    name_lower      TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    avatar          TEXT NOT NULL DEFAULT '',
    cover_image     TEXT NOT NULL DEFAULT '',
    created_by      TEXT NOT NULL,
    owner_id        TEXT NOT NULL,
    is_private      BOOLEAN NOT NULL DEFAULT FALSE,
    community_key   TEXT NOT NULL DEFAULT '', -- "trusted" communities: the key every member gets
    default_channel TEXT NOT NULL DEFAULT '',
    members_count   BIGINT NOT NULL DEFAULT 0, -- approved members
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX communities_public_name ON communities (name_lower) WHERE NOT is_private;

CREATE TABLE community_members (
    community_id  TEXT NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role          TEXT NOT NULL,              -- owner | admin | member
    status        TEXT NOT NULL,              -- member | pending
    encrypted_key TEXT NOT NULL DEFAULT '',   -- the member's wrapped community key
    joined_at     BIGINT NOT NULL,           -- or asked to join, while pending
    PRIMARY KEY (community_id, user_id)
);
CREATE INDEX community_members_user ON community_members (user_id);
CREATE INDEX community_members_pending ON community_members (community_id, joined_at) WHERE status = 'pending';

CREATE TABLE channels (
    conversation_id TEXT PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
    community_id    TEXT NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    type            TEXT NOT NULL,             -- text | voice | announcement
    is_private      BOOLEAN NOT NULL DEFAULT FALSE,
    created_by      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX channels_community ON channels (community_id, created_at);

-- Each member's wrapped channel key, stored and handed back as given.
CREATE TABLE channel_keys (
    channel_id  TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL,
    wrapped_key TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (channel_id, user_id)
);

CREATE TABLE channel_pins (
    channel_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    pinned_by  TEXT NOT NULL,
    pinned_at  BIGINT NOT NULL,
    PRIMARY KEY (channel_id, message_id)
);
CREATE INDEX channel_pins_message ON channel_pins (message_id);
