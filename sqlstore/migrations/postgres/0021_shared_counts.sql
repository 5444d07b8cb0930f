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
    day             BIGINT NOT NULL,
    messages        BIGINT NOT NULL,
    first_seq       BIGINT NOT NULL,
    last_seq        BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, day)
);

-- A member of a group or channel saw the messages with
-- from_seq < seq <= to_seq (to_seq NULL: still a member, or the
-- conversation is gone). Kept by the triggers below on every insert and
-- delete of conversation_members, so no code path can forget it.
CREATE TABLE member_windows (
    conversation_id TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    from_seq        BIGINT NOT NULL,
    to_seq          BIGINT,
    PRIMARY KEY (user_id, conversation_id, from_seq)
);

ALTER TABLE user_daily_stats ADD COLUMN sent_shared BIGINT NOT NULL DEFAULT 0;

-- Today's members are counted from now on (what they received before is
-- already in user_daily_stats.received).
INSERT INTO member_windows (conversation_id, user_id, from_seq)
SELECT cm.conversation_id, cm.user_id, c.last_seq
    FROM conversation_members cm JOIN conversations c ON c.id = cm.conversation_id
    WHERE c.kind <> 'direct';

-- Statement triggers with transition tables: one insert or update per
-- statement, however many members it adds or removes (a channel created
-- with 10,000 readers).
CREATE FUNCTION member_windows_open() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO member_windows (conversation_id, user_id, from_seq)
    SELECT n.conversation_id, n.user_id, c.last_seq FROM added_members n JOIN conversations c ON c.id = n.conversation_id
        WHERE c.kind <> 'direct'
    ON CONFLICT (user_id, conversation_id, from_seq) DO UPDATE SET to_seq = NULL;
    RETURN NULL;
END $$;

CREATE FUNCTION member_windows_close() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE member_windows w SET to_seq = c.last_seq
        FROM removed_members o JOIN conversations c ON c.id = o.conversation_id
        WHERE w.conversation_id = o.conversation_id AND w.user_id = o.user_id AND w.to_seq IS NULL;
    RETURN NULL;
END $$;

CREATE TRIGGER member_window_open AFTER INSERT ON conversation_members
    REFERENCING NEW TABLE AS added_members FOR EACH STATEMENT EXECUTE FUNCTION member_windows_open();
CREATE TRIGGER member_window_close AFTER DELETE ON conversation_members
    REFERENCING OLD TABLE AS removed_members FOR EACH STATEMENT EXECUTE FUNCTION member_windows_close();
