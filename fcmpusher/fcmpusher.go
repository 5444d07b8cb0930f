// Package fcmpusher delivers Parley's pushes to Android (and other
// Firebase) devices through the FCM HTTP v1 API, authenticated with a
// Google service account: a JWT signed with the account's key is traded
// at its token_uri for an OAuth2 access token (RFC 7523), kept until
// shortly before it expires.
package fcmpusher

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parley-chat/parley"
)

// Scope is the OAuth2 scope FCM sends need.
const Scope = "https://www.googleapis.com/auth/firebase.messaging"

// Config says how to reach FCM.
type Config struct {
	Credentials []byte // the service account's JSON key file
	// Endpoint is the FCM API's base URL; default https://fcm.googleapis.com.
	Endpoint string
	Client   *http.Client // default: one with a 15s timeout
}

// Sender implements parley.PushSender for FCM.
type Sender struct {
	email, project, tokenURI, endpoint string
	key                                *rsa.PrivateKey
	client                             *http.Client

	mu      sync.Mutex // guards token and expires
	token   string
	expires time.Time
}

// New reads the service account and returns a Sender.
func New(cfg Config) (*Sender, error) {
	var sa struct {
		Type        string `json:"type"`
		ProjectID   string `json:"project_id"`
		PrivateKey  string `json:"private_key"`
		ClientEmail string `json:"client_email"`
		TokenURI    string `json:"token_uri"`
	}
	if err := json.Unmarshal(cfg.Credentials, &sa); err != nil {
		return nil, errors.New("fcm: the credentials are not a service account JSON key")
	}
	if sa.Type != "service_account" || sa.ProjectID == "" || sa.ClientEmail == "" || sa.TokenURI == "" {
		return nil, errors.New("fcm: the credentials need type service_account, project_id, client_email and token_uri")
	}
	block, _ := pem.Decode([]byte(sa.PrivateKey))
	if block == nil {
		return nil, errors.New("fcm: private_key is not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("fcm: private_key: %w", err)
	}
	key, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("fcm: private_key is not an RSA key")
	}
	s := &Sender{email: sa.ClientEmail, project: sa.ProjectID, tokenURI: sa.TokenURI, key: key,
		endpoint: strings.TrimSuffix(cfg.Endpoint, "/"), client: cfg.Client}
	if s.endpoint == "" {
		s.endpoint = "https://fcm.googleapis.com"
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: 15 * time.Second}
	}
	return s, nil
}

// accessToken returns a valid OAuth2 access token, fetching a new one
// when the last is within a minute of expiring.
func (s *Sender) accessToken(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token != "" && time.Until(s.expires) > time.Minute {
		return s.token, nil
	}
	now := time.Now()
	enc := base64.RawURLEncoding
	hdr, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT"})
	claims, _ := json.Marshal(map[string]any{"iss": s.email, "scope": Scope, "aud": s.tokenURI,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	signing := enc.EncodeToString(hdr) + "." + enc.EncodeToString(claims)
	h := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, h[:])
	if err != nil {
		return "", err
	}
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {signing + "." + enc.EncodeToString(sig)}}
	req, err := http.NewRequestWithContext(ctx, "POST", s.tokenURI, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.client.Do(req)
	if err != nil {
		return "", stripURL("token request", err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token request: status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&tok); err != nil || tok.AccessToken == "" {
		return "", errors.New("token request: no access_token in the answer")
	}
	s.token, s.expires = tok.AccessToken, now.Add(time.Duration(tok.ExpiresIn)*time.Second)
	return s.token, nil
}

// Send implements parley.PushSender. FCM answering 404 or UNREGISTERED is
// parley.ErrPushGone. Errors never include the device token.
func (s *Sender) Send(ctx context.Context, p *parley.Push) error {
	access, err := s.accessToken(ctx)
	if err != nil {
		return err
	}
	data, err := dataFields(p.Payload())
	if err != nil {
		return err
	}
	body, err := json.Marshal(map[string]any{"message": map[string]any{
		"token":   p.Device.Token,
		"data":    data,
		"android": map[string]any{"collapse_key": p.Topic, "priority": "high", "ttl": "86400s"},
	}})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", s.endpoint+"/v1/projects/"+url.PathEscape(s.project)+"/messages:send", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+access)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return stripURL("request", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	}
	var answer struct {
		Error struct {
			Status  string `json:"status"`
			Details []struct {
				ErrorCode string `json:"errorCode"`
			} `json:"details"`
		} `json:"error"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&answer)
	code := answer.Error.Status
	for _, d := range answer.Error.Details {
		if d.ErrorCode != "" {
			code = d.ErrorCode
		}
	}
	switch {
	case resp.StatusCode == http.StatusNotFound || code == "UNREGISTERED":
		return fmt.Errorf("status %d %s: %w", resp.StatusCode, code, parley.ErrPushGone)
	case resp.StatusCode == http.StatusUnauthorized:
		s.mu.Lock()
		s.token = "" // fetch a new one for the retry
		s.mu.Unlock()
	}
	return fmt.Errorf("status %d %s", resp.StatusCode, code)
}

// stripURL drops the URL from a client error, so that logs show the
// failure and nothing of the request.
func stripURL(what string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s failed: %w", what, ue.Err)
	}
	return fmt.Errorf("%s failed: %w", what, err)
}

// dataFields returns the fields of pl that are set, as FCM data (strings).
func dataFields(pl parley.PushPayload) (map[string]string, error) {
	raw, err := json.Marshal(pl)
	if err != nil {
		return nil, err
	}
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(fields))
	for k, v := range fields {
		switch v := v.(type) {
		case string:
			out[k] = v
		case float64:
			out[k] = strconv.FormatInt(int64(v), 10)
		}
	}
	return out, nil
}
