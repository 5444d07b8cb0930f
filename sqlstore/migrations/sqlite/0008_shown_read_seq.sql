-- "Seen" as the other side may see it. read_seq is how far a member read
-- (their own unread counts); shown_read_seq only moves while their
-- readReceipts setting is on, and seen marks are recorded only then, so a
-- read made with receipts off is never revealed, even after they turn
-- receipts on again. Existing reads count as shown for members whose
-- receipts are on now and as hidden for the others.
ALTER TABLE conversation_members ADD COLUMN shown_read_seq INTEGER NOT NULL DEFAULT 0;
UPDATE conversation_members SET shown_read_seq = read_seq
    WHERE user_id IN (SELECT id FROM users WHERE read_receipts = 1);
