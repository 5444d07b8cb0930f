-- The chat list (GET /api/chats) picks a page of the caller's memberships
-- by activity: with the conversation id in the index, the memberships are
-- read from the index alone instead of one table row each (1,000 rows for
-- a user with 1,000 conversations). It replaces the index on user_id
-- alone, which it serves as well; neither column ever changes, so writes
-- cost nothing more.
CREATE INDEX conversation_members_user_conversation ON conversation_members (user_id, conversation_id);
DROP INDEX conversation_members_user;
