// Package webpusher delivers Parley's pushes to browsers through Web Push:
// VAPID (RFC 8292) identifies the server, the payload is encrypted for the
// subscription with aes128gcm (RFC 8291), by SherClockHolmes/webpush-go.
package webpusher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/SherClockHolmes/webpush-go"
	"github.com/parley-chat/parley"
)

// KeyName is the name under which the VAPID key pair is kept in the
// store that every node shares (parley.NotifyStore.ServerKey).
const KeyName = "vapid"

// GenerateKeys returns a new VAPID key pair in the form KeyName stores
// ("private public", both base64url); see SplitKeys.
func GenerateKeys() (string, error) {
	priv, pub, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		return "", err
	}
	return priv + " " + pub, nil
}

// SplitKeys splits a stored pair into its private and public keys.
func SplitKeys(pair string) (private, public string, err error) {
	private, public, ok := strings.Cut(pair, " ")
	if !ok || private == "" || public == "" {
		return "", "", errors.New("webpusher: malformed stored VAPID key pair")
	}
	return private, public, nil
}

// Sender implements parley.PushSender for Web Push.
type Sender struct {
	PrivateKey, PublicKey string // VAPID, base64url
	// Subscriber is the contact the push services see in the VAPID JWT: a
	// mailto: address or an https URL.
	Subscriber string
	// Client sends the pushes; default: one with a 15s timeout that
	// follows no redirect and, unless AllowInternal, refuses to connect
	// to an internal address (see NewClient).
	Client        *http.Client
	AllowInternal bool          // connect to loopback and private addresses too (tests)
	TTL           time.Duration // how long a push service keeps an undelivered push; default 24h

	once   sync.Once
	client *http.Client
}

// ErrInternalAddr is what the client refuses to connect to: an endpoint
// that (now) resolves to an internal address (parley.IsInternalAddr).
var ErrInternalAddr = errors.New("the endpoint resolves to an internal address")

// NewClient returns the HTTP client pushes go out with: a 15 s timeout, no
// proxy, no redirects and, unless allowInternal, a dialer that checks the
// address it is about to connect to (after DNS resolution, so a name that
// resolves to a public address at registration and to an internal one
// later is still refused) and fails with ErrInternalAddr.
func NewClient(allowInternal bool) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if !allowInternal {
		dialer.Control = func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || parley.IsInternalAddr(ap.Addr()) {
				return ErrInternalAddr
			}
			return nil
		}
	}
	return &http.Client{
		Timeout: 15 * time.Second,
		Transport: &http.Transport{
			DialContext:         dialer.DialContext,
			ForceAttemptHTTP2:   true,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Send implements parley.PushSender. A 404 or 410 answer is
// parley.ErrPushGone. Errors never include the endpoint (it identifies
// the subscription) nor the payload.
func (s *Sender) Send(ctx context.Context, p *parley.Push) error {
	var sub webpush.Subscription
	if err := json.Unmarshal([]byte(p.Device.Subscription), &sub); err != nil {
		return fmt.Errorf("stored subscription unreadable: %w", parley.ErrPushGone)
	}
	payload, err := json.Marshal(p.Payload())
	if err != nil {
		return err
	}
	client := s.Client
	if client == nil {
		s.once.Do(func() { s.client = NewClient(s.AllowInternal) })
		client = s.client
	}
	ttl := s.TTL
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	resp, err := webpush.SendNotificationWithContext(ctx, payload, &sub, &webpush.Options{
		HTTPClient:      client,
		Subscriber:      s.Subscriber,
		TTL:             int(ttl / time.Second),
		Topic:           p.Topic, // a newer push of the topic replaces an undelivered one
		Urgency:         webpush.UrgencyHigh,
		VAPIDPublicKey:  s.PublicKey,
		VAPIDPrivateKey: s.PrivateKey,
	})
	if err != nil {
		if errors.Is(err, ErrInternalAddr) {
			// Registered while it resolved to a public address; a
			// subscription pointing inside is not one to keep.
			return fmt.Errorf("%w: %w", ErrInternalAddr, parley.ErrPushGone)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			return fmt.Errorf("request failed: %w", ue.Err)
		}
		return fmt.Errorf("request failed: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return fmt.Errorf("status %d: %w", resp.StatusCode, parley.ErrPushGone)
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	default:
		return fmt.Errorf("status %d", resp.StatusCode)
	}
}
