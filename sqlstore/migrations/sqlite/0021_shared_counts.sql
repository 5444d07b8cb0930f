-- "Received" for groups and channels without a row per member per post:
-- the send path counts each group or channel conversation's messages per
-- day (conversation_daily_stats, with the day's first and last seq), and a
-- member's share is computed when the counters are read, from the windows
-- of seqs the member could see (member_windows). user_daily_stats.received
-- keeps what direct messages bring (and everything counted before this
-- migration); sent_shared is what the user sent to groups and channels
-- since, which the windows hold too and the read subtracts.
--
-- No foreign keys: the counters outlive a deleted group or community as
-- user_daily_stats always did.
CREATE TABLE conversation_daily_stats (
    conversation_id TEXT NOT NULL,
    day             INTEGER NOT NULL,
    messages        INTEGER NOT NULL,
    first_seq       INTEGER NOT NULL,
    last_seq        INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, day)
);

-- A member of a group or channel saw the messages with
-- from_seq < seq <= to_seq (to_seq NULL: still a member, or the
-- conversation is gone). Kept by the triggers below on every insert and
-- delete of conversation_members, so no code path can forget it.
CREATE TABLE member_windows (
    conversation_id TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    from_seq        INTEGER NOT NULL,
    to_seq          INTEGER,
    PRIMARY KEY (user_id, conversation_id, from_seq)
);

ALTER TABLE user_daily_stats ADD COLUMN sent_shared INTEGER NOT NULL DEFAULT 0;

-- Today's members are counted from now on (what they received before is
-- already in user_daily_stats.received).
INSERT INTO member_windows (conversation_id, user_id, from_seq)
SELECT cm.conversation_id, cm.user_id, c.last_seq
    FROM conversation_members cm JOIN conversations c ON c.id = cm.conversation_id
    WHERE c.kind <> 'direct';

CREATE TRIGGER member_window_open AFTER INSERT ON conversation_members
BEGIN
    INSERT INTO member_windows (conversation_id, user_id, from_seq)
    SELECT NEW.conversation_id, NEW.user_id, c.last_seq FROM conversations c
        WHERE c.id = NEW.conversation_id AND c.kind <> 'direct'
    ON CONFLICT (user_id, conversation_id, from_seq) DO UPDATE SET to_seq = NULL;
END;

CREATE TRIGGER member_window_close AFTER DELETE ON conversation_members
BEGIN
    UPDATE member_windows SET to_seq = (SELECT c.last_seq FROM conversations c WHERE c.id = OLD.conversation_id)
        WHERE conversation_id = OLD.conversation_id AND user_id = OLD.user_id AND to_seq IS NULL
            AND EXISTS (SELECT 1 FROM conversations c WHERE c.id = OLD.conversation_id);
END;
