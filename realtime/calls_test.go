package realtime_test

import (
	"strings"
	"testing"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/testdb"
)

// TestRingOnSocketIOConnect: a Socket.IO socket of a callee that connects
// while a call rings gets call_incoming, after the CONNECT answer.
func TestRingOnSocketIOConnect(t *testing.T) {
	srv := apitest.MustStart(t, testdb.Backends[0], nil)
	ann := apitest.Register(t, srv.URL(), apitest.Unique("ann"))
	bob := apitest.Register(t, srv.URL(), apitest.Unique("bob"))
	var call struct{ CallID string }
	ann.Must(t, 200, "POST", "/api/calls/initiate", map[string]string{"receiverId": bob.UserID, "type": "voice"}).Decode(t, &call)

	p := openPolling(t, srv.URL())
	got := p.connect(bob.Token)
	for i := 0; i < 5 && !strings.Contains(got, call.CallID); i++ {
		_, more := p.get()
		got += more
	}
	connected, ring := strings.Index(got, `40{"sid"`), strings.Index(got, `42["call_incoming",`)
	if connected < 0 || ring < connected || !strings.Contains(got[ring:], `"callId":"`+call.CallID+`"`) ||
		!strings.Contains(got[ring:], `"callerId":"`+ann.UserID+`"`) {
		t.Fatalf("polling after CONNECT: %q; want the CONNECT answer, then call_incoming for %s", got, call.CallID)
	}
	ann.Must(t, 200, "POST", "/api/calls/end", map[string]string{"callId": call.CallID})
}
