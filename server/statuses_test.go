package server_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/s3test"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/internal/testenv"
	"github.com/parley-chat/parley/jobs"
	"github.com/parley-chat/parley/server"
)

type statusCreated struct {
	StatusID, Type, CreatedAt, ExpiresAt string
}

type statusView struct {
	StatusID, UserID, Type, Content, MediaID, BackgroundColor, FontStyle, CreatedAt, ExpiresAt, EncryptedKey string
	ViewedAt                                                                                                 *string
	VisibleTo                                                                                                string
	EncryptedKeys                                                                                            map[string]string
	ViewCount                                                                                                *int
}

type feedEntry struct {
	UserID, Username string
	HasUnviewed      bool
	Statuses         []statusView
}

type viewersRes struct {
	StatusID  string
	ViewCount int
	Viewers   []struct{ UserID, Username, ViewedAt string }
}

// postStatus creates a status as c and returns the answer.
func postStatus(t *testing.T, c *apitest.Client, body map[string]any) statusCreated {
	t.Helper()
	var r statusCreated
	c.Must(t, 201, "POST", "/api/statuses/create", body).Decode(t, &r)
	return r
}

// keysFor wraps a (pretend) key for each user.
func keysFor(users ...*apitest.Client) map[string]string {
	out := map[string]string{}
	for _, u := range users {
		out[u.UserID] = "wrapped-for-" + u.Username
	}
	return out
}

func ids(users ...*apitest.Client) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.UserID
	}
	return out
}

// TestStatuses drives API.md §7 end to end on every database backend:
// who sees what (list, detail, feed, live events, sync), views, keys,
// deletion and replies.
func TestStatuses(t *testing.T) {
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			testStatuses(t, apitest.MustStart(t, backend, nil))
		})
	}
}

func testStatuses(t *testing.T, srv *server.Server) {
	base := srv.URL()
	ann := apitest.Register(t, base, apitest.Unique("ann")) // the owner
	// bob: a contact with a key. cat: not a contact (ann has a key for
	// cat all the same). dan: a contact ann blocked. eve: a contact who
	// blocked ann. fay: a contact excluded or not listed. gus: a contact
	// with no key. hal: sends the barrier messages.
	bob := apitest.Register(t, base, apitest.Unique("bob"))
	cat := apitest.Register(t, base, apitest.Unique("cat"))
	dan := apitest.Register(t, base, apitest.Unique("dan"))
	eve := apitest.Register(t, base, apitest.Unique("eve"))
	fay := apitest.Register(t, base, apitest.Unique("fay"))
	gus := apitest.Register(t, base, apitest.Unique("gus"))
	hal := apitest.Register(t, base, apitest.Unique("hal"))
	for _, c := range []*apitest.Client{bob, dan, eve, fay, gus} {
		ann.Must(t, 201, "POST", "/api/contacts", map[string]any{"contactId": c.UserID})
	}
	ann.Must(t, 200, "POST", "/api/users/block", map[string]any{"blockedUserId": dan.UserID})
	eve.Must(t, 200, "POST", "/api/users/block", map[string]any{"blockedUserId": ann.UserID})

	others := []*apitest.Client{bob, cat, dan, eve, fay, gus}
	ws := map[string]*apitest.WS{}
	cursor := map[string]string{}
	for _, c := range append([]*apitest.Client{ann}, others...) {
		ws[c.UserID] = apitest.DialWS(t, base, c.Token)
		_, cursor[c.UserID] = syncAll(t, c, "")
	}

	// A status's picture: only its viewers may read it.
	pic := mustUpload(t, ann, randomBytes(4000), nil)

	t.Run("Refused", func(t *testing.T) {
		cases := []struct {
			name   string
			body   map[string]any
			status int
			code   string
		}{
			{"unknown type", map[string]any{"type": "poll", "content": "c"}, 400, "invalid_argument"},
			{"text without content", map[string]any{"type": "text"}, 400, "invalid_argument"},
			{"image without mediaId", map[string]any{"type": "image", "content": "c"}, 400, "invalid_argument"},
			{"another's file", map[string]any{"type": "image", "mediaId": mustUpload(t, bob, randomBytes(10), nil).FileID}, 400, "invalid_argument"},
			{"unknown visibleTo", map[string]any{"type": "text", "content": "c", "visibleTo": "friends"}, 400, "invalid_argument"},
			{"zero hours", map[string]any{"type": "text", "content": "c", "expiresAt": 0}, 400, "invalid_argument"},
			{"25 hours", map[string]any{"type": "text", "content": "c", "expiresAt": 25}, 400, "invalid_argument"},
			{"specific without users", map[string]any{"type": "text", "content": "c", "visibleTo": "specific"}, 400, "invalid_argument"},
			{"too many specificUsers", map[string]any{"type": "text", "content": "c", "visibleTo": "specific",
				"specificUsers": slices.Repeat([]string{bob.UserID}, parley.MaxStatusAudienceList+1)}, 400, "invalid_argument"},
			{"content too large", map[string]any{"type": "text", "content": strings.Repeat("x", parley.MaxContentBytes+1)}, 413, "too_large"},
			{"someone else's userId", map[string]any{"type": "text", "content": "c", "userId": bob.UserID}, 403, "forbidden"},
		}
		for _, c := range cases {
			r := ann.Do(t, "POST", "/api/statuses/create", c.body)
			if r.Status != c.status || r.Error.Code != c.code {
				t.Errorf("%s: %d %s (%s), want %d %s", c.name, r.Status, r.Error.Code, r.Error.Message, c.status, c.code)
			}
		}
		// specific: a listed contact without a key is named; a listed
		// non-contact or blocked contact without one is not an error.
		r := ann.Do(t, "POST", "/api/statuses/create", map[string]any{"type": "text", "content": "c", "visibleTo": "specific",
			"specificUsers": ids(bob, gus), "encryptedKeys": keysFor(bob)})
		if r.Status != 400 || !strings.Contains(r.Error.Message, gus.UserID) || strings.Contains(r.Error.Message, bob.UserID) {
			t.Errorf("listed contact without a key: %d %q", r.Status, r.Error.Message)
		}
		if r := ann.Do(t, "GET", "/api/statuses/user/"+ann.UserID, nil); r.Status != 200 || string(r.Data) != "[]" {
			t.Errorf("refused creates left statuses: %s", r.Data)
		}
	})

	// The three audiences, each with a contact listed without a key.
	all := postStatus(t, ann, map[string]any{"type": "image", "content": "cipher-all", "mediaId": pic.FileID, "visibleTo": "all",
		"backgroundColor": "#123456", "fontStyle": "serif", "encryptedKeys": keysFor(ann, bob, cat, dan, eve, fay)})
	specific := postStatus(t, ann, map[string]any{"type": "text", "content": "cipher-specific", "visibleTo": "specific",
		"specificUsers": ids(bob, cat, dan, eve), "encryptedKeys": keysFor(bob, cat, eve), "expiresAt": 12})
	except := postStatus(t, ann, map[string]any{"type": "text", "content": "cipher-except", "visibleTo": "except",
		"excludedUsers": ids(fay), "specificUsers": []string{}, "encryptedKeys": keysFor(bob, cat, dan, eve, fay)})
	if all.Type != "image" || specific.Type != "text" || all.CreatedAt == "" {
		t.Fatalf("create answers %+v %+v", all, specific)
	}
	created, err1 := time.Parse(time.RFC3339Nano, specific.CreatedAt)
	expires, err2 := time.Parse(time.RFC3339Nano, specific.ExpiresAt)
	if err1 != nil || err2 != nil || expires.Sub(created) != 12*time.Hour {
		t.Errorf("12-hour status: created %s, expires %s", specific.CreatedAt, specific.ExpiresAt)
	}
	sees := map[string][]*apitest.Client{
		all.StatusID:      {bob, fay},
		specific.StatusID: {bob},
		except.StatusID:   {bob},
	}
	statuses := []string{all.StatusID, specific.StatusID, except.StatusID}

	// Barrier: once hal's message arrives, every status event published
	// before it has arrived too.
	for _, c := range others {
		m := send(t, hal, c, "barrier", nil)
		ws[c.UserID].WaitEvent(t, "new_message", m.MessageID)
	}

	t.Run("Matrix", func(t *testing.T) {
		for _, c := range others {
			var list []statusView
			c.Must(t, 200, "GET", "/api/statuses/user/"+ann.UserID, nil).Decode(t, &list)
			var feed []feedEntry
			c.Must(t, 200, "GET", "/api/statuses/feed", nil).Decode(t, &feed)
			var fromAnn []statusView
			for _, e := range feed {
				if e.UserID == ann.UserID {
					fromAnn = e.Statuses
					if e.Username != ann.Username || !e.HasUnviewed {
						t.Errorf("%s's feed entry for ann: %+v", c.Username, e)
					}
				}
			}
			items, _ := syncAll(t, c, cursor[c.UserID])
			for _, id := range statuses {
				want := slices.Contains(sees[id], c)
				inList := slices.ContainsFunc(list, func(v statusView) bool { return v.StatusID == id })
				inFeed := slices.ContainsFunc(fromAnn, func(v statusView) bool { return v.StatusID == id })
				live := slices.ContainsFunc(ws[c.UserID].Events("status_created"), func(d json.RawMessage) bool { return strings.Contains(string(d), id) })
				synced := slices.ContainsFunc(items, func(it struct {
					Event string
					Data  json.RawMessage
				}) bool {
					return it.Event == "status_created" && strings.Contains(string(it.Data), id)
				})
				if inList != want || inFeed != want || live != want || synced != want {
					t.Errorf("%s and %s: list %v, feed %v, live event %v, sync %v; want %v", c.Username, id, inList, inFeed, live, synced, want)
				}
				// The detail last: it records a view.
				r := c.Do(t, "GET", "/api/statuses/"+id, nil)
				if want && r.Status != 200 || !want && (r.Status != 404 || r.Error.Code != "not_found") {
					t.Errorf("%s reads %s: %d, want visible %v", c.Username, id, r.Status, want)
				}
			}
			// Only their own key, and nothing of the audience.
			for _, v := range list {
				if v.EncryptedKey != "wrapped-for-"+c.Username || v.EncryptedKeys != nil || v.VisibleTo != "" || v.ViewCount != nil {
					t.Errorf("%s sees %+v", c.Username, v)
				}
			}
		}
		// The event carries the seed's fields.
		ev := ws[bob.UserID].WaitEvent(t, "status_created", all.StatusID)
		exactly(t, "status_created", ev, map[string]string{"statusId": jsonString(all.StatusID), "userId": jsonString(ann.UserID),
			"type": `"image"`, "createdAt": jsonString(all.CreatedAt), "expiresAt": jsonString(all.ExpiresAt)})
		// An unknown user's statuses, and an unknown status.
		if r := bob.Must(t, 200, "GET", "/api/statuses/user/usr_nobody", nil); string(r.Data) != "[]" {
			t.Errorf("unknown user's statuses: %s", r.Data)
		}
		bob.Must(t, 404, "GET", "/api/statuses/status_nothing", nil)
	})

	t.Run("Owner", func(t *testing.T) {
		var list []statusView
		ann.Must(t, 200, "GET", "/api/statuses/user/"+ann.UserID, nil).Decode(t, &list)
		if len(list) != 3 || !slices.IsSortedFunc(list, func(x, y statusView) int { return strings.Compare(y.CreatedAt, x.CreatedAt) }) {
			t.Fatalf("owner's list (newest first): %+v", list)
		}
		i := slices.IndexFunc(list, func(v statusView) bool { return v.StatusID == all.StatusID })
		if i < 0 {
			t.Fatalf("owner's list lacks the all status: %+v", list)
		}
		a := list[i]
		want := keysFor(ann, bob, fay)
		if a.EncryptedKey != "wrapped-for-"+ann.Username || a.VisibleTo != "all" || !mapsEqual(a.EncryptedKeys, want) ||
			a.BackgroundColor != "#123456" || a.FontStyle != "serif" || a.Content != "cipher-all" || a.MediaID != pic.FileID {
			t.Fatalf("owner's view %+v, keys want %v", a, want)
		}
		var feed []feedEntry
		ann.Must(t, 200, "GET", "/api/statuses/feed", nil).Decode(t, &feed)
		if len(feed) != 0 {
			t.Errorf("the owner's feed holds their own statuses: %+v", feed)
		}
	})

	t.Run("Views", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			var v statusView
			bob.Must(t, 200, "GET", "/api/statuses/"+all.StatusID+"?viewerId="+bob.UserID, nil).Decode(t, &v)
			if v.ViewedAt == nil || v.EncryptedKey != "wrapped-for-"+bob.Username || v.EncryptedKeys != nil {
				t.Fatalf("bob's read %d: %+v", i, v)
			}
			ann.Must(t, 200, "GET", "/api/statuses/"+all.StatusID, nil)
		}
		var res viewersRes
		ann.Must(t, 200, "GET", "/api/statuses/"+all.StatusID+"/viewers", nil).Decode(t, &res)
		if res.StatusID != all.StatusID || res.ViewCount != 2 || len(res.Viewers) != 2 {
			t.Fatalf("viewers (bob and fay read it, in the matrix): %+v", res)
		}
		names := []string{res.Viewers[0].Username, res.Viewers[1].Username}
		if !slices.Contains(names, bob.Username) || !slices.Contains(names, fay.Username) {
			t.Fatalf("viewers %+v", res.Viewers)
		}
		var sp viewersRes
		ann.Must(t, 200, "GET", "/api/statuses/"+specific.StatusID+"/viewers", nil).Decode(t, &sp)
		if sp.ViewCount != 1 || sp.Viewers[0].UserID != bob.UserID {
			t.Fatalf("viewers of the specific status: %+v", sp)
		}
		// One status_viewed per viewer, to the owner only.
		m := send(t, hal, ann, "barrier", nil)
		ws[ann.UserID].WaitEvent(t, "new_message", m.MessageID)
		n := 0
		for _, d := range ws[ann.UserID].Events("status_viewed") {
			if strings.Contains(string(d), all.StatusID) && strings.Contains(string(d), bob.UserID) {
				n++
				hasFields(t, "status_viewed", d, "statusId", "viewerId", "viewedAt")
			}
		}
		if n != 1 {
			t.Fatalf("ann got %d status_viewed for bob's reads, want 1", n)
		}
		items, _ := syncAll(t, ann, cursor[ann.UserID])
		n = 0
		for _, it := range items {
			if it.Event == "status_viewed" && strings.Contains(string(it.Data), all.StatusID) {
				n++
			}
		}
		if n != 2 {
			t.Fatalf("ann's sync has %d status_viewed for the all status, want 2 (bob, fay)", n)
		}
		if len(ws[bob.UserID].Events("status_viewed")) != 0 {
			t.Fatalf("a viewer got status_viewed")
		}
		// Not the owner: 403 for a viewer, 404 for anyone else.
		if r := bob.Do(t, "GET", "/api/statuses/"+all.StatusID+"/viewers", nil); r.Status != 403 {
			t.Errorf("viewer asks for the viewers: %d", r.Status)
		}
		if r := cat.Do(t, "GET", "/api/statuses/"+all.StatusID+"/viewers", nil); r.Status != 404 {
			t.Errorf("outsider asks for the viewers: %d", r.Status)
		}
		if r := bob.Do(t, "GET", "/api/statuses/"+all.StatusID+"?viewerId="+cat.UserID, nil); r.Status != 403 {
			t.Errorf("viewerId naming someone else: %d", r.Status)
		}
		if r := bob.Do(t, "GET", "/api/statuses/user/"+ann.UserID+"?userId="+ann.UserID, nil); r.Status != 403 {
			t.Errorf("userId naming someone else: %d", r.Status)
		}
	})

	t.Run("Media", func(t *testing.T) {
		content := "/api/media/" + pic.FileID + "/content"
		if status, _, body := get(t, bob, content, nil); status != 200 || len(body) != 4000 {
			t.Errorf("a viewer downloads the status's file: %d", status)
		}
		bob.Must(t, 200, "GET", "/api/media/"+pic.FileID, nil)
		for _, c := range []*apitest.Client{cat, dan, eve, gus} {
			if status, _, _ := get(t, c, content, nil); status != 404 {
				t.Errorf("%s downloads the status's file: %d", c.Username, status)
			}
		}
	})

	t.Run("Reply", func(t *testing.T) {
		r := send(t, bob, ann, "nice", map[string]any{"replyToStatusId": all.StatusID})
		h := ann.Must(t, 200, "GET", "/api/messages/"+ann.UserID+"/"+bob.UserID, nil)
		var msgs []struct{ MessageID, ReplyToStatusID string }
		h.Decode(t, &msgs)
		if len(msgs) == 0 || msgs[0].MessageID != r.MessageID || msgs[0].ReplyToStatusID != all.StatusID {
			t.Fatalf("history of the reply: %+v", msgs)
		}
		for name, c := range map[string]struct {
			from, to *apitest.Client
			status   string
		}{
			"outsider":               {cat, ann, all.StatusID},
			"recipient is not owner": {bob, fay, all.StatusID},
			"unknown status":         {bob, ann, "status_nothing"},
		} {
			r := c.from.Do(t, "POST", "/api/messages/send", map[string]any{"recipientId": c.to.UserID, "encryptedContent": "x", "type": "text",
				"replyToStatusId": c.status})
			if r.Status != 400 {
				t.Errorf("%s: %d", name, r.Status)
			}
		}
		r2 := bob.Do(t, "POST", "/api/messages/schedule", map[string]any{"recipientId": ann.UserID, "encryptedContent": "x", "type": "text",
			"replyToStatusId": all.StatusID, "scheduledAt": time.Now().Add(time.Hour).UnixMilli()})
		if r2.Status != 400 {
			t.Errorf("scheduled reply to a status: %d", r2.Status)
		}
	})

	t.Run("RemovedContact", func(t *testing.T) {
		ann.Must(t, 200, "DELETE", "/api/contacts/"+fay.UserID, nil)
		if r := fay.Do(t, "GET", "/api/statuses/"+all.StatusID, nil); r.Status != 404 {
			t.Errorf("a removed contact reads the status: %d", r.Status)
		}
		if r := fay.Must(t, 200, "GET", "/api/statuses/user/"+ann.UserID, nil); string(r.Data) != "[]" {
			t.Errorf("a removed contact lists: %s", r.Data)
		}
		if status, _, _ := get(t, fay, "/api/media/"+pic.FileID+"/content", nil); status != 404 {
			t.Errorf("a removed contact downloads the file: %d", status)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		if r := bob.Do(t, "POST", "/api/statuses/delete", map[string]any{"statusId": all.StatusID}); r.Status != 403 {
			t.Errorf("a viewer deletes: %d", r.Status)
		}
		if r := cat.Do(t, "POST", "/api/statuses/delete", map[string]any{"statusId": all.StatusID}); r.Status != 404 {
			t.Errorf("an outsider deletes: %d", r.Status)
		}
		r := ann.Must(t, 200, "POST", "/api/statuses/delete", map[string]any{"statusId": all.StatusID})
		wantMessage(t, "delete", r, "Status deleted successfully")
		bob.Must(t, 404, "GET", "/api/statuses/"+all.StatusID, nil)
		ann.Must(t, 404, "GET", "/api/statuses/"+all.StatusID, nil)
		ann.Must(t, 404, "POST", "/api/statuses/delete", map[string]any{"statusId": all.StatusID})
		// Its file went with it, bytes and metadata.
		ann.Must(t, 404, "GET", "/api/media/"+pic.FileID, nil)
		blobs, err := server.OpenBlobs(context.Background(), filepath.Join(srv.DataDir(), "media"))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := blobs.Open(context.Background(), pic.FileID, 0, -1); parley.ErrorCode(err) != parley.ENOTFOUND {
			t.Errorf("the deleted status's file is still stored: %v", err)
		}
		// Its events left the sync log with it.
		items, _ := syncAll(t, bob, cursor[bob.UserID])
		for _, it := range items {
			if strings.HasPrefix(it.Event, "status_") && strings.Contains(string(it.Data), all.StatusID) {
				t.Errorf("bob's sync still has %s %s", it.Event, it.Data)
			}
		}
	})
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestStatusExpiry moves the server clock instead of waiting: a status is
// shown until the second it expires and never from then on, and the
// purge job then removes its rows and its file, on every backend, over a
// directory and over S3.
func TestStatusExpiry(t *testing.T) {
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			testStatusExpiry(t, backend, nil)
		})
	}
	t.Run("s3", func(t *testing.T) {
		s3 := s3test.Start(t)
		testStatusExpiry(t, testdb.Backends[0], func(c *server.Config) { c.Media = s3.URL(t, "statuses") })
	})
}

func testStatusExpiry(t *testing.T, backend string, edit func(*server.Config)) {
	clock := jobs.NewFake(time.Now())
	dsn := testdb.DSN(t, backend)
	var media string
	srv := apitest.MustStart(t, backend, func(c *server.Config) {
		c.Clock, c.DB = clock, dsn
		if edit != nil {
			edit(c)
		}
		media = c.Media
	})
	if media == "" {
		media = filepath.Join(srv.DataDir(), "media")
	}
	blobs, err := server.OpenBlobs(context.Background(), media)
	if err != nil {
		t.Fatal(err)
	}
	stored := func(key string) bool {
		r, _, err := blobs.Open(context.Background(), key, 0, -1)
		if err == nil {
			r.Close()
		}
		return err == nil
	}
	base := srv.URL()
	ann := apitest.Register(t, base, apitest.Unique("ann"))
	bob := apitest.Register(t, base, apitest.Unique("bob"))
	ann.Must(t, 201, "POST", "/api/contacts", map[string]any{"contactId": bob.UserID})
	pic := mustUpload(t, ann, randomBytes(3000), []byte("thumb"))
	short := postStatus(t, ann, map[string]any{"type": "image", "mediaId": pic.FileID, "expiresAt": 1, "encryptedKeys": keysFor(bob)})
	long := postStatus(t, ann, map[string]any{"type": "text", "content": "c", "expiresAt": 2, "encryptedKeys": keysFor(bob)})
	bob.Must(t, 200, "GET", "/api/statuses/"+short.StatusID, nil)

	// A used file is not collected as unused while its status lives.
	clock.Advance(time.Hour - time.Second)
	ann.Must(t, 200, "GET", "/api/media/"+pic.FileID, nil)
	bob.Must(t, 200, "GET", "/api/statuses/"+short.StatusID, nil)
	if status, _, _ := get(t, bob, "/api/media/"+pic.FileID+"/content", nil); status != 200 {
		t.Fatalf("a viewer downloads a live status's file: %d", status)
	}
	// Rows a client cannot count; there while the status lives.
	raw := openRaw(t, dsn)
	count := func(q string, args ...any) int {
		var n int
		if err := raw.QueryRow(q, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	arg := "?"
	if backend == "postgres" {
		arg = "$1"
	}
	if count(`SELECT COUNT(*) FROM status_viewers WHERE status_id = `+arg, short.StatusID) != 1 {
		t.Fatalf("the live status's viewer row is not there")
	}
	if n := count(`SELECT COUNT(*) FROM changes WHERE message_id = `+arg, short.StatusID); n != 2 {
		t.Fatalf("the live status has %d sync-log rows, want 2 (status_created to bob, status_viewed to ann)", n)
	}
	// The very second it expires: gone everywhere, whether or not the
	// purge has run yet.
	clock.Advance(time.Second)
	for _, c := range []*apitest.Client{ann, bob} {
		c.Must(t, 404, "GET", "/api/statuses/"+short.StatusID, nil)
		var list []statusView
		c.Must(t, 200, "GET", "/api/statuses/user/"+ann.UserID, nil).Decode(t, &list)
		if len(list) != 1 || list[0].StatusID != long.StatusID {
			t.Fatalf("%s lists %+v at expiry", c.Username, list)
		}
	}
	ann.Must(t, 404, "GET", "/api/statuses/"+short.StatusID+"/viewers", nil)
	var feed []feedEntry
	bob.Must(t, 200, "GET", "/api/statuses/feed", nil).Decode(t, &feed)
	if len(feed) != 1 || len(feed[0].Statuses) != 1 || feed[0].Statuses[0].StatusID != long.StatusID {
		t.Fatalf("feed at expiry: %+v", feed)
	}
	if status, _, _ := get(t, bob, "/api/media/"+pic.FileID+"/content", nil); status != 404 {
		t.Fatalf("a viewer downloads an expired status's file: %d", status)
	}

	// The purge (every 5 minutes) removes the rows and the file.
	advanceUntil(t, clock, 5*time.Minute, "the expired status is purged", func() bool {
		return count(`SELECT COUNT(*) FROM statuses WHERE id = `+arg, short.StatusID) == 0
	})
	if n := count(`SELECT COUNT(*) FROM status_viewers WHERE status_id = `+arg, short.StatusID); n != 0 {
		t.Errorf("%d viewer rows left", n)
	}
	if n := count(`SELECT COUNT(*) FROM changes WHERE message_id = `+arg, short.StatusID); n != 0 {
		t.Errorf("%d sync-log rows left", n)
	}
	// The file goes right after the status's rows, metadata first.
	waitUntil(t, "the expired status's file metadata is removed", func() bool {
		return count(`SELECT COUNT(*) FROM media WHERE id = `+arg, pic.FileID) == 0
	})
	waitUntil(t, "the expired status's file is removed", func() bool { return !stored(pic.FileID) && !stored(pic.FileID+".thumb") })
	if n := count(`SELECT COUNT(*) FROM statuses WHERE id = `+arg, long.StatusID); n != 1 {
		t.Fatalf("the live status was purged")
	}
	bob.Must(t, 200, "GET", "/api/statuses/"+long.StatusID, nil)
}

// openRaw opens the server's database for the checks a client cannot make.
func openRaw(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	driver, source := "pgx", dsn
	if strings.HasPrefix(dsn, "sqlite:") {
		driver, source = "sqlite", strings.TrimPrefix(dsn, "sqlite:")
	}
	db, err := sql.Open(driver, source)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// advanceUntil polls ok (a background job's effect) for up to 20 s,
// moving clock by step each half second it is not so yet: a job's next
// run is timed from the end of its last, which may come after a move.
func advanceUntil(t *testing.T, clock *jobs.Fake, step time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline, next := time.Now().Add(20*time.Second), time.Now()
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not so after 20 s", what)
		}
		if time.Now().After(next) {
			clock.Advance(step)
			next = time.Now().Add(500 * time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStatusPathOverlap: GET /api/statuses/user/{userId} and
// GET /api/statuses/{statusId}/viewers both match
// /api/statuses/user/viewers; it is the first (the statuses of a user
// "viewers": none), and each route still answers its own paths, with
// hostile or escaped segments refused or not found.
func TestStatusPathOverlap(t *testing.T) {
	srv := apitest.MustStart(t, testdb.Backends[0], nil)
	ann := apitest.Register(t, srv.URL(), apitest.Unique("ann"))
	if r := ann.Must(t, 200, "GET", "/api/statuses/user/viewers", nil); string(r.Data) != "[]" {
		t.Fatalf("/api/statuses/user/viewers: %s", r.Data)
	}
	st := postStatus(t, ann, map[string]any{"type": "text", "content": "c"})
	var res viewersRes
	ann.Must(t, 200, "GET", "/api/statuses/"+st.StatusID+"/viewers", nil).Decode(t, &res)
	if res.StatusID != st.StatusID || res.ViewCount != 0 || len(res.Viewers) != 0 {
		t.Fatalf("viewers: %+v", res)
	}
	var list []statusView
	ann.Must(t, 200, "GET", "/api/statuses/user/"+ann.UserID, nil).Decode(t, &list)
	if len(list) != 1 || list[0].StatusID != st.StatusID {
		t.Fatalf("own list: %+v", list)
	}
	ann.Must(t, 404, "GET", "/api/statuses/"+st.StatusID+"/viewerz", nil)
	// The seed's answers, exactly.
	r := ann.Must(t, 201, "POST", "/api/statuses/create", map[string]any{"type": "text", "content": "seed", "visibleTo": "all",
		"specificUsers": []string{}, "excludedUsers": []string{}, "encryptedKeys": map[string]string{}, "userId": ann.UserID})
	var created statusCreated
	r.Decode(t, &created)
	exactly(t, "create", r.Data, map[string]string{"statusId": jsonString(created.StatusID), "type": `"text"`,
		"createdAt": jsonString(created.CreatedAt), "expiresAt": jsonString(created.ExpiresAt)})
	r = ann.Must(t, 200, "POST", "/api/statuses/delete", map[string]any{"statusId": created.StatusID, "userId": ann.UserID})
	wantMessage(t, "delete", r, "Status deleted successfully")
	exactly(t, "delete", r.Data, map[string]string{"statusId": jsonString(created.StatusID)})
	ann.Must(t, 404, "GET", "/api/statuses/"+st.StatusID+"%2Fx/viewers", nil)
}

// TestStatusesCluster: with two nodes on one PostgreSQL database and NATS,
// a status posted through one node reaches a viewer's socket on the
// other, and the view recorded there reaches the owner's socket on the
// first.
func TestStatusesCluster(t *testing.T) {
	dsn := testdb.DSN(t, "postgres")
	nats := testenv.NATSURL(t)
	a := apitest.MustStart(t, "postgres", func(c *server.Config) { c.DB, c.Bus = dsn, nats })
	b := apitest.MustStart(t, "postgres", func(c *server.Config) { c.DB, c.Bus = dsn, nats })
	ann := apitest.Register(t, a.URL(), apitest.Unique("ann"))
	bob := apitest.Register(t, a.URL(), apitest.Unique("bob"))
	bobOnB := *bob
	bobOnB.Base = b.URL()
	ann.Must(t, 201, "POST", "/api/contacts", map[string]any{"contactId": bob.UserID})
	annWS := apitest.DialWS(t, a.URL(), ann.Token)
	bobWS := apitest.DialWS(t, b.URL(), bob.Token)
	st := postStatus(t, ann, map[string]any{"type": "text", "content": "c", "encryptedKeys": keysFor(bob)})
	bobWS.WaitEvent(t, "status_created", st.StatusID)
	bobOnB.Must(t, 200, "GET", "/api/statuses/"+st.StatusID, nil)
	annWS.WaitEvent(t, "status_viewed", bob.UserID)
	var res viewersRes
	ann.Must(t, 200, "GET", "/api/statuses/"+st.StatusID+"/viewers", nil).Decode(t, &res)
	if res.ViewCount != 1 || res.Viewers[0].UserID != bob.UserID {
		t.Fatalf("viewers after a read on the other node: %+v", res)
	}
}
