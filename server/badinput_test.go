package server_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/testdb"
)

// badText is text no store can keep byte for byte, as it appears inside a
// JSON string literal: NUL (escaped and raw), invalid UTF-8 and lone UTF-16
// surrogate escapes.
var badText = map[string]string{
	"escaped NUL":    `evil\u0000`,
	"raw NUL":        "evil\x00",
	"invalid UTF-8":  "ab\xffcd",
	"lone high":      `evil\ud800`,
	"lone high+text": `evil\ud800x`,
	"lone low":       `evil\udc00`,
}

// wantInvalid fails unless r is a 400 invalid_argument error envelope.
func wantInvalid(t *testing.T, what string, r *apitest.Response) {
	t.Helper()
	if r.Status != 400 || r.Success || r.Error.Code != "invalid_argument" || r.Error.Message == "" {
		t.Errorf("%s: status %d success %v error %q %q, want 400 invalid_argument", what, r.Status, r.Success, r.Error.Code, r.Error.Message)
	}
}

// TestBadTextIsRefused covers issue #12 defects 1 and 2 (input half): NUL,
// invalid UTF-8 and lone surrogates in any body string, path segment or
// query value are 400 invalid_argument on every backend, never 500, and
// one user's bad sends never fail another user's good ones.
func TestBadTextIsRefused(t *testing.T) {
	t.Parallel()
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			srv := apitest.MustStart(t, backend, nil)
			base := srv.URL()
			ann, bob, eve := apitest.Register(t, base, "ann"), apitest.Register(t, base, "bob"), apitest.Register(t, base, "eve")
			msg := send(t, ann, bob, "hello", nil)

			for name, bad := range badText {
				for _, req := range []struct{ what, method, path, body string }{
					{"encryptedContent", "POST", "/api/messages/send",
						fmt.Sprintf(`{"recipientId":%q,"encryptedContent":"%s","type":"text"}`, bob.UserID, bad)},
					{"clientMessageId", "POST", "/api/messages/send",
						fmt.Sprintf(`{"recipientId":%q,"encryptedContent":"x","type":"text","clientMessageId":"%s"}`, bob.UserID, bad)},
					{"recipientId", "POST", "/api/messages/send",
						fmt.Sprintf(`{"recipientId":"%s","encryptedContent":"x","type":"text"}`, bad)},
					{"profile name", "PUT", "/api/users/me/profile", fmt.Sprintf(`{"name":"%s"}`, bad)},
					{"group name", "POST", "/api/groups/create", fmt.Sprintf(`{"name":"%s","members":[%q]}`, bad, bob.UserID)},
					{"reaction", "POST", "/api/messages/react", fmt.Sprintf(`{"messageId":%q,"reaction":"%s"}`, msg.MessageID, bad)},
				} {
					wantInvalid(t, name+" in "+req.what, eve.Do(t, req.method, req.path, []byte(req.body)))
				}
			}
			for _, path := range []string{"/api/users/%00", "/api/status/%00", "/api/users/search?q=%00",
				"/api/users/%FF", "/api/status/a%00b", "/api/users/search?q=ab%FFcd"} {
				wantInvalid(t, "GET "+path, eve.Do(t, "GET", path, nil))
			}
			// Nothing was changed by the refused requests.
			var me struct{ Name string }
			eve.Must(t, 200, "GET", "/api/users/me", nil).Decode(t, &me)
			if me.Name != "User eve" {
				t.Errorf("eve's name is %q after refused updates", me.Name)
			}

			// A victim's good sends all succeed while another user sends bad ones.
			const goodPer, workers, badN = 25, 4, 100
			var wg sync.WaitGroup
			var mu sync.Mutex
			var failures []string
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := 0; i < goodPer; i++ {
						body := fmt.Sprintf(`{"recipientId":%q,"encryptedContent":"good-%d-%d","type":"text"}`, bob.UserID, w, i)
						if r := ann.Do(t, "POST", "/api/messages/send", []byte(body)); r.Status != 201 {
							mu.Lock()
							failures = append(failures, fmt.Sprintf("good send %d/%d: %d %s", w, i, r.Status, r.Error.Code))
							mu.Unlock()
						}
					}
				}(w)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < badN; i++ {
					body := fmt.Sprintf(`{"recipientId":%q,"encryptedContent":"evil\u0000%d","type":"text"}`, bob.UserID, i)
					if r := eve.Do(t, "POST", "/api/messages/send", []byte(body)); r.Status != 400 {
						mu.Lock()
						failures = append(failures, fmt.Sprintf("bad send %d: %d %s", i, r.Status, r.Error.Code))
						mu.Unlock()
					}
				}
			}()
			wg.Wait()
			if len(failures) > 0 {
				t.Fatalf("%d failures, first: %s", len(failures), strings.Join(failures[:min(5, len(failures))], "; "))
			}
			got := map[string]bool{}
			for _, m := range history(t, bob, ann, "?limit=200") {
				if m.Content != nil {
					got[*m.Content] = true
				}
			}
			for w := 0; w < workers; w++ {
				for i := 0; i < goodPer; i++ {
					if c := fmt.Sprintf("good-%d-%d", w, i); !got[c] {
						t.Errorf("victim's message %s is not stored", c)
					}
				}
			}
			if r := bob.Do(t, "GET", "/api/messages/"+bob.UserID+"/"+eve.UserID, nil); r.Status == 200 && string(r.Data) != "[]" {
				t.Errorf("a refused message was stored: %s", r.Data)
			}

			// The socket's events refuse the same text as REST.
			ws := apitest.DialWS(t, base, eve.Token)
			for i, bad := range []string{`evil\u0000`, `evil\ud800`, `evil\udc00`} {
				id := int64(100 + i)
				ws.SendRaw(t, []byte(fmt.Sprintf(`{"event":"send_message","id":%d,"data":{"recipientId":%q,"encryptedContent":"%s","type":"text"}}`,
					id, bob.UserID, bad)))
				ack := ws.WaitFor(t, func(f apitest.Frame) bool { return f.Ack != nil && *f.Ack == id }).Data
				if !strings.Contains(string(ack), `"invalid_argument"`) {
					t.Errorf("send_message with %s over /ws: ack %s, want invalid_argument", bad, ack)
				}
			}
			if r := bob.Do(t, "GET", "/api/messages/"+bob.UserID+"/"+eve.UserID, nil); r.Status == 200 && string(r.Data) != "[]" {
				t.Errorf("a refused socket message was stored: %s", r.Data)
			}
		})
	}
}
