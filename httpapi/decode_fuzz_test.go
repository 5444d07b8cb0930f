package httpapi

import (
	"testing"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/service"
)

// FuzzDecodeBody feeds arbitrary bodies to the JSON decoder every route
// uses: it must never panic, and every failure is an invalid_argument.
func FuzzDecodeBody(f *testing.F) {
	for _, seed := range []string{`{}`, `{"recipientId":"usr_1","encryptedContent":"x","type":"text"}`, `{"recipientId":5}`,
		`[1,2]`, `{"a":`, `{"scheduledAt":1700000000000}`, `{"scheduledAt":{"x":1}}`, `null`, `"str"`, `{} {}`, "\xff"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var in service.ScheduleInput
		if err := decodeBytes(data, &in); err != nil && parley.ErrorCode(err) != parley.EINVALID {
			t.Fatalf("code %s for %q", parley.ErrorCode(err), data)
		}
	})
}
