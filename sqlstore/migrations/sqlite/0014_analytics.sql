-- Analytics counters (API.md §11), kept by the send path in the same
-- transaction as the messages: one row per user and UTC day (day = days
-- since 1970-01-01, i.e. sent_at / 86400000), one row per day for the
-- whole server. Edits and deletions do not touch them.
CREATE TABLE user_daily_stats (
    user_id      TEXT NOT NULL,
    day          INTEGER NOT NULL,
    sent         INTEGER NOT NULL DEFAULT 0, -- messages the user sent
    received     INTEGER NOT NULL DEFAULT 0, -- messages sent to the user by others
    last_sent_at INTEGER NOT NULL DEFAULT 0, -- epoch ms of the user's last send that day; 0: none
    PRIMARY KEY (user_id, day)
);

CREATE TABLE daily_stats (
    day           INTEGER PRIMARY KEY,
    messages_sent INTEGER NOT NULL DEFAULT 0,
    active_users  INTEGER NOT NULL DEFAULT 0 -- users with sent > 0 that day
);

-- The senders of each day by how many days before it they last sent (gap
-- 1 to 366; 367: earlier, or never). The distinct senders of days
-- from..to (at most 366 days) are those whose gap on their day d is more
-- than d - from: each counted once, on their first day in the range, from
-- a few rows per day rather than a row per user and day.
CREATE TABLE daily_sender_gaps (
    day     INTEGER NOT NULL,
    gap     INTEGER NOT NULL,
    senders INTEGER NOT NULL,
    PRIMARY KEY (day, gap)
);

-- Counts of the messages sent before this migration. "Received" counts the
-- members who could see each message: the recipient of a direct message,
-- and the current and former members of a group who were in it when it
-- was sent, the sender excepted.
INSERT INTO user_daily_stats (user_id, day, sent, received, last_sent_at)
SELECT user_id, day, SUM(sent), SUM(received), MAX(last_sent_at) FROM (
    SELECT sender_id AS user_id, sent_at / 86400000 AS day, 1 AS sent, 0 AS received, sent_at AS last_sent_at
        FROM messages
    UNION ALL
    SELECT cm.user_id, m.sent_at / 86400000, 0, 1, 0
        FROM messages m JOIN conversation_members cm ON cm.conversation_id = m.conversation_id
        WHERE m.seq > cm.joined_seq AND cm.user_id <> m.sender_id
    UNION ALL
    SELECT f.user_id, m.sent_at / 86400000, 0, 1, 0
        FROM messages m JOIN former_members f ON f.conversation_id = m.conversation_id
        WHERE m.seq > f.joined_seq AND m.seq <= f.left_seq AND f.user_id <> m.sender_id
) c GROUP BY user_id, day;

INSERT INTO daily_stats (day, messages_sent, active_users)
SELECT day, SUM(sent), COUNT(*) FROM user_daily_stats WHERE sent > 0 GROUP BY day;

INSERT INTO daily_sender_gaps (day, gap, senders)
SELECT day, gap, COUNT(*) FROM (
    SELECT day, CASE WHEN prev IS NULL OR day - prev > 366 THEN 367 ELSE day - prev END AS gap FROM (
        SELECT day, LAG(day) OVER (PARTITION BY user_id ORDER BY day) AS prev FROM user_daily_stats WHERE sent > 0
    ) p
) g GROUP BY day, gap;
