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

// TestAppendReply holds the envelope of a page of history to what
// json.Marshal of parley.Reply makes of it, with and without a message.
func TestAppendReply(t *testing.T) {
	content := "x<y>&\u2028"
	page := []*service.MessageView{{MessageID: "msg_1", Content: &content, Reactions: []parley.Reaction{}}, {MessageID: "msg_2"}}
	for _, tc := range []struct {
		name  string
		views []*service.MessageView
		msg   string
	}{{"Page", page, ""}, {"Empty", []*service.MessageView{}, ""}, {"Message", page, "done <ok> \"quoted\""}} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := json.Marshal(parley.Reply{Success: true, Data: tc.views, Message: tc.msg})
			if err != nil {
				t.Fatal(err)
			}
			if got := appendReply(nil, tc.views, tc.msg); !bytes.Equal(got, want) {
				t.Errorf("appendReply:\n got %s\nwant %s", got, want)
			}
		})
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
