package server_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/testdb"
)

// TestConcurrentDeviceRegistration covers issue #12 defect 7 end to end:
// concurrent logins with one new deviceId and publicKey, and concurrent
// POST /api/users/keys with one new deviceId, all succeed on every backend
// (PostgreSQL answered 500 devices_pkey) and leave one device.
func TestConcurrentDeviceRegistration(t *testing.T) {
	t.Parallel()
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			srv := apitest.MustStart(t, backend, nil)
			ann := apitest.Register(t, srv.URL(), "ann")
			run := func(n int, do func(i int) *apitest.Response) []string {
				var wg sync.WaitGroup
				var mu sync.Mutex
				var bad []string
				for i := 0; i < n; i++ {
					wg.Add(1)
					go func(i int) {
						defer wg.Done()
						if r := do(i); r.Status != 200 && r.Status != 201 {
							mu.Lock()
							bad = append(bad, fmt.Sprintf("%d %s %s", r.Status, r.Error.Code, r.Error.Message))
							mu.Unlock()
						}
					}(i)
				}
				wg.Wait()
				return bad
			}
			const rounds = 4
			for round := 0; round < rounds; round++ {
				dev := fmt.Sprintf("login-%d", round)
				if bad := run(6, func(int) *apitest.Response {
					return apitest.NewClient(srv.URL()).Do(t, "POST", "/api/auth/login", map[string]string{
						"username": "ann", "password": "password-ann", "deviceId": dev, "publicKey": "pk-" + dev})
				}); len(bad) > 0 {
					t.Errorf("round %d: %d of 6 logins failed, first: %s", round, len(bad), bad[0])
				}
				dev = fmt.Sprintf("keys-%d", round)
				if bad := run(30, func(i int) *apitest.Response {
					return ann.Do(t, "POST", "/api/users/keys", map[string]string{"deviceId": dev, "publicKey": fmt.Sprintf("pk-%d", i)})
				}); len(bad) > 0 {
					t.Errorf("round %d: %d of 30 key uploads failed, first: %s", round, len(bad), bad[0])
				}
			}
			var keys []struct{ DeviceID string }
			ann.Must(t, 200, "GET", "/api/users/"+ann.UserID+"/keys", nil).Decode(t, &keys)
			if len(keys) != 1+2*rounds {
				t.Errorf("%d device keys, want %d: %+v", len(keys), 1+2*rounds, keys)
			}
		})
	}
}
