package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/apitest"
)

// sioAgent drives e2e/js/parley-agent.mjs: real socket.io-client sockets,
// opened and used on command, whose every connect, disconnect, event and
// ack is recorded here in arrival order.
type sioAgent struct {
	tb    testing.TB
	stdin io.WriteCloser

	mu      sync.Mutex
	reports []sioReport
	changed chan struct{} // closed and replaced when a report arrives
	nextID  int
	stderr  strings.Builder
	ct      *apitest.Contract // the documents of the first server it connected to
	emitted map[int]string    // event name by emit id, to check the acks
}

// sioReport is one line the agent printed.
type sioReport struct {
	T         int64           `json:"t"` // ms since the epoch
	Sock      string          `json:"sock"`
	Type      string          `json:"type"` // connect, connect_error, disconnect, event, ack, closed
	Event     string          `json:"event"`
	Data      json.RawMessage `json:"data"`
	ID        int             `json:"id"`
	Sent      int64           `json:"sent"`
	Error     string          `json:"error"`
	Reason    string          `json:"reason"`
	Message   string          `json:"message"`
	Body      string          `json:"body"`
	Transport string          `json:"transport"`
}

func (r sioReport) String() string {
	b, _ := json.Marshal(r)
	return string(b)
}

// startAgent starts the agent in dir (e2e/js); it is stopped when tb ends.
func startAgent(tb testing.TB, dir string) *sioAgent {
	tb.Helper()
	cmd := exec.Command("node", filepath.Join(dir, "parley-agent.mjs"))
	cmd.Dir = dir
	a := &sioAgent{tb: tb, changed: make(chan struct{})}
	var err error
	if a.stdin, err = cmd.StdinPipe(); err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = &lockedWriter{mu: &a.mu, w: &a.stderr}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start node: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 4<<20)
		for sc.Scan() {
			var r sioReport
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				tb.Errorf("agent printed a line that is not a report: %q", sc.Text())
				continue
			}
			a.mu.Lock()
			a.reports = append(a.reports, r)
			close(a.changed)
			a.changed = make(chan struct{})
			a.mu.Unlock()
		}
	}()
	tb.Cleanup(func() {
		a.checkContract()
		a.stdin.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		_ = cmd.Wait()
		if tb.Failed() {
			a.mu.Lock()
			tb.Logf("agent stderr:\n%s", a.stderr.String())
			a.mu.Unlock()
		}
	})
	return a
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (a *sioAgent) send(cmd map[string]any) {
	a.tb.Helper()
	b, _ := json.Marshal(cmd)
	if _, err := a.stdin.Write(append(b, '\n')); err != nil {
		a.tb.Fatalf("agent: %v", err)
	}
}

// connect opens socket name for token at url (transport "websocket" or
// "default") and waits until it is connected.
func (a *sioAgent) connect(name, url, token, transport string) {
	a.tb.Helper()
	mark := a.mark()
	a.mu.Lock()
	if a.ct == nil {
		ct, err := apitest.LoadContract(http.DefaultClient, url)
		if err != nil {
			a.mu.Unlock()
			a.tb.Fatalf("agent: load the documents: %v", err)
		}
		a.ct = ct
	}
	a.mu.Unlock()
	a.send(map[string]any{"op": "connect", "sock": name, "url": url, "token": token, "transport": transport})
	r := a.waitFor(mark, name+" connected", 10*time.Second, func(r sioReport) bool {
		return r.Sock == name && (r.Type == "connect" || r.Type == "connect_error")
	})
	if r.Type == "connect_error" {
		a.tb.Fatalf("%s: connect_error %s %s", name, r.Message, r.Body)
	}
}

// close closes socket name from the client side.
func (a *sioAgent) close(name string) {
	a.tb.Helper()
	mark := a.mark()
	a.send(map[string]any{"op": "close", "sock": name})
	a.waitFor(mark, name+" closed", 5*time.Second, func(r sioReport) bool { return r.Sock == name && r.Type == "closed" })
}

// emit sends a client event on socket name and returns its ack.
func (a *sioAgent) emit(name, event string, data any) sioReport {
	a.tb.Helper()
	a.mu.Lock()
	a.nextID++
	id := a.nextID
	if a.emitted == nil {
		a.emitted = map[int]string{}
	}
	a.emitted[id] = event
	a.mu.Unlock()
	mark := a.mark()
	a.send(map[string]any{"op": "emit", "sock": name, "id": id, "event": event, "data": data})
	r := a.waitFor(mark, fmt.Sprintf("ack of %s on %s", event, name), 10*time.Second, func(r sioReport) bool {
		return r.Type == "ack" && r.ID == id
	})
	if r.Error != "" {
		a.tb.Fatalf("%s on %s: %s", event, name, r.Error)
	}
	return r
}

// mark is a position in the reports; waits look from there on.
func (a *sioAgent) mark() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.reports)
}

// waitFor returns the first report from mark on that matches, or fails
// the test after timeout.
func (a *sioAgent) waitFor(mark int, what string, timeout time.Duration, match func(sioReport) bool) sioReport {
	a.tb.Helper()
	if r, ok := a.tryWait(mark, timeout, match); ok {
		return r
	}
	a.tb.Fatalf("timed out after %v waiting for %s; reports since:\n%s", timeout, what, a.dump(mark))
	return sioReport{}
}

// tryWait is waitFor without failing: false after timeout.
func (a *sioAgent) tryWait(mark int, timeout time.Duration, match func(sioReport) bool) (sioReport, bool) {
	deadline := time.After(timeout)
	for i := mark; ; {
		a.mu.Lock()
		for ; i < len(a.reports); i++ {
			if match(a.reports[i]) {
				r := a.reports[i]
				a.mu.Unlock()
				return r, true
			}
		}
		changed := a.changed
		a.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			return sioReport{}, false
		}
	}
}

// all returns the reports from mark on that match.
func (a *sioAgent) all(mark int, match func(sioReport) bool) []sioReport {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []sioReport
	for _, r := range a.reports[mark:] {
		if match(r) {
			out = append(out, r)
		}
	}
	return out
}

func (a *sioAgent) dump(mark int) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var b strings.Builder
	for _, r := range a.reports[mark:] {
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// event matches an event named name on socket sock whose data has every
// given top-level field equal to the given JSON value.
func event(sock, name string, fields map[string]any) func(sioReport) bool {
	return func(r sioReport) bool {
		if r.Sock != sock || r.Type != "event" || r.Event != name {
			return false
		}
		var data map[string]json.RawMessage
		if json.Unmarshal(r.Data, &data) != nil {
			return false
		}
		for k, want := range fields {
			w, _ := json.Marshal(want)
			if string(data[k]) != string(w) {
				return false
			}
		}
		return true
	}
}

// checkContract checks every event and ack the agent received against the
// AsyncAPI document of the server it used (issue #13's conformance test).
func (a *sioAgent) checkContract() {
	a.mu.Lock()
	ct, reports := a.ct, append([]sioReport(nil), a.reports...)
	a.mu.Unlock()
	if ct == nil || a.tb.Failed() {
		return
	}
	n := 0
	for _, r := range reports {
		var err error
		switch {
		case r.Type == "event":
			err = ct.CheckEvent(r.Event, r.Data)
		case r.Type == "ack" && r.Error == "":
			a.mu.Lock()
			r.Event = a.emitted[r.ID]
			a.mu.Unlock()
			err = ct.CheckAck(r.Event, r.Data)
		default:
			continue
		}
		n++
		if err != nil {
			a.tb.Errorf("agent %s %s: the documents do not describe it: %v", r.Type, r.Event, err)
		}
	}
	a.tb.Logf("agent: %d events and acks checked against the AsyncAPI document", n)
}
