package httpapi

import (
	"bytes"
	"encoding/json"
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
