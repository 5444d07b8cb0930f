package httpapi

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

// TestForwardedClientAddr checks which address rate limits count: the
// X-Forwarded-For entry added by the nearest untrusted hop, never one a
// client could have made up.
func TestForwardedClientAddr(t *testing.T) {
	lb := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for _, tc := range []struct {
		name    string
		peer    string
		xff     []string
		trusted []netip.Prefix
		want    string
	}{
		{"NoProxiesConfigured", "10.0.0.5:4000", []string{"203.0.113.7"}, nil, "10.0.0.5"},
		{"UntrustedPeerIgnoresHeader", "198.51.100.1:4000", []string{"203.0.113.7"}, lb, "198.51.100.1"},
		{"OK", "10.0.0.5:4000", []string{"203.0.113.7"}, lb, "203.0.113.7"},
		{"ClientPrefixIgnored", "10.0.0.5:4000", []string{"1.2.3.4, 203.0.113.7"}, lb, "203.0.113.7"},
		{"ChainOfProxies", "10.0.0.5:4000", []string{"203.0.113.7, 10.1.1.1", "10.2.2.2"}, lb, "203.0.113.7"},
		{"IPv6Peer", "[::1]:4000", []string{"2001:db8::9"}, lb, "2001:db8::9"},
		{"NoHeader", "10.0.0.5:4000", nil, lb, "10.0.0.5"},
		{"Garbage", "10.0.0.5:4000", []string{"203.0.113.7, not-an-ip"}, lb, "10.0.0.5"},
		{"AllTrusted", "10.0.0.5:4000", []string{"10.9.9.9"}, lb, "10.0.0.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/api/auth/login", nil)
			r.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := forwardedClientAddr(r, tc.trusted); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}
