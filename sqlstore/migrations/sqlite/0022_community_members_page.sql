-- A community's approved members in join order, a page at a time
-- (GET /api/communities/{communityId}/members): a range of this index
-- instead of a sort of up to 100,000 rows.
CREATE INDEX community_members_active ON community_members (community_id, joined_at, user_id) WHERE status = 'member';
