// Command socketio-testserver is the server the official Socket.IO protocol
// test-suite (socketio/socket.io-protocol, test-suite/) runs against:
// pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1000000, CORS "*",
// namespaces "/" and "/custom"; it emits "auth" with the handshake auth,
// echoes "message" as "message-back" and acknowledges "message-with-ack".
//
// It also measures idle memory per connection: run the server with
// --memstats (and a long --ping-interval), and a second copy with
// --clients N --url http://host:port to open N idle Socket.IO WebSockets.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lxzan/gws"
	"github.com/parley-chat/parley/socketio/socketiotest"
)

func main() {
	addr := flag.String("addr", "localhost:3000", "listen address")
	pingInterval := flag.Duration("ping-interval", 0, "override the test-suite pingInterval (300ms)")
	authDelay := flag.Duration("auth-delay", 50*time.Millisecond, "write the \"auth\" emit this long after the CONNECT answer (the official suite's client misses a frame that shares a TCP read with the one before it); 0 writes it at once")
	memstats := flag.Bool("memstats", false, "log heap, stack, RSS and sessions every 2s")
	clients := flag.Int("clients", 0, "client mode: open this many idle Socket.IO WebSockets to --url")
	target := flag.String("url", "http://127.0.0.1:3000", "client mode: server base URL")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *clients > 0 {
		runClients(ctx, *target, *clients)
		return
	}

	opts := socketiotest.Options()
	if *pingInterval > 0 {
		opts.EngineIO.PingInterval = *pingInterval
		opts.EngineIO.PingTimeout = *pingInterval
	}
	sio := socketiotest.NewServer(opts, *authDelay)
	srv := &http.Server{Addr: *addr, Handler: socketiotest.Handler(sio), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
		sio.Close()
	}()
	if *memstats {
		go logMemory(ctx, func() int { return sio.Engine().Len() })
	}
	log.Printf("socketio-testserver listening on %s", *addr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// logMemory prints the figures used for "memory per idle connection":
// heap in use + goroutine stacks, and RSS, with the number of sessions.
func logMemory(ctx context.Context, sessions func() int) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		log.Printf("sessions=%d goroutines=%d heap_inuse=%d stack_inuse=%d heap+stack=%d rss=%d",
			sessions(), runtime.NumGoroutine(), m.HeapInuse, m.StackInuse, m.HeapInuse+m.StackInuse, rssBytes())
	}
}

func rssBytes() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb uint64
			_, _ = fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return kb * 1024
		}
	}
	return 0
}

// idleClient joins "/" and then only answers pings.
type idleClient struct {
	gws.BuiltinEventHandler
	joined chan struct{}
	once   sync.Once
}

func (c *idleClient) OnMessage(s *gws.Conn, m *gws.Message) {
	defer m.Close()
	switch b := m.Bytes(); {
	case len(b) > 0 && b[0] == '0':
		_ = s.WriteString("40")
	case string(b) == "2":
		_ = s.WriteString("3")
	case strings.HasPrefix(string(b), "40{"):
		c.once.Do(func() { close(c.joined) })
	}
}

// runClients opens n connections, spreading them over 127.0.0.x source
// addresses so a single machine does not run out of ephemeral ports.
func runClients(ctx context.Context, base string, n int) {
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/socket.io/?EIO=4&transport=websocket"
	var ok atomic.Int64
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := 0; i < n && ctx.Err() == nil; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			c := &idleClient{joined: make(chan struct{})}
			src := &net.TCPAddr{IP: net.IPv4(127, 0, byte(1+i/20000), byte(1+i%250))}
			conn, _, err := gws.NewClient(c, &gws.ClientOption{
				Addr:           wsURL,
				NewDialer:      func() (gws.Dialer, error) { return &net.Dialer{LocalAddr: src, Timeout: 10 * time.Second}, nil },
				ReadBufferSize: 512,
			})
			if err != nil {
				log.Printf("client %d: %v", i, err)
				return
			}
			go conn.ReadLoop()
			select {
			case <-c.joined:
				ok.Add(1)
			case <-time.After(10 * time.Second):
				log.Printf("client %d: no CONNECT answer", i)
			}
		}(i)
	}
	wg.Wait()
	log.Printf("%d/%d clients connected and idle; Ctrl-C to stop", ok.Load(), n)
	<-ctx.Done()
}
