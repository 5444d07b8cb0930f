package service

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"runtime"
	"strings"

	"golang.org/x/crypto/argon2"

	"github.com/parley-chat/parley"
)

// PasswordCost holds argon2id parameters. Hashes record their own
// parameters, so changing the cost keeps old hashes verifiable.
type PasswordCost struct {
	Time    uint32 // passes
	Memory  uint32 // KiB
	Threads uint8
}

// DefaultPasswordCost follows the OWASP argon2id recommendation
// (19 MiB, 2 passes, 1 lane).
var DefaultPasswordCost = PasswordCost{Time: 2, Memory: 19 * 1024, Threads: 1}

// hasher hashes and verifies passwords with at most n hashes in flight: each
// takes Memory KiB, so the bound caps what a login flood can allocate.
type hasher struct {
	cost  PasswordCost
	slots chan struct{}
	dummy string // verified against for unknown users, to equalise timing
}

func newHasher(cost PasswordCost, n int) *hasher {
	if cost == (PasswordCost{}) {
		cost = DefaultPasswordCost
	}
	if n <= 0 {
		n = runtime.NumCPU()
	}
	h := &hasher{cost: cost, slots: make(chan struct{}, n)}
	h.dummy = h.encode([]byte("parley-dummy-password"))
	return h
}

func (h *hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return parley.Errorf(parley.EUNAVAILABLE, "server busy, try again")
	}
}

func (h *hasher) release() { <-h.slots }

func (h *hasher) encode(password []byte) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	key := argon2.IDKey(password, salt, h.cost.Time, h.cost.Memory, h.cost.Threads, 32)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, h.cost.Memory, h.cost.Time, h.cost.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// Hash returns the PHC-format argon2id hash of password.
func (h *hasher) Hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	return h.encode([]byte(password)), nil
}

// Verify reports whether password matches encoded. An empty encoded hash is
// checked against a dummy so unknown users cost as much as known ones.
func (h *hasher) Verify(ctx context.Context, encoded, password string) (bool, error) {
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	if encoded == "" {
		verify(h.dummy, password)
		return false, nil
	}
	return verify(encoded, password), nil
}

func verify(encoded, password string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	var c PasswordCost
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &c.Memory, &c.Time, &c.Threads); err != nil {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 || c.Memory > 1<<20 || c.Time > 16 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, c.Time, c.Memory, c.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}
