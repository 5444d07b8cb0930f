package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/testenv"
)

// TestContractCatches shows that the check every apitest client applies
// refuses what the documents do not describe, so a passing end-to-end
// suite means conforming responses and events.
func TestContractCatches(t *testing.T) {
	srv := apitest.MustStart(t, "sqlite", nil)
	ct, err := apitest.LoadContract(http.DefaultClient, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	ok := `{"senderId":"usr_1","recipientId":"usr_2","isTyping":true,"timestamp":"2025-04-12T11:56:12.043Z"}`
	if err := ct.CheckEvent("typing_indicator", []byte(ok)); err != nil {
		t.Fatalf("a conforming event: %v", err)
	}
	for _, tc := range []struct{ name, event, data, want string }{
		{"ErrUndocumentedField", "typing_indicator", strings.Replace(ok, `"isTyping"`, `"surprise":1,"isTyping"`, 1), "undocumented field surprise"},
		{"ErrMissingRequired", "typing_indicator", strings.Replace(ok, `,"timestamp":"2025-04-12T11:56:12.043Z"`, "", 1), "required field timestamp missing"},
		{"ErrWrongType", "typing_indicator", strings.Replace(ok, "true", `"yes"`, 1), "want type"},
		{"ErrUndocumentedEvent", "no_such_event", ok, "not in the AsyncAPI document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := ct.CheckEvent(tc.event, []byte(tc.data)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
	t.Run("ErrGroupAnswerWithoutGroupID", func(t *testing.T) {
		// The seed's group answers always carry groupId.
		for path, data := range map[string]string{
			"/api/group-messages/react":  `{"messageId":"msg_1","reaction":"+1"}`,
			"/api/group-messages/delete": `{"messageId":"msg_1","deleteForEveryone":true}`,
			"/api/group-messages/status": `{"messageId":"msg_1","status":"seen","updatedAt":"2025-04-12T11:56:12.043Z"}`,
		} {
			body := `{"success":true,"data":` + data + `}`
			if err := ct.CheckResponse("POST", path, 200, []byte(body)); err == nil || !strings.Contains(err.Error(), "groupId") {
				t.Errorf("%s without groupId: %v", path, err)
			}
			withID := `{"success":true,"data":` + strings.Replace(data, `{`, `{"groupId":"group_1",`, 1) + `}`
			if err := ct.CheckResponse("POST", path, 200, []byte(withID)); err != nil {
				t.Errorf("%s with groupId: %v", path, err)
			}
		}
	})
	t.Run("ErrRecording", func(t *testing.T) {
		rec := filepath.Join(t.TempDir(), "record.jsonl")
		lines := `{"kind":"rest","method":"GET","path":"/api/health","status":200,"body":"{\"success\":true,\"data\":{\"status\":\"ok\"},\"message\":\"API is healthy\"}"}
{"kind":"event","event":"typing_indicator","data":` + strings.Replace(ok, `"isTyping"`, `"surprise":1,"isTyping"`, 1) + `}
{"kind":"ack","event":"no_such_event","data":{"success":false,"error":{"code":"invalid_argument","message":"unknown event"}}}
`
		if err := os.WriteFile(rec, []byte(lines), 0o600); err != nil {
			t.Fatal(err)
		}
		n, problems, err := ct.CheckRecording(rec)
		if err != nil || n != 3 || len(problems) != 1 || !strings.Contains(problems[0], "surprise") {
			t.Fatalf("checked %d records, problems %q, err %v; want 3 and the undocumented field", n, problems, err)
		}
	})
	t.Run("ErrResponse", func(t *testing.T) {
		body := `{"success":true,"data":{"status":"ok","extra":true},"message":"API is healthy"}`
		if err := ct.CheckResponse("GET", "/api/health", 200, []byte(body)); err == nil || !strings.Contains(err.Error(), "undocumented field extra") {
			t.Fatalf("got %v", err)
		}
		if err := ct.CheckResponse("GET", "/api/nowhere", 200, []byte(`{"success":true}`)); err == nil {
			t.Fatal("a success from an undocumented route passed")
		}
	})
}

// TestOpenAPIQueryTypes checks that the paging parameters are typed as
// the handlers parse them: limit and beforeSeq integers, before an epoch
// millisecond integer or an ISO 8601 time.
func TestOpenAPIQueryTypes(t *testing.T) {
	srv := apitest.MustStart(t, "sqlite", nil)
	resp, err := http.Get(srv.URL() + "/api/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct {
				Name   string
				In     string
				Schema json.RawMessage
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"limit": `"type":"integer"`, "beforeSeq": `"type":"integer"`, "before": `"oneOf"`}
	for _, path := range []string{"/api/messages/{userId}/{recipientId}", "/api/group-messages/{groupId}"} {
		seen := 0
		for _, p := range doc.Paths[path]["get"].Parameters {
			if w, ok := want[p.Name]; ok && p.In == "query" {
				seen++
				var compact bytes.Buffer
				if err := json.Compact(&compact, p.Schema); err != nil || !strings.Contains(compact.String(), w) {
					t.Errorf("%s %s: schema %s, want %s", path, p.Name, compact.String(), w)
				}
			}
		}
		if seen != len(want) {
			t.Errorf("%s: %d of the paging parameters documented, want %d", path, seen, len(want))
		}
	}
}

// TestDocumentsLint runs the OpenAPI document through @redocly/cli lint
// with its recommended rules and the AsyncAPI document through
// @asyncapi/parser; any error or warning fails.
func TestDocumentsLint(t *testing.T) {
	t.Parallel()
	dir := testenv.NodeDir(t)
	for _, bin := range []string{"node_modules/.bin/redocly", "node_modules/@asyncapi/parser"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			testenv.Unavailable(t, "npm packages missing: run make npm")
			return
		}
	}
	srv := apitest.MustStart(t, "sqlite", nil)
	tmp := t.TempDir()
	fetch := func(path string) string {
		resp, err := http.Get(srv.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc json.RawMessage
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		file := filepath.Join(tmp, filepath.Base(path))
		if err := os.WriteFile(file, doc, 0o644); err != nil {
			t.Fatal(err)
		}
		return file
	}
	openapi, asyncapi := fetch("/api/openapi.json"), fetch("/api/asyncapi.json")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	t.Run("OpenAPI", func(t *testing.T) {
		cmd := exec.CommandContext(ctx, filepath.Join(dir, "node_modules/.bin/redocly"), "lint", "--extends=recommended", "--format=json", openapi)
		cmd.Dir = tmp // no redocly.yaml there: the recommended rules alone
		out, err := cmd.Output()
		var res struct {
			Totals   struct{ Errors, Warnings int }
			Problems []struct {
				RuleID, Message string
				Location        []struct{ Pointer string }
			}
		}
		if jerr := json.Unmarshal(out, &res); jerr != nil {
			t.Fatalf("redocly: %v, %v: %s", err, jerr, out)
		}
		accepted := 0
		for _, p := range res.Problems {
			if contractAmbiguity(p.RuleID, p.Message) {
				accepted++
				continue
			}
			where := ""
			if len(p.Location) > 0 {
				where = p.Location[0].Pointer
			}
			t.Errorf("%s: %s at %s", p.RuleID, p.Message, where)
		}
		if res.Totals.Errors+res.Totals.Warnings != accepted || err != nil {
			t.Fatalf("redocly lint: %d errors, %d warnings, %d of them accepted (%v)", res.Totals.Errors, res.Totals.Warnings, accepted, err)
		}
	})
	t.Run("AsyncAPI", func(t *testing.T) {
		cmd := exec.CommandContext(ctx, "node", "check-asyncapi.mjs", asyncapi)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("@asyncapi/parser: %v\n%s", err, out)
		}
		t.Logf("%s", out)
	})
}

// contractAmbiguities are the pairs of paths that API.md fixes although
// both match one URL, which no-ambiguous-paths reports: §6's
// /api/communities/user/{userId} beside /api/communities/{communityId}/channels
// and .../requests (and .../members, which is ours and follows them), §7's /api/statuses/user/{userId} beside
// /api/statuses/{statusId}/viewers. The server answers such a URL
// (/api/statuses/user/viewers) as the route with the leftmost literal
// segment, the user's (route.shared in httpapi; TestStatusPathOverlap).
var contractAmbiguities = [][2]string{
	{"/api/communities/user/{userId}", "/api/communities/{communityId}/channels"},
	{"/api/communities/user/{userId}", "/api/communities/{communityId}/requests"},
	{"/api/communities/user/{userId}", "/api/communities/{communityId}/members"},
	{"/api/statuses/user/{userId}", "/api/statuses/{statusId}/viewers"},
}

// contractAmbiguity reports whether a lint problem is one of
// contractAmbiguities.
func contractAmbiguity(rule, msg string) bool {
	if rule != "no-ambiguous-paths" {
		return false
	}
	for _, pair := range contractAmbiguities {
		if strings.Contains(msg, "`"+pair[0]+"`") && strings.Contains(msg, "`"+pair[1]+"`") {
			return true
		}
	}
	return false
}
