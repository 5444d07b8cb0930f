package realtime_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/testenv"
)

// TestInteropSocketIOClient runs e2e/js/parley-realtime.mjs, the real npm
// socket.io-client, against a whole Parley server, with default options
// (polling, then the upgrade) and WebSocket only: handshake auth, events to
// every socket of a user, acks, binary arguments, reconnection after a
// network drop, and logout closing the socket for good.
func TestInteropSocketIOClient(t *testing.T) {
	dir := testenv.NodeDir(t)
	srv := apitest.MustStart(t, "sqlite", nil)
	a := apitest.Register(t, srv.URL(), "ann")
	b := apitest.Register(t, srv.URL(), "bob")
	c := apitest.Register(t, srv.URL(), "cat")
	b.Must(t, 201, "POST", "/api/contacts", map[string]string{"contactId": a.UserID})

	proxy := mustProxy(t, strings.TrimPrefix(srv.URL(), "http://"))
	ctrl := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.Path != "/drop" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, `{"dropped":%d}`, proxy.dropAll())
	}))
	t.Cleanup(ctrl.Close)

	type user struct {
		UserID   string `json:"userId"`
		Token    string `json:"token"`
		Username string `json:"username"`
		Password string `json:"password"`
	}
	info := func(u *apitest.Client) user {
		return user{UserID: u.UserID, Token: u.Token, Username: u.Username, Password: "password-" + u.Username}
	}
	usersJSON, _ := json.Marshal(map[string]user{"a": info(a), "b": info(b), "c": info(c)})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(dir, "parley-realtime.mjs"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"PARLEY_URL="+srv.URL(),
		"PROXY_URL=http://"+proxy.addr(),
		"CTRL_URL="+ctrl.URL,
		"PARLEY_USERS="+string(usersJSON),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()

	var report struct {
		OK   bool `json:"ok"`
		Runs []struct {
			Name   string   `json:"name"`
			OK     bool     `json:"ok"`
			Checks []string `json:"checks"`
			Error  string   `json:"error"`
		} `json:"runs"`
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &report); err != nil {
		t.Fatalf("parley-realtime.mjs: %v; no JSON report: %v\nstdout:\n%s\nstderr:\n%s", runErr, err, stdout.String(), stderr.String())
	}
	if len(report.Runs) != 2 {
		t.Fatalf("want 2 runs, got %d: %s", len(report.Runs), stdout.String())
	}
	for _, r := range report.Runs {
		t.Run(r.Name, func(t *testing.T) {
			t.Logf("passed: %s", strings.Join(r.Checks, "; "))
			if !r.OK {
				t.Errorf("%d checks passed; failed:\n%s", len(r.Checks), r.Error)
			}
		})
	}
	if runErr != nil && report.OK {
		t.Fatalf("node exited with %v but reported ok\nstderr:\n%s", runErr, stderr.String())
	}
	if !report.OK && !t.Failed() {
		t.Fatalf("report not ok: %s", stdout.String())
	}

	// Every socket the script opened is gone once it exits, the dropped
	// ones included. A long-polling socket whose close packet did not leave
	// before node exited (a loaded machine) is only known gone at its ping
	// timeout: the defaults are 25 s + 20 s.
	deadline := time.Now().Add(60 * time.Second)
	for srv.Hub().Connections() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := srv.Hub().Connections(); n != 0 {
		t.Fatalf("%d sockets still held after the client exited", n)
	}
}

// tcpProxy forwards TCP connections to a target and can cut them all at
// once, as a network failure would.
type tcpProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func mustProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.serve()
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		p.dropAll()
	})
	return p
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) serve() {
	for {
		down, err := p.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			down.Close()
			continue
		}
		p.track(down, up)
		go p.pipe(down, up)
		go p.pipe(up, down)
	}
}

func (p *tcpProxy) track(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
}

// pipe copies src to dst; when either side ends, both are closed.
func (p *tcpProxy) pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// dropAll closes every proxied connection, both sides, and returns how
// many connections it closed.
func (p *tcpProxy) dropAll() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.conns)
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
	return n
}
