-- A member's mute of a group or channel (direct chats mute the other user,
-- in mutes): epoch milliseconds until which it is muted, 0 when it is not,
-- and the largest value for "until unmuted".
ALTER TABLE conversation_members ADD COLUMN muted_until INTEGER NOT NULL DEFAULT 0;
