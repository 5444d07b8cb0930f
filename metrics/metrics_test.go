package metrics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-chat/parley/metrics"
)

// TestLabelsStayInTheirSets: a value outside a label's fixed set (here an
// id, as a careless caller might pass) is counted as "other", never kept.
func TestLabelsStayInTheirSets(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	const id = "usr_secret"
	m.SocketOpened(id)
	m.SocketClosed(id, id)
	m.QueueOverflow(id)
	m.MessagesSent(id, 3)
	m.SecurityEvent(id)
	m.HTTPRequest("", 404, time.Millisecond)
	m.HTTPRequest("GET /api/users/{userId}", 200, time.Millisecond)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	others := 0
	for _, f := range fams {
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				if strings.Contains(l.GetValue(), id) {
					t.Errorf("%s{%s=%q}", f.GetName(), l.GetName(), l.GetValue())
				}
				if l.GetValue() == "other" && (mt.GetCounter().GetValue() > 0 || mt.GetGauge().GetValue() != 0) {
					others++
				}
			}
		}
	}
	// sockets (opened then closed: 0, not counted), disconnects (both
	// labels other: counted twice), overflows, messages, security events.
	if others != 5 {
		t.Errorf("%d label values counted as other, want 5", others)
	}
	if n := len(fams); n < 20 {
		t.Errorf("%d families: the Go and process collectors are missing", n)
	}
}
