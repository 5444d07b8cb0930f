package server_test

import (
	"testing"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/testdb"
)

// TestSpoofedQueryIdentity covers issue #12 defect 11: a userId, viewerId
// or senderId in a query string that names someone other than the caller
// is 403 forbidden (API.md §1) on every authenticated route, and changes
// nothing; naming the caller is allowed.
func TestSpoofedQueryIdentity(t *testing.T) {
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			srv := apitest.MustStart(t, backend, nil)
			base := srv.URL()
			ann, bob, carol := apitest.Register(t, base, "ann"), apitest.Register(t, base, "bob"), apitest.Register(t, base, "carol")
			var g struct{ GroupID string }
			ann.Must(t, 201, "POST", "/api/groups/create", map[string]any{"name": "g", "members": []string{bob.UserID}}).Decode(t, &g)

			paths := []string{"/api/chats", "/api/sync", "/api/users/me", "/api/contacts", "/api/messages/scheduled",
				"/api/groups/" + g.GroupID, "/api/users/blocked", "/api/group-messages/" + g.GroupID}
			for _, p := range paths {
				for _, name := range []string{"userId", "viewerId", "senderId"} {
					r := ann.Do(t, "GET", p+"?"+name+"="+bob.UserID, nil)
					if r.Status != 403 || r.Error.Code != "forbidden" {
						t.Errorf("GET %s?%s=<bob>: %d %s, want 403 forbidden", p, name, r.Status, r.Error.Code)
					}
					ann.Must(t, 200, "GET", p+"?"+name+"="+ann.UserID, nil)
				}
				// A second, spoofed value behind an honest one is refused too.
				if r := ann.Do(t, "GET", p+"?userId="+ann.UserID+"&userId="+bob.UserID, nil); r.Status != 403 {
					t.Errorf("GET %s with a second spoofed userId: %d, want 403", p, r.Status)
				}
			}

			// A refused write changes nothing.
			r := ann.Do(t, "POST", "/api/contacts?userId="+bob.UserID, map[string]string{"contactId": carol.UserID})
			if r.Status != 403 || r.Error.Code != "forbidden" {
				t.Fatalf("POST /api/contacts?userId=<bob>: %d %s, want 403 forbidden", r.Status, r.Error.Code)
			}
			for _, c := range []*apitest.Client{ann, bob} {
				var contacts []struct{ UserID string }
				c.Must(t, 200, "GET", "/api/contacts", nil).Decode(t, &contacts)
				for _, x := range contacts {
					if x.UserID == carol.UserID {
						t.Errorf("%s gained carol as a contact through a refused request", c.Username)
					}
				}
			}
		})
	}
}
