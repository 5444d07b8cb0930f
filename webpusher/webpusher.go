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
	"net/http"
	"net/url"
	"strings"
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
	Client     *http.Client  // default: one with a 15s timeout
	TTL        time.Duration // how long a push service keeps an undelivered push; default 24h
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
		client = &http.Client{Timeout: 15 * time.Second}
	}
	ttl := s.TTL
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	resp, err := webpush.SendNotificationWithContext(ctx, payload, &sub, &webpush.Options{
		HTTPClient:      client,
		Subscriber:      s.Subscriber,
		TTL:             int(ttl / time.Second),
		Topic:           "parley", // a newer push replaces an undelivered one
		Urgency:         webpush.UrgencyHigh,
		VAPIDPublicKey:  s.PublicKey,
		VAPIDPrivateKey: s.PrivateKey,
	})
	if err != nil {
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
