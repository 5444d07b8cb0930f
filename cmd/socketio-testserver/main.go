// Command socketio-testserver is the server the official Socket.IO protocol
// test-suite (socketio/socket.io-protocol, test-suite/) runs against:
// pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1000000, CORS "*",
// namespaces "/" and "/custom"; it emits "auth" with the handshake auth,
// echoes "message" as "message-back" and acknowledges "message-with-ack".
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/parley-chat/parley/socketio/socketiotest"
)

func main() {
	addr := flag.String("addr", "localhost:3000", "listen address")
	flag.Parse()
	srv := &http.Server{Addr: *addr, Handler: socketiotest.Handler(socketiotest.NewServer(socketiotest.Options())), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Printf("socketio-testserver listening on %s", *addr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
