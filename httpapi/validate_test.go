package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/parley-chat/parley"
)

func TestCheckBody(t *testing.T) {
	tests := []struct {
		body string
		ok   bool
	}{
		{`{"encryptedContent":"hello"}`, true},
		{`{"a":"\u00e9\n\t\"\\"}`, true},
		{`{"a":"\ud83d\ude00"}`, true},      // a valid pair
		{`{"a":"\uD83D\uDE00"}`, true},      // upper-case hex
		{`{"a":"\\u0000"}`, true},           // an escaped backslash, then text
		{`{"a":"\\\\ud800"}`, true},         // two escaped backslashes
		{`{"a":"é😀"}`, true},                // raw UTF-8
		{`{"a":"\u0000"}`, false},           // escaped NUL
		{"{\"a\":\"x\x00y\"}", false},       // raw NUL
		{"{\"a\":\"ab\xffcd\"}", false},     // invalid UTF-8
		{"{\"a\":\"\xed\xa0\x80\"}", false}, // a surrogate encoded in UTF-8
		{`{"a":"\ud800"}`, false},           // lone high surrogate at the end
		{`{"a":"\ud800x"}`, false},          // lone high surrogate then text
		{`{"a":"\ud800\u0041"}`, false},     // high surrogate then a non-surrogate
		{`{"a":"\ud800\ud800"}`, false},     // two high surrogates
		{`{"a":"\udc00"}`, false},           // lone low surrogate
		{`{"a":"\ude00\ud83d"}`, false},     // pair in the wrong order
		{`{"\u0000":"key"}`, false},         // in a key
		{`{"a":["ok","\u0000"]}`, false},    // nested
		{`{"a":"\\\u0000"}`, false},         // escaped backslash then NUL
	}
	for _, tt := range tests {
		err := parley.CheckJSONText([]byte(tt.body))
		if (err == nil) != tt.ok {
			t.Errorf("CheckJSONText(%q) = %v, want ok=%v", tt.body, err, tt.ok)
		}
		if err != nil && parley.ErrorCode(err) != parley.EINVALID {
			t.Errorf("CheckJSONText(%q): code %s, want %s", tt.body, parley.ErrorCode(err), parley.EINVALID)
		}
	}
}

func TestCheckParams(t *testing.T) {
	for target, ok := range map[string]bool{
		"/api/users/usr_1":              true,
		"/api/users/search?q=caf%C3%A9": true,
		"/api/users/%00":                false,
		"/api/status/a%00b":             false,
		"/api/users/%FF":                false,
		"/api/users/search?q=%00":       false,
		"/api/users/search?q=%C3":       false,
		"/api/chats?x%00=1":             false,
	} {
		err := checkParams(httptest.NewRequest("GET", target, nil))
		if (err == nil) != ok {
			t.Errorf("checkParams(%s) = %v, want ok=%v", target, err, ok)
		}
		if err != nil && parley.ErrorCode(err) != parley.EINVALID {
			t.Errorf("checkParams(%s): code %s", target, parley.ErrorCode(err))
		}
	}
}

// FuzzCheckBody checks the scanner against the decoder: whatever body it
// accepts decodes (when it is JSON at all) to strings without NUL and
// without a U+FFFD the client did not send, so it is stored byte for byte.
// Seeds are in testdata/fuzz/FuzzCheckBody as well as below.
func FuzzCheckBody(f *testing.F) {
	for _, seed := range []string{`{"a":"b"}`, `{"a":"\u0000"}`, `{"a":"\ud800"}`, `{"a":"\udc00"}`, `{"a":"\ud83d\ude00"}`,
		`{"a":"\\u0000"}`, "{\"a\":\"\xff\"}", "{\"a\":\"\x00\"}", `{"a":"\ufffd"}`, `{"a":["\u0041",{"b":"\ud800\u0041"}]}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := parley.CheckJSONText(data)
		if err != nil {
			if parley.ErrorCode(err) != parley.EINVALID {
				t.Fatalf("code %s for %q", parley.ErrorCode(err), data)
			}
			return
		}
		var v any
		if json.Unmarshal(data, &v) != nil {
			return
		}
		sentFFFD := bytes.Contains(data, []byte("\uFFFD")) || bytes.Contains(bytes.ToLower(data), []byte(`\ufffd`))
		walkStrings(v, func(s string) {
			if strings.IndexByte(s, 0) >= 0 {
				t.Fatalf("accepted %q, which decodes to a NUL", data)
			}
			if !utf8.ValidString(s) {
				t.Fatalf("accepted %q, which decodes to invalid UTF-8", data)
			}
			if strings.ContainsRune(s, utf8.RuneError) && !sentFFFD {
				t.Fatalf("accepted %q, which the decoder changes to U+FFFD", data)
			}
		})
	})
}

func walkStrings(v any, fn func(string)) {
	switch x := v.(type) {
	case string:
		fn(x)
	case []any:
		for _, e := range x {
			walkStrings(e, fn)
		}
	case map[string]any:
		for k, e := range x {
			fn(k)
			walkStrings(e, fn)
		}
	}
}
