package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/testdb"
)

// The suites in this file are generated from the route table, through the
// OpenAPI document it produces (GET /api/openapi.json): a new route is
// covered without anyone remembering to add it (issue #12).

// operation is one route of the OpenAPI document.
type operation struct {
	Method, Path string
	PathParams   []string
	QueryParams  []string
	Public       bool
	Example      map[string]any    // the request body example, nil without a body
	Props        map[string]string // top-level body properties: "string", "array" (of strings) or another type
}

func (op operation) String() string { return op.Method + " " + op.Path }

// operations reads every JSON route of the server's OpenAPI document.
func operations(t *testing.T, base string) []operation {
	t.Helper()
	resp, err := http.Get(base + "/api/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Security   []any `json:"security"`
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
		Paths map[string]map[string]struct {
			Security   *[]any `json:"security"`
			Parameters []struct {
				Name, In string
			} `json:"parameters"`
			RequestBody struct {
				Content map[string]struct {
					Schema  json.RawMessage `json:"schema"`
					Example map[string]any  `json:"example"`
				} `json:"content"`
			} `json:"requestBody"`
		} `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	type schema struct {
		Ref        string `json:"$ref"`
		Properties map[string]struct {
			Type  any `json:"type"`
			Items *struct {
				Type any `json:"type"`
			} `json:"items"`
		} `json:"properties"`
	}
	resolve := func(raw json.RawMessage) schema {
		var s schema
		json.Unmarshal(raw, &s)
		for s.Ref != "" {
			name := strings.TrimPrefix(s.Ref, "#/components/schemas/")
			s = schema{}
			json.Unmarshal(doc.Components.Schemas[name], &s)
		}
		return s
	}
	var ops []operation
	for path, byMethod := range doc.Paths {
		if !strings.HasPrefix(path, "/api/") || strings.HasSuffix(path, ".json") {
			continue // the documents themselves, and the socket endpoints
		}
		for method, o := range byMethod {
			op := operation{Method: strings.ToUpper(method), Path: path, Public: o.Security != nil && len(*o.Security) == 0}
			for _, p := range o.Parameters {
				if p.In == "path" {
					op.PathParams = append(op.PathParams, p.Name)
				} else if p.In == "query" {
					op.QueryParams = append(op.QueryParams, p.Name)
				}
			}
			if c, ok := o.RequestBody.Content["application/json"]; ok {
				op.Example, op.Props = c.Example, map[string]string{}
				if op.Example == nil {
					op.Example = map[string]any{}
				}
				for name, p := range resolve(c.Schema).Properties {
					typ := fmt.Sprint(p.Type)
					if strings.Contains(typ, "string") {
						typ = "string"
					} else if strings.Contains(typ, "array") && p.Items != nil && strings.Contains(fmt.Sprint(p.Items.Type), "string") {
						typ = "array"
					}
					op.Props[name] = typ
				}
			}
			ops = append(ops, op)
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].String() < ops[j].String() })
	if len(ops) < 40 {
		t.Fatalf("only %d operations in the OpenAPI document", len(ops))
	}
	return ops
}

// rawBody marshals body with the string fields named in raw replaced by
// the raw JSON string contents given (which may hold escapes or bytes that
// no Go string marshals to).
func rawBody(body map[string]any, raw map[string]string, arrays map[string]string) []byte {
	b := map[string]any{}
	for k, v := range body {
		b[k] = v
	}
	for k := range raw {
		b[k] = "\x01" + k + "\x01"
	}
	for k := range arrays {
		b[k] = []string{"\x01" + k + "\x01"}
	}
	out, _ := json.Marshal(b)
	s := string(out)
	for k, v := range raw {
		s = strings.Replace(s, `"\u0001`+k+`\u0001"`, `"`+v+`"`, 1)
	}
	for k, v := range arrays {
		s = strings.Replace(s, `"\u0001`+k+`\u0001"`, `"`+v+`"`, 1)
	}
	return []byte(s)
}

// fillPath puts values in the path parameters, vals by name and def for
// the others.
func fillPath(op operation, vals map[string]string, def string) string {
	p := op.Path
	for _, name := range op.PathParams {
		v, ok := vals[name]
		if !ok {
			v = def
		}
		p = strings.Replace(p, "{"+name+"}", v, 1)
	}
	return p
}

// wantRefusal fails unless r is a 4xx error envelope.
func wantRefusal(t *testing.T, what string, r *apitest.Response) {
	t.Helper()
	if r.Status < 400 || r.Status > 499 || r.Success || r.Error.Code == "" {
		t.Errorf("%s: status %d success %v error %q, want a 4xx error envelope", what, r.Status, r.Success, r.Error.Code)
	}
}

// hostileText is text that must never reach a store, as JSON string
// contents; hostilePath the same as path or query text.
var (
	hostileText = map[string]string{
		"NUL":            `evil\u0000`,
		"invalid UTF-8":  "ab\xffcd",
		"lone surrogate": `evil\ud800`,
		"over-long":      strings.Repeat("long", 20_000),
	}
	hostilePath = map[string]string{
		"NUL":            "%00",
		"invalid UTF-8":  "ab%FFcd",
		"lone surrogate": "%ED%A0%80",
		"over-long":      strings.Repeat("long", 1_000),
	}
)

// TestHostileInputEveryRoute sends NUL, invalid UTF-8, lone surrogates and
// over-long strings in every string field of every body and every path and
// query parameter of every route, on every backend: every answer is a 4xx
// error envelope, never a 5xx, while another pair of users keeps sending,
// and every one of their sends succeeds.
func TestHostileInputEveryRoute(t *testing.T) {
	t.Parallel()
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			srv := apitest.MustStart(t, backend, nil)
			base := srv.URL()
			eve, bob := apitest.Register(t, base, apitest.Unique("eve")), apitest.Register(t, base, apitest.Unique("bob"))
			g1, g2 := apitest.Register(t, base, apitest.Unique("good")), apitest.Register(t, base, apitest.Unique("good"))

			stop := make(chan struct{})
			var good, bad atomic.Int64
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					r := g1.Do(t, "POST", "/api/messages/send", map[string]any{"recipientId": g2.UserID, "encryptedContent": fmt.Sprintf("good-%d", i), "type": "text"})
					if r.Status == 201 {
						good.Add(1)
					} else {
						bad.Add(1)
					}
				}
			}()

			ops := operations(t, base)
			for _, op := range ops {
				if op.Path == "/api/auth/logout" {
					continue // would end eve's session; it takes no input anyway
				}
				for name, text := range hostilePath {
					for _, p := range op.PathParams {
						path := fillPath(op, map[string]string{p: text}, eve.UserID)
						wantRefusal(t, fmt.Sprintf("%s: %s in path {%s}", op, name, p), eve.Do(t, op.Method, path, bodyOf(op)))
					}
					for _, q := range op.QueryParams {
						path := fillPath(op, nil, eve.UserID) + "?" + q + "=" + text
						r := eve.Do(t, op.Method, path, bodyOf(op))
						wantRefusal(t, fmt.Sprintf("%s: %s in query %s", op, name, q), r)
					}
				}
				for name, text := range hostileText {
					for prop, typ := range op.Props {
						var body []byte
						switch typ {
						case "string":
							body = rawBody(op.Example, map[string]string{prop: text}, nil)
						case "array":
							body = rawBody(op.Example, nil, map[string]string{prop: text})
						default:
							continue
						}
						wantRefusal(t, fmt.Sprintf("%s: %s in body field %s", op, name, prop), eve.Do(t, op.Method, fillPath(op, nil, eve.UserID), body))
					}
				}
			}
			close(stop)
			wg.Wait()
			if good.Load() == 0 || bad.Load() != 0 {
				t.Fatalf("the other users' sends during the attack: %d succeeded, %d failed", good.Load(), bad.Load())
			}
			_ = bob
			t.Logf("%d operations attacked; %d good sends meanwhile, all succeeded", len(ops), good.Load())
		})
	}
}

// bodyOf is the example body of op, or nil when it takes none.
func bodyOf(op operation) any {
	if op.Example == nil {
		return nil
	}
	return op.Example
}

// selfFields are the body fields and query parameters that, when given,
// must name the caller (API.md §1).
var selfFields = []string{"userId", "senderId", "viewerId"}

// strangerBody is op's example without self fields or recipients, with
// the owner's ids in place of the example's.
func strangerBody(op operation, ids map[string]string) map[string]any {
	if op.Example == nil {
		return nil
	}
	b := map[string]any{}
	for k, v := range op.Example {
		if slices.Contains(selfFields, k) || k == "recipientId" || k == "replyToId" || k == "mediaId" || k == "clientMessageId" {
			continue
		}
		if id, ok := ids[k]; ok {
			v = id
		}
		b[k] = v
	}
	return b
}

// TestStrangerEveryRoute calls every route that takes the id of a message
// or a group, in its path or body, as a user who has nothing to do with it,
// on every backend: each answers 404, and what the owners see is unchanged.
func TestStrangerEveryRoute(t *testing.T) {
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			srv := apitest.MustStart(t, backend, nil)
			base := srv.URL()
			ann, bob, eve := apitest.Register(t, base, apitest.Unique("ann")), apitest.Register(t, base, apitest.Unique("bob")), apitest.Register(t, base, apitest.Unique("eve"))
			m := send(t, ann, bob, "private", nil)
			var g struct{ GroupID string }
			ann.Must(t, 201, "POST", "/api/groups/create", map[string]any{"name": "G", "members": []string{bob.UserID}}).Decode(t, &g)
			gm := groupSend(t, ann, g.GroupID, "group-private")
			var sc struct{ MessageID string }
			ann.Must(t, 201, "POST", "/api/messages/schedule", map[string]any{"recipientId": bob.UserID, "encryptedContent": "later", "type": "text",
				"scheduledAt": time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)}).Decode(t, &sc)
			snapshot := func() string {
				var b strings.Builder
				for _, p := range []string{"/api/messages/" + ann.UserID + "/" + bob.UserID, "/api/group-messages/" + g.GroupID,
					"/api/groups/" + g.GroupID, "/api/messages/scheduled"} {
					b.Write(ann.Must(t, 200, "GET", p, nil).Data)
				}
				return b.String()
			}
			before := snapshot()
			tried := 0
			for _, op := range operations(t, base) {
				group := strings.Contains(op.Path, "group")
				ids := map[string]string{"messageId": m.MessageID, "groupId": g.GroupID}
				if group {
					ids["messageId"] = gm.MessageID
				}
				if strings.Contains(op.Path, "scheduled") {
					ids["messageId"] = sc.MessageID
				}
				takesID := false
				for _, p := range op.PathParams {
					takesID = takesID || p == "messageId" || p == "groupId"
				}
				for p := range op.Props {
					takesID = takesID || p == "messageId" || p == "groupId"
				}
				if !takesID || op.Public {
					continue
				}
				tried++
				r := eve.Do(t, op.Method, fillPath(op, ids, eve.UserID), strangerBody(op, ids))
				if r.Status != 404 || r.Error.Code != "not_found" {
					t.Errorf("%s as a stranger: %d %q %q, want 404", op, r.Status, r.Error.Code, r.Error.Message)
				}
			}
			if tried < 15 {
				t.Fatalf("only %d routes take a message or group id", tried)
			}
			if after := snapshot(); after != before {
				t.Fatalf("a stranger changed what the owner sees:\nbefore %s\nafter  %s", before, after)
			}
			t.Logf("%d routes tried as a stranger", tried)
		})
	}
}

// targetsUser lists the routes whose body userId names the user acted on,
// as API.md §6 spells them, rather than the caller.
var targetsUser = map[string]bool{
	"POST /api/communities/requests/approve": true,
	"POST /api/communities/requests/reject":  true,
}

// TestSpoofedIdentityEveryRoute names another user in the userId, senderId
// and viewerId query parameters of every authenticated route, and in those
// body fields of every route that has them: each answers 403, on every
// backend.
func TestSpoofedIdentityEveryRoute(t *testing.T) {
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			srv := apitest.MustStart(t, backend, nil)
			base := srv.URL()
			eve, bob := apitest.Register(t, base, apitest.Unique("eve")), apitest.Register(t, base, apitest.Unique("bob"))
			tried := 0
			for _, op := range operations(t, base) {
				if op.Public || op.Path == "/api/auth/logout" {
					continue
				}
				path := fillPath(op, map[string]string{"userId": eve.UserID}, eve.UserID)
				for _, f := range selfFields {
					tried++
					r := eve.Do(t, op.Method, path+"?"+f+"="+url.QueryEscape(bob.UserID), bodyOf(op))
					if r.Status != 403 {
						t.Errorf("%s?%s=<someone else>: %d %q, want 403", op, f, r.Status, r.Error.Code)
					}
					// (where API.md names the user acted on userId, the body's userId is not the caller's)
					if _, ok := op.Props[f]; ok && !(targetsUser[op.String()] && f == "userId") {
						tried++
						body := strangerBody(op, nil)
						body[f] = bob.UserID
						r := eve.Do(t, op.Method, path, body)
						if r.Status != 403 {
							t.Errorf("%s with body %s=<someone else>: %d %q %q, want 403", op, f, r.Status, r.Error.Code, r.Error.Message)
						}
					}
				}
			}
			t.Logf("%d spoofed calls", tried)
		})
	}
}
