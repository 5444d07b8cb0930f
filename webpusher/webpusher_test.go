package webpusher_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"

	"crypto/ecdh"
	"crypto/rand"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/webpusher"
)

// TestDialBlocksInternal checks the send-time half of the SSRF blocklist:
// without AllowInternal the client refuses to connect to a loopback
// endpoint (as a name that now resolves inside would be), the push
// service gets nothing, and the device is reported gone.
func TestDialBlocksInternal(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(srv.Close)
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)
	sub, _ := json.Marshal(map[string]any{"endpoint": srv.URL + "/push", "keys": map[string]string{
		"p256dh": base64.RawURLEncoding.EncodeToString(key.PublicKey().Bytes()), "auth": base64.RawURLEncoding.EncodeToString(auth)}})
	pair, err := webpusher.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	private, public, _ := webpusher.SplitKeys(pair)
	push := &parley.Push{Device: parley.PushDevice{Subscription: string(sub)}, Kind: parley.PushMessage, Topic: "m",
		NotificationID: "ntf_1", ConversationID: "conv_1", Count: 1}

	blocked := &webpusher.Sender{PrivateKey: private, PublicKey: public, Subscriber: "mailto:a@example.test"}
	err = blocked.Send(context.Background(), push)
	if !errors.Is(err, webpusher.ErrInternalAddr) || !errors.Is(err, parley.ErrPushGone) || hits.Load() != 0 {
		t.Fatalf("blocked send: %v, %d requests", err, hits.Load())
	}
	allowed := &webpusher.Sender{PrivateKey: private, PublicKey: public, Subscriber: "mailto:a@example.test", AllowInternal: true}
	if err := allowed.Send(context.Background(), push); err != nil || hits.Load() != 1 {
		t.Fatalf("allowed send: %v, %d requests", err, hits.Load())
	}
}

func TestIsInternalAddrTable(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1": true, "10.0.0.1": true, "192.168.1.1": true, "172.16.0.1": true,
		"169.254.169.254": true, "100.64.0.1": true, "0.0.0.0": true, "::1": true, "fe80::1": true, "fc00::1": true,
		"::ffff:127.0.0.1": true, "64:ff9b::a00:1": true, "2002:7f00:1::": true, "8.8.8.8": false, "2606:4700::1111": false} {
		if got := parley.IsInternalAddr(mustAddr(t, addr)); got != want {
			t.Errorf("IsInternalAddr(%s) = %v, want %v", addr, got, want)
		}
	}
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
