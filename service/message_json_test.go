package service_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/service"
)

// mustMarshal is encoding/json's answer, the reference AppendJSON must match.
func mustMarshal(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestMessageViewJSON holds the hand-written encoder to encoding/json over
// the shapes a view takes: optional fields absent and present, a
// tombstone's null content, nil and empty reactions, zero and set times,
// and strings that need escaping.
func TestMessageViewJSON(t *testing.T) {
	content := "ciphertext"
	odd := "quote \" backslash \\ <tag> & \b\f\n\r\t \x00\x1f \u2028\u2029 é 😀 bad\xff\xfe utf8"
	at := parley.Time{Time: time.Date(2026, 12, 4, 15, 4, 5, 678_999_999, time.FixedZone("x", 3600))}
	views := map[string]*service.MessageView{
		"Direct": {MessageID: "msg_1", ConversationID: "dm_1", Seq: 42, SenderID: "u_a", RecipientID: "u_b", Content: &content,
			ContentHash: "h", Type: "text", Status: parley.StatusSeen, SentAt: at, DeliveredAt: at, SeenAt: at, Reactions: []parley.Reaction{}},
		"Group": {MessageID: "msg_2", ConversationID: "grp_1", Seq: 1, SenderID: "u_a", GroupID: "grp_1", ClientMessageID: "c1",
			Content: &odd, ContentHash: odd, Type: "image", MediaID: "med_1", ReplyToID: "msg_1", ReplyToStatusID: "st_1",
			Status: parley.StatusSent, SentAt: at, EditedAt: at,
			Reactions: []parley.Reaction{{UserID: "u_b", Reaction: "👍"}, {UserID: "u_c", Reaction: odd}}},
		"Tombstone": {MessageID: "msg_3", ConversationID: "chn_1", ChannelID: "chn_1", Seq: -1, DeletedForEveryone: true},
		"Zero":      {},
	}
	for name, v := range views {
		t.Run(name, func(t *testing.T) {
			want := mustMarshal(t, v)
			if got := v.AppendJSON(nil); !bytes.Equal(got, want) {
				t.Errorf("AppendJSON:\n got %s\nwant %s", got, want)
			}
		})
	}
	t.Run("Page", func(t *testing.T) {
		page := []*service.MessageView{views["Direct"], nil, views["Group"]}
		for _, p := range [][]*service.MessageView{nil, {}, page} {
			want := mustMarshal(t, p)
			if got := service.AppendMessageViews([]byte("x"), p); !bytes.Equal(got, append([]byte("x"), want...)) {
				t.Errorf("AppendMessageViews:\n got %s\nwant x%s", got, want)
			}
		}
	})
}

// FuzzMessageViewJSON checks that any strings in any field encode as
// encoding/json encodes them.
func FuzzMessageViewJSON(f *testing.F) {
	f.Add("msg_1", "ciphertext", "👍", int64(7), int64(1764860645678), true)
	f.Add("<script>&", "a\"b\\c\n\x01", "\u2028", int64(-1), int64(0), false)
	f.Add("\xff\xfe", "é\xc3", "\xe2\x80", int64(1<<62), int64(-62135596800000), true)
	f.Add("a", "b", "c", int64(0), int64(253402300799999), false) // 9999-12-31T23:59:59.999Z, the last four-digit year
	f.Add("a", "b", "c", int64(0), int64(253402300800000), false) // year 10000
	f.Fuzz(func(t *testing.T, id, content, reaction string, seq, ms int64, deleted bool) {
		v := &service.MessageView{MessageID: id, ConversationID: content, Seq: seq, SenderID: reaction, RecipientID: id,
			ClientMessageID: reaction, ContentHash: id, Type: content, MediaID: reaction, ReplyToID: id, Status: content,
			SentAt: parley.Time{Time: time.UnixMilli(ms)}, SeenAt: parley.Time{Time: time.UnixMilli(ms)}, DeletedForEveryone: deleted}
		if !deleted {
			v.Content = &content
			v.Reactions = []parley.Reaction{{UserID: id, Reaction: reaction}}
		}
		want, err := json.Marshal(v)
		if err != nil {
			t.Skip(err) // a time outside what MarshalJSON can print
		}
		if got := v.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON:\n got %s\nwant %s", got, want)
		}
	})
}
