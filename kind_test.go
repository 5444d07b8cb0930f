package parley

import "testing"

func TestKindOf(t *testing.T) {
	for _, kind := range []string{KindDirect, KindGroup, KindChannel} {
		id := NewConversationID(kind)
		if got := KindOf(id); got != kind {
			t.Errorf("KindOf(%q) = %q, want %q", id, got, kind)
		}
		if MessageEvent(kind) == "" {
			t.Errorf("kind %q has no message event", kind)
		}
	}
	for _, id := range []string{"", "group", "usr_abc", "msg_abc", "_abc", "groupx_abc"} {
		if got := KindOf(id); got != "" {
			t.Errorf("KindOf(%q) = %q, want none", id, got)
		}
	}
	if MessageEvent(KindGroup) != EventNewGroupMessage || MessageEvent(KindDirect) != EventNewMessage || MessageEvent(KindChannel) != EventNewChannelMessage {
		t.Error("message events do not match API.md §12")
	}
}
