package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/service"
)

// TestAppendReply holds the envelope of a page of history and of a chat
// list to what json.Marshal of parley.Reply makes of it, with and without
// a message; other data is left to encoding/json.
func TestAppendReply(t *testing.T) {
	content := "x<y>&\u2028"
	page := []*service.MessageView{{MessageID: "msg_1", Content: &content, Reactions: []parley.Reaction{}}, {MessageID: "msg_2"}}
	chats := []*service.ChatView{{ConversationID: "dm_1", Type: parley.KindDirect, Peer: &service.ChatPeer{UserID: "u_1"},
		LastMessage: page[0], UnreadCount: 3}, {ConversationID: "grp_1", Type: parley.KindGroup, Group: &service.ChatGroup{GroupID: "grp_1"}}}
	for _, tc := range []struct {
		name string
		data any
		msg  string
	}{
		{"Page", page, ""}, {"Empty", []*service.MessageView{}, ""}, {"NilPage", []*service.MessageView(nil), ""},
		{"Message", page, "done <ok> \"quoted\""}, {"Chats", chats, ""}, {"NoChats", []*service.ChatView{}, "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := json.Marshal(parley.Reply{Success: true, Data: tc.data, Message: tc.msg})
			if err != nil {
				t.Fatal(err)
			}
			got, ok := appendReply(nil, tc.data, tc.msg)
			if !ok || !bytes.Equal(got, want) {
				t.Errorf("appendReply (%v):\n got %s\nwant %s", ok, got, want)
			}
			rec := httptest.NewRecorder()
			writeJSON(rec, 200, tc.data, tc.msg)
			if !bytes.Equal(rec.Body.Bytes(), want) {
				t.Errorf("writeJSON:\n got %s\nwant %s", rec.Body.Bytes(), want)
			}
		})
	}
	if _, ok := appendReply(nil, map[string]int{"a": 1}, ""); ok {
		t.Error("appendReply encoded a map by hand")
	}
	rec := httptest.NewRecorder()
	writeJSON(rec, 201, map[string]int{"a": 1}, "")
	if got := rec.Body.String(); rec.Code != 201 || got != `{"success":true,"data":{"a":1}}` {
		t.Errorf("writeJSON of a map: %d %s", rec.Code, got)
	}
}

// TestWriteErrorCancelled: an internal error is logged as an error, unless
// it is the request's own cancellation (the client went away), which is
// not a failure of the server's.
func TestWriteErrorCancelled(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		cancelled bool
		wantError bool
	}{
		{"Internal", errors.New("disk on fire"), false, true},
		{"CancelledByClient", fmt.Errorf("store: %w", context.Canceled), true, false},
		{"CanceledButRequestLive", fmt.Errorf("store: %w", context.Canceled), false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			ctx, cancel := context.WithCancel(context.WithValue(context.Background(), loggerKey, logger))
			defer cancel()
			if tc.cancelled {
				cancel()
			}
			rec := httptest.NewRecorder()
			writeError(rec, httptest.NewRequest("GET", "/api/chats", nil).WithContext(ctx), tc.err)
			if rec.Code != 500 {
				t.Fatalf("status %d", rec.Code)
			}
			if got := strings.Contains(logs.String(), "level=ERROR"); got != tc.wantError {
				t.Fatalf("logged an error: %v, want %v; log:\n%s", got, tc.wantError, logs.String())
			}
		})
	}
}
