-- Single-use tickets that open the plain WebSocket (GET /ws?ticket=) without
-- a bearer token in the URL. Both columns are SHA-256 hashes; a ticket lives
-- 30 seconds and is deleted when used (or by the next ticket made after it
-- expired).
CREATE TABLE ws_tickets (
    ticket_hash TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX ws_tickets_expiry ON ws_tickets (expires_at);
