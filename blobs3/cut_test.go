package blobs3_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/blobs3"
	"github.com/parley-chat/parley/internal/s3test"
)

// cutProxy relays TCP connections to an S3 server until one has carried
// limit bytes from the client: then it stops relaying that connection's
// request, ends it towards the server (which sees a body cut short) and
// no longer passes answers to the client.
type cutProxy struct {
	ln       net.Listener
	upstream string
	limit    int64
	once     sync.Once
	cut      chan struct{} // closed when a request was cut
	served   chan struct{} // closed when the server is done with it
}

func startCutProxy(t *testing.T, upstream string, limit int64) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, upstream: upstream, limit: limit, cut: make(chan struct{}), served: make(chan struct{})}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns { // idle keep-alive connections too
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); p.relay(c) }()
		}
	}()
	return p
}

func (p *cutProxy) relay(client net.Conn) {
	defer client.Close()
	up, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return
	}
	defer up.Close()
	var cut atomic.Bool
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		buf := make([]byte, 32<<10)
		for {
			n, err := up.Read(buf)
			if n > 0 && cut.Load() {

			}
			if err != nil {
				println("UPERR", err.Error())
			}
			if n > 0 && !cut.Load() {
				client.Write(buf[:n])
			}
			if err != nil {
				client.Close()
				return
			}
		}
	}()
	var sent int64
	buf := make([]byte, 32<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			if _, werr := up.Write(buf[:n]); werr != nil {
				return
			}
			sent += int64(n)
		}
		if err != nil {
			return
		}
		if sent >= p.limit {
			break
		}
	}
	cut.Store(true)
	up.(*net.TCPConn).CloseWrite()
	p.once.Do(func() {
		close(p.cut)
		<-answered // the server answered or hung up: its handler is done
		close(p.served)
	})
}

// TestCutRequestStoresNothing: a Put whose request is cut short (the client
// cancelled and its connection ended mid-body) stores no object. versitygw
// keeps what arrived of a streamed (aws-chunked) PUT body, which minio-go's
// PutObject sends for a known size and a reader it cannot seek; with the
// size unknown it buffers each part and completes the upload only at the
// end. (This test fails if Put passes the known size on to PutObject.)
func TestCutRequestStoresNothing(t *testing.T) {
	srv := s3test.Start(t)
	spec := srv.URL(t, "parley")
	direct, err := blobs3.ParseURL(spec)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startCutProxy(t, srv.Endpoint, 256<<10)
	viaProxy := direct
	viaProxy.Endpoint = proxy.ln.Addr().String()
	ctx := context.Background()
	s, err := blobs3.Open(ctx, viaProxy)
	if err != nil {
		t.Fatal(err)
	}
	check, err := blobs3.Open(ctx, direct)
	if err != nil {
		t.Fatal(err)
	}

	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	// A reader that cannot seek, as a request body, of a known size.
	body := io.MultiReader(bytes.NewReader(bytes.Repeat([]byte("c"), 1<<20)))
	go func() { errc <- s.Put(cctx, "media_cut", body, 1<<20) }()
	<-proxy.cut
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("a put whose request was cut succeeded")
	}
	<-proxy.served
	if r, total, err := check.Open(ctx, "media_cut", 0, -1); parley.ErrorCode(err) != parley.ENOTFOUND {
		if err == nil {
			r.Close()
			t.Fatalf("the server kept %d bytes of the cut request", total)
		}
		t.Fatalf("after a cut put: %v", err)
	}
}
