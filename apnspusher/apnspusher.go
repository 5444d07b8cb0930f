// Package apnspusher delivers Parley's pushes to Apple devices through
// APNs over HTTP/2 with token (.p8 key) authentication, by
// sideshow/apns2.
package apnspusher

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/payload"
	"github.com/sideshow/apns2/token"
	"golang.org/x/net/http2"

	"github.com/parley-chat/parley"
)

// Config says how to reach APNs.
type Config struct {
	Key    []byte // the .p8 signing key (PEM) from Apple's developer account
	KeyID  string // its key id
	TeamID string
	Topic  string // the app's bundle id
	// Host is the APNs endpoint; default https://api.push.apple.com
	// (use https://api.sandbox.push.apple.com for development builds).
	Host    string
	RootCAs *x509.CertPool // nil: the system's (tests pass a loopback stand-in's)
}

// Sender implements parley.PushSender for APNs.
type Sender struct {
	client *apns2.Client
	topic  string
}

// New checks cfg and returns a Sender.
func New(cfg Config) (*Sender, error) {
	if cfg.KeyID == "" || cfg.TeamID == "" || cfg.Topic == "" {
		return nil, errors.New("apns: key id, team id and topic (bundle id) are required")
	}
	key, err := token.AuthKeyFromBytes(cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("apns: signing key: %w", err)
	}
	c := apns2.NewTokenClient(&token.Token{AuthKey: key, KeyID: cfg.KeyID, TeamID: cfg.TeamID})
	c.Host = apns2.HostProduction
	if cfg.Host != "" {
		c.Host = cfg.Host
	}
	c.HTTPClient = &http.Client{Timeout: 15 * time.Second, Transport: &http2.Transport{
		TLSClientConfig: &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}}}
	return &Sender{client: c, topic: cfg.Topic}, nil
}

// Send implements parley.PushSender. APNs answering 410, or 400
// BadDeviceToken, is parley.ErrPushGone. Errors never include the token.
func (s *Sender) Send(ctx context.Context, p *parley.Push) error {
	pl := p.Payload()
	pay := payload.NewPayload().AlertBody(p.Alert())
	if pl.ConversationID != "" {
		pay = pay.ThreadID(pl.ConversationID)
	}
	fields, err := payloadFields(pl)
	if err != nil {
		return err
	}
	for k, v := range fields {
		pay = pay.Custom(k, v)
	}
	n := &apns2.Notification{
		DeviceToken: p.Device.Token,
		Topic:       s.topic,
		CollapseID:  p.Topic, // a newer push of the topic replaces one not yet shown
		PushType:    apns2.PushTypeAlert,
		Priority:    apns2.PriorityHigh,
		Expiration:  time.Now().Add(24 * time.Hour),
		Payload:     pay,
	}
	resp, err := s.client.PushWithContext(ctx, n)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return fmt.Errorf("request failed: %w", ue.Err)
		}
		return fmt.Errorf("request failed: %w", err)
	}
	switch {
	case resp.Sent():
		return nil
	case resp.StatusCode == http.StatusGone || resp.Reason == apns2.ReasonUnregistered || resp.Reason == apns2.ReasonBadDeviceToken:
		return fmt.Errorf("status %d %s: %w", resp.StatusCode, resp.Reason, parley.ErrPushGone)
	default:
		return fmt.Errorf("status %d %s", resp.StatusCode, resp.Reason)
	}
}

// payloadFields returns the fields of pl that are set, beside aps.
func payloadFields(pl parley.PushPayload) (map[string]any, error) {
	raw, err := json.Marshal(pl)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	return out, json.Unmarshal(raw, &out)
}
