package service_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/service"
)

// fullChatView has every field of a chat row and of its peer, group and
// channel set (a row has one of the three; the encoder does not care).
func fullChatView(s string, n int64, on bool, at parley.Time) *service.ChatView {
	content := s
	return &service.ChatView{ConversationID: s, Type: s,
		Peer:  &service.ChatPeer{UserID: s, Username: s, Name: s, Avatar: s, Online: on, LastSeen: at},
		Group: &service.ChatGroup{GroupID: s, Name: s, Avatar: s, MembersCount: int(n), Role: s},
		Channel: &service.ChatChannel{ChannelID: s, CommunityID: s, CommunityName: s, Name: s, Type: s, IsPrivate: on,
			Role: s},
		LastMessage: &service.MessageView{MessageID: s, Content: &content, SentAt: at}, UnreadCount: n, Muted: on,
		LastActivityAt: at}
}

// assertFull fails unless every field of v, and of the structs its
// pointers lead to, is set: a field added to the views must be added to
// the test's full view, and then to the encoder, or the comparison fails.
func assertFull(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			t.Fatalf("%s is nil in the full view", path)
		}
		v = v.Elem()
	}
	for i := range v.NumField() {
		f, name := v.Field(i), path+"."+v.Type().Field(i).Name
		if f.IsZero() {
			t.Fatalf("%s is not set in the full view", name)
		}
		if f.Kind() == reflect.Pointer && f.Elem().Kind() == reflect.Struct && f.Type() != reflect.TypeFor[*service.MessageView]() {
			assertFull(t, f, name)
		}
	}
}

// TestChatViewJSON holds the hand-written encoder of chat rows to
// encoding/json: every field set, the shapes of a direct, group and
// channel row, zero values, and a list with a nil element.
func TestChatViewJSON(t *testing.T) {
	odd := "quote \" backslash \\ <tag> & \b\f\n\r\t \x00\x1f \u2028\u2029 é 😀 bad\xff\xfe utf8"
	at := parley.Time{Time: time.Date(2026, 12, 5, 11, 4, 5, 678_000_000, time.UTC)}
	full := fullChatView(odd, 7, true, at)
	assertFull(t, reflect.ValueOf(full), "ChatView")
	direct := &service.ChatView{ConversationID: "dm_1", Type: parley.KindDirect,
		Peer: &service.ChatPeer{UserID: "u_1", Username: "ann", Name: "Ann"}, UnreadCount: 2, LastActivityAt: at}
	group := &service.ChatView{ConversationID: "grp_1", Type: parley.KindGroup,
		Group: &service.ChatGroup{GroupID: "grp_1", Name: "G", MembersCount: 3, Role: "admin"}, Muted: true}
	channel := &service.ChatView{ConversationID: "chn_1", Type: parley.KindChannel,
		Channel: &service.ChatChannel{ChannelID: "chn_1", CommunityID: "comm_1", Type: "announcement", IsPrivate: true}}
	for name, v := range map[string]*service.ChatView{"Full": full, "Direct": direct, "Group": group, "Channel": channel, "Zero": {}} {
		t.Run(name, func(t *testing.T) {
			want := mustMarshal(t, v)
			if got := v.AppendJSON(nil); !bytes.Equal(got, want) {
				t.Errorf("AppendJSON:\n got %s\nwant %s", got, want)
			}
		})
	}
	for _, list := range [][]*service.ChatView{nil, {}, {direct, nil, group, channel, full}} {
		want := mustMarshal(t, list)
		if got := service.AppendChatViews([]byte("x"), list); !bytes.Equal(got, append([]byte("x"), want...)) {
			t.Errorf("AppendChatViews:\n got %s\nwant x%s", got, want)
		}
	}
}

// FuzzChatViewJSON checks that any strings, counts and times encode as
// encoding/json encodes them.
func FuzzChatViewJSON(f *testing.F) {
	f.Add("dm_1", int64(3), int64(1764860645678), true)
	f.Add("<script>&\u2028\xff", int64(-1), int64(0), false)
	f.Add("a", int64(1<<40), int64(253402300800000), false) // year 10000
	f.Fuzz(func(t *testing.T, s string, n, ms int64, on bool) {
		v := fullChatView(s, n, on, parley.Time{Time: time.UnixMilli(ms)})
		want, err := json.Marshal(v)
		if err != nil {
			t.Skip(err) // a time outside what MarshalJSON can print
		}
		if got := v.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON:\n got %s\nwant %s", got, want)
		}
	})
}

// BenchmarkChatViewsJSON encodes a chat list of 200 direct rows, each
// with its last message, by hand and with encoding/json:
//
//	go test -run '^$' -bench ChatViewsJSON ./service
func BenchmarkChatViewsJSON(b *testing.B) {
	at := parley.Time{Time: time.Date(2026, 12, 5, 11, 4, 5, 678_000_000, time.UTC)}
	list := make([]*service.ChatView, 200)
	for i := range list {
		content := string(bytes.Repeat([]byte("c"), 300))
		list[i] = &service.ChatView{ConversationID: "dm_abcdefghijklmnopqrstuvwxyz", Type: parley.KindDirect,
			Peer: &service.ChatPeer{UserID: "u_abcdefghijklmnopqrstuvwxyz", Username: "someone", Name: "Some One", LastSeen: at},
			LastMessage: &service.MessageView{MessageID: "msg_abcdefghijklmnopqrstuvwxyz", ConversationID: "dm_abcdefghijklmnopqrstuvwxyz",
				Seq: 1, SenderID: "u_abcdefghijklmnopqrstuvwxyz", RecipientID: "u_bcdefghijklmnopqrstuvwxyz", Content: &content,
				ContentHash: "0123456789abcdef0123456789abcdef", Type: "text", Status: parley.StatusSeen, SentAt: at, DeliveredAt: at,
				SeenAt: at, Reactions: []parley.Reaction{}},
			UnreadCount: 1, LastActivityAt: at}
	}
	b.Run("hand", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			buf = service.AppendChatViews(buf[:0], list)
		}
		b.SetBytes(int64(len(buf)))
	})
	b.Run("encoding-json", func(b *testing.B) {
		var n int
		for b.Loop() {
			out, err := json.Marshal(list)
			if err != nil {
				b.Fatal(err)
			}
			n = len(out)
		}
		b.SetBytes(int64(n))
	})
}
