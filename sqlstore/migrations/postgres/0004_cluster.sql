-- What several nodes serving one set of users share beyond the data
-- itself: who is online on which node (under per-node leases), and the
-- token buckets of rate limits. All of it is short-lived: the rows of a
-- dead node are swept, idle buckets pruned.

-- One row per node, renewed while the node lives.
CREATE TABLE presence_nodes (
    node_id    TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

-- A node holds sockets of a user (or lost the last one less than the
-- grace period ago).
CREATE TABLE presence_sockets (
    user_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    PRIMARY KEY (user_id, node_id)
);
CREATE INDEX presence_sockets_node ON presence_sockets (node_id);

-- Users announced online. Inserting the row announces "online" and
-- deleting it "offline", so each change is announced by exactly one node.
CREATE TABLE presence_users (
    user_id      TEXT PRIMARY KEY,
    online_since BIGINT NOT NULL
);

-- Rate-limit token buckets, by route and client address.
CREATE TABLE rate_buckets (
    bucket     TEXT PRIMARY KEY,
    tokens     DOUBLE PRECISION NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX rate_buckets_updated ON rate_buckets (updated_at);
