package sqlstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/sqlstore"
)

// TestCommunityStore checks what the end-to-end tests cannot reach
// cheaply: the channel limit, and that a role change reaches the cached
// send state of every channel (a demoted admin can no longer announce).
func TestCommunityStore(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *sqlstore.DB) {
		now := time.Now().UTC().Truncate(time.Millisecond)
		ann, bob := mustUser(t, db, "ann"), mustUser(t, db, "bob")
		c := &parley.Community{ID: parley.NewID("comm"), Name: "C", CreatedBy: ann.ID, OwnerID: ann.ID, CreatedAt: now, UpdatedAt: now}
		general := &parley.Channel{ID: parley.NewConversationID(parley.KindChannel), CommunityID: c.ID, Name: "general",
			Type: parley.ChannelText, CreatedBy: ann.ID, CreatedAt: now, UpdatedAt: now}
		must(t, db.CreateCommunity(ctx, c, "", general))
		must(t, db.JoinCommunity(ctx, c.ID, bob.ID, parley.MemberActive, now))
		news := &parley.Channel{ID: parley.NewConversationID(parley.KindChannel), CommunityID: c.ID, Name: "news",
			Type: parley.ChannelAnnouncement, CreatedBy: ann.ID}
		must(t, db.CreateChannel(ctx, news, nil, nil, now))
		if news.MembersCount != 2 {
			t.Fatalf("readers of a public channel: %d", news.MembersCount)
		}
		post := func(sender string) error {
			s := &parley.Send{Message: &parley.Message{ID: parley.NewID("msg"), ConversationID: news.ID, SenderID: sender,
				Content: "c", ContentHash: "h", Type: "text", SentAt: now}}
			must(t, db.SendMessages(ctx, []*parley.Send{s}))
			return s.Err
		}
		if err := post(bob.ID); parley.ErrorCode(err) != parley.EFORBIDDEN {
			t.Fatalf("a member announces: %v", err)
		}
		must(t, db.SetCommunityRole(ctx, c.ID, bob.ID, parley.RoleAdmin))
		if err := post(bob.ID); err != nil {
			t.Fatalf("an admin announces: %v", err)
		}
		must(t, db.SetCommunityRole(ctx, c.ID, bob.ID, parley.RoleMember))
		if err := post(bob.ID); parley.ErrorCode(err) != parley.EFORBIDDEN {
			t.Fatalf("a demoted admin announces (stale send state): %v", err)
		}
		if _, err := db.RemoveCommunityMember(ctx, c.ID, bob.ID); err != nil {
			t.Fatal(err)
		}
		if err := post(bob.ID); parley.ErrorCode(err) != parley.ENOTFOUND {
			t.Fatalf("a removed member posts: %v", err)
		}
		if err := db.SetCommunityRole(ctx, c.ID, ann.ID, parley.RoleMember); parley.ErrorCode(err) != parley.EFORBIDDEN {
			t.Fatalf("the owner demoted: %v", err)
		}

		for i := 2; i < parley.MaxCommunityChannels; i++ {
			ch := &parley.Channel{ID: parley.NewConversationID(parley.KindChannel), CommunityID: c.ID, Name: fmt.Sprint("c", i),
				Type: parley.ChannelText, CreatedBy: ann.ID}
			must(t, db.CreateChannel(ctx, ch, nil, nil, now))
		}
		over := &parley.Channel{ID: parley.NewConversationID(parley.KindChannel), CommunityID: c.ID, Name: "one too many",
			Type: parley.ChannelText, CreatedBy: ann.ID}
		if err := db.CreateChannel(ctx, over, nil, nil, now); parley.ErrorCode(err) != parley.ECONFLICT {
			t.Fatalf("channel %d: %v", parley.MaxCommunityChannels+1, err)
		}
		if err := db.DeleteCommunity(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Channel(ctx, general.ID); parley.ErrorCode(err) != parley.ENOTFOUND {
			t.Fatalf("channel after its community was deleted: %v", err)
		}
	})
}
