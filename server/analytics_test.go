package server_test

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/natstest"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/jobs"
	"github.com/parley-chat/parley/server"
	"github.com/parley-chat/parley/sqlstore"
)

type userAnalytics struct {
	MessagesSent, MessagesReceived, TotalMessages, ActiveChatsCount int64
	LastActiveAt                                                    *time.Time
}

type activeChat struct {
	ConversationID, Type, UserID, GroupID, ChannelID, LastMessageID string
	LastMessageAt                                                   time.Time
}

type messageStats struct {
	MessagesSent int64  `json:"messages_sent"`
	ActiveUsers  int64  `json:"active_users"`
	StartDate    string `json:"start_date"`
	EndDate      string `json:"end_date"`
	Daily        []struct {
		Date         string `json:"date"`
		MessagesSent int64  `json:"messages_sent"`
		ActiveUsers  int64  `json:"active_users"`
	} `json:"daily"`
}

// analyticsWorld is a server whose clock stands two minutes before a UTC
// midnight, with an admin and three users.
type analyticsWorld struct {
	srv                  *server.Server
	clock                *jobs.Fake
	admin, ann, bob, cat *apitest.Client
}

func newAnalyticsWorld(t *testing.T, backend string, edit func(*server.Config)) *analyticsWorld {
	t.Helper()
	w := &analyticsWorld{clock: jobs.NewFake(time.Date(2030, 3, 10, 23, 58, 0, 0, time.UTC))}
	adminName := apitest.Unique("boss")
	w.srv = apitest.MustStart(t, backend, func(c *server.Config) {
		c.Clock = w.clock
		c.Admins = []string{adminName}
		if edit != nil {
			edit(c)
		}
	})
	w.admin = apitest.Register(t, w.srv.URL(), adminName)
	w.ann = apitest.Register(t, w.srv.URL(), apitest.Unique("ann"))
	w.bob = apitest.Register(t, w.srv.URL(), apitest.Unique("bob"))
	w.cat = apitest.Register(t, w.srv.URL(), apitest.Unique("cat"))
	return w
}

func sendDirect(t *testing.T, from, to *apitest.Client, clientID string) string {
	t.Helper()
	body := map[string]any{"recipientId": to.UserID, "encryptedContent": "ct", "type": "text"}
	if clientID != "" {
		body["clientMessageId"] = clientID
	}
	var res struct{ MessageID string }
	from.Must(t, 201, "POST", "/api/messages/send", body).Decode(t, &res)
	return res.MessageID
}

func sendGroup(t *testing.T, from *apitest.Client, groupID string) string {
	t.Helper()
	var res struct{ MessageID string }
	from.Must(t, 201, "POST", "/api/group-messages/send", map[string]any{"groupId": groupID, "encryptedContent": "ct", "type": "text"}).Decode(t, &res)
	return res.MessageID
}

type community struct{ CommunityID, DefaultChannel string }

// openCommunity has owner create a public community that member joins.
func openCommunity(t *testing.T, owner, member *apitest.Client) community {
	t.Helper()
	var c community
	owner.Must(t, 201, "POST", "/api/communities/create", map[string]any{"name": "club", "description": "", "isPrivate": false}).Decode(t, &c)
	member.Must(t, 200, "POST", "/api/communities/join", map[string]any{"communityId": c.CommunityID})
	return c
}

func analyticsOf(t *testing.T, c *apitest.Client, userID string) userAnalytics {
	t.Helper()
	var a userAnalytics
	c.Must(t, 200, "GET", "/api/analytics/user/"+userID, nil).Decode(t, &a)
	return a
}

func countOf(t *testing.T, c *apitest.Client, userID, period string) int64 {
	t.Helper()
	var r struct {
		Count  int64
		Period string
	}
	c.Must(t, 200, "GET", "/api/analytics/message-count/"+userID+"?period="+period, nil).Decode(t, &r)
	if r.Period != period {
		t.Fatalf("period %q, want %q", r.Period, period)
	}
	return r.Count
}

// TestAnalyticsHistory checks every analytics number against a scripted
// history of direct, group and channel messages across a UTC midnight, with an
// edit, deletions and a repeated send that must not change any count.
func TestAnalyticsHistory(t *testing.T) {
	t.Parallel()
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			w := newAnalyticsWorld(t, backend, nil)
			ann, bob, cat, admin := w.ann, w.bob, w.cat, w.admin
			var g struct{ GroupID string }
			ann.Must(t, 201, "POST", "/api/groups/create", map[string]any{"name": "trip", "members": []string{bob.UserID, cat.UserID}}).Decode(t, &g)
			comm := openCommunity(t, ann, bob)

			// 2030-03-10, 23:58 UTC: ann sends 2 direct + 1 group, bob 1 group + 1 direct.
			first := sendDirect(t, ann, bob, "c-1")
			if again := sendDirect(t, ann, bob, "c-1"); again != first {
				t.Fatalf("repeated clientMessageId answered %s, want %s", again, first)
			}
			sendDirect(t, ann, bob, "")
			sendGroup(t, ann, g.GroupID)
			bobGroup := sendGroup(t, bob, g.GroupID)
			sendDirect(t, bob, ann, "")
			before := analyticsOf(t, ann, ann.UserID)
			// Edits and deletions do not change counts.
			ann.Must(t, 200, "POST", "/api/messages/edit", map[string]any{"messageId": first, "encryptedContent": "ct2"})
			ann.Must(t, 200, "POST", "/api/messages/delete", map[string]any{"messageId": first, "deleteForEveryone": true})
			bob.Must(t, 200, "POST", "/api/group-messages/delete", map[string]any{"messageId": bobGroup, "deleteForEveryone": true})
			if after := analyticsOf(t, ann, ann.UserID); after.MessagesSent != before.MessagesSent || after.MessagesReceived != before.MessagesReceived {
				t.Fatalf("edit and delete changed ann's counts: %+v -> %+v", before, after)
			}

			// Past midnight: 2030-03-11 00:01 UTC.
			w.clock.Advance(3 * time.Minute)
			sendDirect(t, ann, bob, "")
			w.clock.Advance(time.Second)
			sendGroup(t, cat, g.GroupID)
			w.clock.Advance(time.Second)
			ann.Must(t, 201, "POST", "/api/channel-messages/send", map[string]any{"channelId": comm.DefaultChannel, "content": "ct", "type": "text"})
			lastAnn := w.clock.Now().UTC().Truncate(time.Millisecond)

			want := map[*apitest.Client]userAnalytics{
				ann: {MessagesSent: 5, MessagesReceived: 3, TotalMessages: 8, ActiveChatsCount: 3},
				bob: {MessagesSent: 2, MessagesReceived: 6, TotalMessages: 8, ActiveChatsCount: 3},
				cat: {MessagesSent: 1, MessagesReceived: 2, TotalMessages: 3, ActiveChatsCount: 1},
			}
			for c, wa := range want {
				got := analyticsOf(t, c, c.UserID)
				if got.MessagesSent != wa.MessagesSent || got.MessagesReceived != wa.MessagesReceived ||
					got.TotalMessages != wa.TotalMessages || got.ActiveChatsCount != wa.ActiveChatsCount {
					t.Errorf("%s: %+v, want %+v", c.Username, got, wa)
				}
				if byAdmin := analyticsOf(t, admin, c.UserID); byAdmin.MessagesSent != got.MessagesSent {
					t.Errorf("%s as the admin sees it: %+v", c.Username, byAdmin)
				}
			}
			if a := analyticsOf(t, ann, ann.UserID); a.LastActiveAt == nil || !a.LastActiveAt.Equal(lastAnn) {
				t.Errorf("ann's lastActiveAt %v, want %v", a.LastActiveAt, lastAnn)
			}
			if a := analyticsOf(t, admin, admin.UserID); a.LastActiveAt != nil || a.TotalMessages != 0 || a.ActiveChatsCount != 0 {
				t.Errorf("a user who never wrote: %+v", a)
			}

			// Today (the 11th) only, and the last 7 days.
			for _, c := range []struct {
				who       *apitest.Client
				day, week int64
			}{{ann, 3, 8}, {bob, 3, 8}, {cat, 1, 3}} {
				if got := countOf(t, c.who, c.who.UserID, "day"); got != c.day {
					t.Errorf("%s day: %d, want %d", c.who.Username, got, c.day)
				}
				for _, p := range []string{"week", "month", "year"} {
					if got := countOf(t, c.who, c.who.UserID, p); got != c.week {
						t.Errorf("%s %s: %d, want %d", c.who.Username, p, got, c.week)
					}
				}
			}
			// Eight days on, the week no longer holds the 10th and 11th.
			w.clock.Advance(8 * 24 * time.Hour)
			if got := countOf(t, ann, ann.UserID, "week"); got != 0 {
				t.Errorf("ann's week eight days later: %d", got)
			}
			if got := countOf(t, ann, ann.UserID, "month"); got != 8 {
				t.Errorf("ann's month eight days later: %d", got)
			}

			var chats []activeChat
			ann.Must(t, 200, "GET", "/api/analytics/active-chats/"+ann.UserID, nil).Decode(t, &chats)
			if len(chats) != 3 || chats[0].Type != "channel" || chats[0].ChannelID != comm.DefaultChannel ||
				chats[1].Type != "group" || chats[1].GroupID != g.GroupID || chats[2].Type != "direct" || chats[2].UserID != bob.UserID {
				t.Fatalf("ann's active chats: %+v", chats)
			}
			ann.Must(t, 200, "GET", "/api/analytics/active-chats/"+ann.UserID+"?limit=1", nil).Decode(t, &chats)
			if len(chats) != 1 || chats[0].LastMessageID == "" || chats[0].LastMessageAt.IsZero() {
				t.Fatalf("ann's active chats, limit 1: %+v", chats)
			}

			var st messageStats
			admin.Must(t, 200, "GET", "/api/stats/messages?start_date=2030-03-09&end_date=2030-03-12", nil).Decode(t, &st)
			type day struct {
				date         string
				sent, active int64
			}
			wantDays := []day{{"2030-03-09", 0, 0}, {"2030-03-10", 5, 2}, {"2030-03-11", 3, 2}, {"2030-03-12", 0, 0}}
			if st.MessagesSent != 8 || st.ActiveUsers != 3 || st.StartDate != "2030-03-09" || st.EndDate != "2030-03-12" || len(st.Daily) != len(wantDays) {
				t.Fatalf("stats: %+v", st)
			}
			for i, d := range wantDays {
				got := st.Daily[i]
				if got.Date != d.date || got.MessagesSent != d.sent || got.ActiveUsers != d.active {
					t.Errorf("day %d: %+v, want %+v", i, got, d)
				}
			}
			admin.Must(t, 200, "GET", "/api/stats/messages?start_date=2030-03-11&end_date=2030-03-11", nil).Decode(t, &st)
			if st.MessagesSent != 3 || st.ActiveUsers != 2 || len(st.Daily) != 1 {
				t.Fatalf("stats of the 11th: %+v", st)
			}
			// Defaults: the 30 days up to today (the 19th).
			admin.Must(t, 200, "GET", "/api/stats/messages", nil).Decode(t, &st)
			if st.EndDate != "2030-03-19" || len(st.Daily) != 30 || st.MessagesSent != 8 {
				t.Fatalf("default stats: %s..%s, %d days, %d sent", st.StartDate, st.EndDate, len(st.Daily), st.MessagesSent)
			}
		})
	}
}

// TestAnalyticsAccess: a user's analytics are theirs and the admins';
// statistics and system health are the admins' alone; bad input is 400.
func TestAnalyticsAccess(t *testing.T) {
	w := newAnalyticsWorld(t, testdb.Backends[0], nil)
	ann, bob, admin := w.ann, w.bob, w.admin
	anon := apitest.NewClient(w.srv.URL())
	userRoutes := []string{"/api/analytics/user/%s", "/api/analytics/active-chats/%s", "/api/analytics/message-count/%s"}
	for _, r := range userRoutes {
		for _, c := range []struct {
			name   string
			caller *apitest.Client
			of     string
			want   int
		}{
			{"OK", ann, ann.UserID, 200},
			{"ErrForbidden", bob, ann.UserID, 403},
			{"AdminOK", admin, ann.UserID, 200},
			{"AdminErrNotFound", admin, "usr_nobody", 404},
			{"ErrForbiddenNoSuchUser", bob, "usr_nobody", 403},
			{"ErrUnauthorized", anon, ann.UserID, 401},
		} {
			path := fmt.Sprintf(r, url.PathEscape(c.of))
			t.Run(c.name+path, func(t *testing.T) { c.caller.Must(t, c.want, "GET", path, nil) })
		}
	}
	for _, path := range []string{"/api/stats/messages", "/api/system/health"} {
		ann.Must(t, 403, "GET", path, nil)
		anon.Must(t, 401, "GET", path, nil)
		admin.Must(t, 200, "GET", path, nil)
	}
	for _, c := range []struct {
		caller *apitest.Client
		path   string
	}{
		{ann, "/api/analytics/message-count/" + ann.UserID + "?period=hour"},
		{ann, "/api/analytics/active-chats/" + ann.UserID + "?limit=0"},
		{ann, "/api/analytics/active-chats/" + ann.UserID + "?limit=201"},
		{admin, "/api/stats/messages?start_date=2030-3-1&end_date=2030-03-02"},
		{admin, "/api/stats/messages?start_date=2030-03-02&end_date=2030-03-01"},
		{admin, "/api/stats/messages?start_date=2029-03-01&end_date=2030-03-02"}, // 367 days
		{admin, "/api/stats/messages?end_date=yesterday"},
	} {
		if r := c.caller.Do(t, "GET", c.path, nil); r.Status != 400 || r.Error.Code != "invalid_argument" {
			t.Errorf("GET %s: %d %s, want 400 invalid_argument", c.path, r.Status, r.Error.Code)
		}
	}
	admin.Must(t, 200, "GET", "/api/stats/messages?start_date=2029-03-02&end_date=2030-03-02", nil) // 366 days
}

type systemHealth struct {
	Node        string
	CPUUsage    string  `json:"cpu_usage"`
	CPUPercent  float64 `json:"cpu_percent"`
	MemoryUsage string  `json:"memory_usage"`
	Goroutines  int
	Connections int
	Uptime      int64
	DB          struct {
		OK        bool
		LatencyMs float64 `json:"latency_ms"`
	}
	Bus   struct{ OK bool }
	Nodes []struct {
		Node        string
		Connections int
		DB          struct{ OK bool }
		Bus         struct{ OK bool }
	}
}

// TestSystemHealth: the node's report, and with the database unreachable
// 503 with db.ok false for an admin checked before (others get the plain
// 503 every route answers then).
func TestSystemHealth(t *testing.T) {
	dsn := testdb.DSN(t, "postgres")
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newDBProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	w := newAnalyticsWorld(t, "postgres", func(c *server.Config) {
		c.DB = u.String()
		// Long enough for registrations on a loaded machine (1 s was not);
		// each check with the database down waits this long.
		c.DBTimeout = 10 * time.Second
		c.NodeID = "node-h"
	})
	ws := apitest.DialWS(t, w.srv.URL(), w.ann.Token)
	defer ws.Close()
	var h systemHealth
	w.admin.Must(t, 200, "GET", "/api/system/health", nil).Decode(t, &h)
	if h.Node != "node-h" || !h.DB.OK || !h.Bus.OK || h.Goroutines <= 0 || h.Connections != 1 || h.Uptime < 0 ||
		!strings.HasSuffix(h.CPUUsage, "%") || !strings.HasSuffix(h.MemoryUsage, "%") || len(h.Nodes) != 1 || h.Nodes[0].Node != "node-h" {
		t.Fatalf("health: %+v", h)
	}

	proxy.set("down")
	r := w.admin.Do(t, "GET", "/api/system/health", nil)
	if r.Status != 503 || r.Success || r.Error.Code != "unavailable" {
		t.Fatalf("health with the database down: %d %+v", r.Status, r.Error)
	}
	h = systemHealth{}
	r.Decode(t, &h)
	if h.DB.OK || h.Node != "node-h" || h.Connections != 1 {
		t.Fatalf("health with the database down: %+v", h)
	}
	if r := w.ann.Do(t, "GET", "/api/system/health", nil); r.Status != 503 || string(r.Data) != "" {
		t.Fatalf("a token never checked, with the database down: %d %s", r.Status, r.Data)
	}
	proxy.set("up")
	eventually(t, "the database is back", 20*time.Second, func() bool {
		return w.admin.Do(t, "GET", "/api/system/health", nil).Status == 200
	})

	// A token that logged out is not served from memory any more.
	second := apitest.NewClient(w.srv.URL())
	var login struct{ Token string }
	second.Must(t, 200, "POST", "/api/auth/login", map[string]string{"username": w.admin.Username, "password": "password-" + w.admin.Username}).Decode(t, &login)
	second.Token = login.Token
	second.Must(t, 200, "GET", "/api/system/health", nil)
	second.Must(t, 200, "POST", "/api/auth/logout", nil)
	proxy.set("down")
	if r := second.Do(t, "GET", "/api/system/health", nil); r.Status != 503 || string(r.Data) != "" {
		t.Fatalf("a token that logged out, with the database down: %d %s", r.Status, r.Data)
	}
	if r := w.admin.Do(t, "GET", "/api/system/health", nil); r.Status != 503 || string(r.Data) == "" {
		t.Fatalf("the other admin token, with the database down: %d %s", r.Status, r.Data)
	}
	proxy.set("up")
}

// TestSystemHealthNodes: with several nodes, each node's system/health
// shows every node, as they report through the bus.
func TestSystemHealthNodes(t *testing.T) {
	dsn := testdb.DSN(t, "postgres")
	ns := natstest.Start(t)
	adminName := apitest.Unique("boss")
	var nodes []*server.Server
	for _, name := range []string{"node-x", "node-y"} {
		nodes = append(nodes, apitest.MustStart(t, "postgres", func(c *server.Config) {
			c.DB, c.Bus, c.NodeID, c.Admins = dsn, ns.URL(), name, []string{adminName}
		}))
	}
	admin := apitest.Register(t, nodes[0].URL(), adminName)
	bob := apitest.Register(t, nodes[1].URL(), apitest.Unique("bob"))
	ws := apitest.DialWS(t, nodes[1].URL(), bob.Token)
	defer ws.Close()
	for i, n := range nodes {
		var h systemHealth
		eventually(t, "both nodes in the health of node "+n.URL(), 30*time.Second, func() bool {
			h = systemHealth{}
			as(admin, n).Must(t, 200, "GET", "/api/system/health", nil).Decode(t, &h)
			return len(h.Nodes) == 2 && h.Nodes[1].Connections == 1-i
		})
		if h.Node != h.Nodes[0].Node || h.Nodes[0].Node == h.Nodes[1].Node || !h.Bus.OK || !h.Nodes[1].DB.OK || !h.Nodes[1].Bus.OK {
			t.Fatalf("health of node %d: %+v", i, h)
		}
	}
}

// counterRows dumps the analytics counters of a database, in key order:
// each user's counts of each day with messages as the store reads them
// (a group or channel member's received comes from the conversation's
// counters and the member's windows, not from a row of their own), then
// the rows of the server-wide tables.
func counterRows(t *testing.T, backend, dsn string, users ...string) []string {
	t.Helper()
	raw := openRaw(t, dsn)
	defer raw.Close()
	store, err := sqlstore.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var out []string
	var days []int64
	for _, q := range []string{
		`SELECT 'd', day, messages_sent, active_users FROM daily_stats ORDER BY day`,
		`SELECT 'g', day, gap, senders FROM daily_sender_gaps ORDER BY day, gap`,
	} {
		rows, err := raw.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var kind string
			var a, b, c int64
			if err := rows.Scan(&kind, &a, &b, &c); err != nil {
				t.Fatal(err)
			}
			if kind == "d" {
				days = append(days, a)
			}
			out = append(out, fmt.Sprint(kind, a, b, c))
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	sort.Strings(users)
	for _, u := range users {
		for _, d := range days {
			c, err := store.UserCounts(context.Background(), u, parley.Day(d), parley.Day(d))
			if err != nil {
				t.Fatal(err)
			}
			if c.Sent != 0 || c.Received != 0 {
				out = append(out, fmt.Sprint("u", u, d, c.Sent, c.Received, parley.Millis(c.LastSentAt)))
			}
		}
	}
	return out
}

// TestAnalyticsBackfill: migration 0014 (with 0021 after it) computes, from the messages of a
// database that predates it, the same counters the send path keeps
// (direct, group and channel messages across a midnight, a member who left).
func TestAnalyticsBackfill(t *testing.T) {
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			dsn := testdb.DSN(t, backend)
			w := newAnalyticsWorld(t, backend, func(c *server.Config) { c.DB = dsn })
			ann, bob, cat := w.ann, w.bob, w.cat
			var g struct{ GroupID string }
			ann.Must(t, 201, "POST", "/api/groups/create", map[string]any{"name": "trip", "members": []string{bob.UserID, cat.UserID}}).Decode(t, &g)
			sendDirect(t, ann, bob, "")
			sendGroup(t, ann, g.GroupID)
			sendGroup(t, bob, g.GroupID)
			w.clock.Advance(3 * time.Minute) // past midnight
			bob.Must(t, 200, "POST", "/api/groups/members/remove", map[string]any{"groupId": g.GroupID, "memberId": bob.UserID})
			sendGroup(t, cat, g.GroupID)
			sendDirect(t, bob, ann, "")
			comm := openCommunity(t, ann, cat)
			ann.Must(t, 201, "POST", "/api/channel-messages/send", map[string]any{"channelId": comm.DefaultChannel, "content": "ct", "type": "text"})
			w.clock.Advance(3 * 24 * time.Hour)
			sendDirect(t, ann, cat, "")
			users := []string{ann.UserID, bob.UserID, cat.UserID}
			kept := counterRows(t, backend, dsn, users...)
			if len(kept) == 0 {
				t.Fatal("no counters")
			}
			w.srv.Close()

			// Back to before 0014 (and 0021, which builds on it).
			raw := openRaw(t, dsn)
			undo := []string{`DROP TRIGGER member_window_open`, `DROP TRIGGER member_window_close`}
			if backend == "postgres" {
				undo = []string{`DROP TRIGGER member_window_open ON conversation_members`, `DROP TRIGGER member_window_close ON conversation_members`,
					`DROP FUNCTION member_windows_open`, `DROP FUNCTION member_windows_close`}
			}
			for _, q := range append(undo, `DROP TABLE member_windows`, `DROP TABLE conversation_daily_stats`,
				`DROP TABLE daily_sender_gaps`, `DROP TABLE daily_stats`, `DROP TABLE user_daily_stats`,
				`DELETE FROM schema_migrations WHERE version IN (14, 21)`) {
				if _, err := raw.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
			raw.Close()
			apitest.MustStart(t, backend, func(c *server.Config) { c.DB = dsn })
			backfilled := counterRows(t, backend, dsn, users...)
			if strings.Join(kept, "\n") != strings.Join(backfilled, "\n") {
				t.Fatalf("send path:\n%s\nbackfill:\n%s", strings.Join(kept, "\n"), strings.Join(backfilled, "\n"))
			}
		})
	}
}
