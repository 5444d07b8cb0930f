-- Leases of background jobs (package jobs): a leased job runs on the node
-- that holds its lease, until expires_at (epoch milliseconds) unless renewed.
CREATE TABLE job_leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
