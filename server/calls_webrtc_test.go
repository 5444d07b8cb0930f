package server_test

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/server"
)

// iceConfig fetches c's ICE servers and makes a relay-only WebRTC
// configuration of them; password, when set, replaces the credential.
func iceConfig(t *testing.T, c *apitest.Client, password string) webrtc.Configuration {
	t.Helper()
	var ice []struct {
		URLs                 []string
		Username, Credential string
	}
	c.Must(t, 200, "GET", "/api/calls/ice-servers", nil).Decode(t, &ice)
	cfg := webrtc.Configuration{ICETransportPolicy: webrtc.ICETransportPolicyRelay}
	for _, s := range ice {
		if s.Username == "" {
			continue // STUN: no use with relay candidates only
		}
		cred := s.Credential
		if password != "" {
			cred = password
		}
		cfg.ICEServers = append(cfg.ICEServers, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: cred})
	}
	if len(cfg.ICEServers) == 0 {
		t.Fatalf("no TURN server among %+v", ice)
	}
	return cfg
}

// newPeer makes a peer connection that fails the test on error and is
// closed at its end.
func newPeer(t *testing.T, cfg webrtc.Configuration) *webrtc.PeerConnection {
	t.Helper()
	se := webrtc.SettingEngine{}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// describe sets desc as pc's local description, waits until every
// candidate is gathered and returns the description with them.
func describe(t *testing.T, pc *webrtc.PeerConnection, desc webrtc.SessionDescription) webrtc.SessionDescription {
	t.Helper()
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(desc); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-time.After(20 * time.Second):
		t.Fatal("ICE gathering did not complete")
	}
	return *pc.LocalDescription()
}

// connected returns a channel closed when pc's connection is connected.
func connected(pc *webrtc.PeerConnection) <-chan struct{} {
	ch := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(ch) })
		}
	})
	return ch
}

func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// TestCallWebRTC makes a real call: two pion/webrtc peers, each a Parley
// user with a socket, exchange their offer and answer (with the candidates
// in them) only through call_signal, may use relay candidates of the
// embedded TURN server only, connect, and send data both ways over a data
// channel. A wrong TURN credential gathers no relay candidate.
func TestCallWebRTC(t *testing.T) {
	t.Parallel()
	srv := apitest.MustStart(t, testdb.Backends[0], func(c *server.Config) {
		c.TURNAddr, c.TURNSecret = "127.0.0.1:0", "webrtc-test-secret"
	})
	base := srv.URL()
	ann := apitest.Register(t, base, apitest.Unique("ann"))
	bob := apitest.Register(t, base, apitest.Unique("bob"))
	annWS := apitest.DialWS(t, base, ann.Token)
	bobWS := apitest.DialWS(t, base, bob.Token)

	t.Run("ErrWrongCredential", func(t *testing.T) {
		pc := newPeer(t, iceConfig(t, ann, "d3Jvbmc="))
		if _, err := pc.CreateDataChannel("x", nil); err != nil {
			t.Fatal(err)
		}
		offer, err := pc.CreateOffer(nil)
		if err != nil {
			t.Fatal(err)
		}
		if sdp := describe(t, pc, offer).SDP; strings.Contains(sdp, "typ relay") {
			t.Fatalf("a relay candidate with a wrong credential:\n%s", sdp)
		}
	})

	t.Run("OK", func(t *testing.T) {
		pcA := newPeer(t, iceConfig(t, ann, ""))
		pcB := newPeer(t, iceConfig(t, bob, ""))
		upA, upB := connected(pcA), connected(pcB)
		fromBob, fromAnn := make(chan string, 1), make(chan string, 1)
		dcA, err := pcA.CreateDataChannel("chat", nil)
		if err != nil {
			t.Fatal(err)
		}
		openA := make(chan struct{})
		dcA.OnOpen(func() { close(openA) })
		dcA.OnMessage(func(m webrtc.DataChannelMessage) { fromBob <- string(m.Data) })
		openB := make(chan struct{})
		var dcB *webrtc.DataChannel
		pcB.OnDataChannel(func(dc *webrtc.DataChannel) {
			dcB = dc
			dc.OnOpen(func() { close(openB) })
			dc.OnMessage(func(m webrtc.DataChannelMessage) { fromAnn <- string(m.Data) })
		})

		c := startCall(t, ann, bob, "video")
		bobWS.WaitEvent(t, "call_incoming", c.CallID)
		offer, err := pcA.CreateOffer(nil)
		if err != nil {
			t.Fatal(err)
		}
		offer = describe(t, pcA, offer)
		if !strings.Contains(offer.SDP, "typ relay") {
			t.Fatalf("the offer has no relay candidate:\n%s", offer.SDP)
		}
		ann.Must(t, 200, "POST", "/api/calls/signal", map[string]any{"callId": c.CallID, "signal": offer})
		bob.Must(t, 200, "POST", "/api/calls/answer", map[string]any{"callId": c.CallID, "answer": true})

		var got struct{ Signal webrtc.SessionDescription }
		if err := json.Unmarshal(bobWS.WaitEvent(t, "call_signal", `"offer"`), &got); err != nil {
			t.Fatal(err)
		}
		if err := pcB.SetRemoteDescription(got.Signal); err != nil {
			t.Fatal(err)
		}
		answer, err := pcB.CreateAnswer(nil)
		if err != nil {
			t.Fatal(err)
		}
		answer = describe(t, pcB, answer)
		if ack := bobWS.Call(t, "call_signal", map[string]any{"callId": c.CallID, "signal": answer}, 1); !strings.Contains(string(ack), `"success":true`) {
			t.Fatalf("call_signal ack: %s", ack)
		}
		if err := json.Unmarshal(annWS.WaitEvent(t, "call_signal", `"answer"`), &got); err != nil {
			t.Fatal(err)
		}
		if err := pcA.SetRemoteDescription(got.Signal); err != nil {
			t.Fatal(err)
		}

		wait(t, upA, "ann's peer to connect")
		wait(t, upB, "bob's peer to connect")
		for _, pc := range []*webrtc.PeerConnection{pcA, pcB} {
			pair, err := pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
			if err != nil || pair == nil || pair.Local.Typ != webrtc.ICECandidateTypeRelay {
				t.Fatalf("selected pair %v (%v): want a local relay candidate", pair, err)
			}
		}
		wait(t, openA, "ann's data channel")
		wait(t, openB, "bob's data channel")
		if err := dcA.SendText("hello from ann"); err != nil {
			t.Fatal(err)
		}
		if err := dcB.SendText("hello from bob"); err != nil {
			t.Fatal(err)
		}
		for ch, want := range map[chan string]string{fromAnn: "hello from ann", fromBob: "hello from bob"} {
			select {
			case m := <-ch:
				if m != want {
					t.Fatalf("received %q, want %q", m, want)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("%q never arrived", want)
			}
		}
		ann.Must(t, 200, "POST", "/api/calls/end", map[string]string{"callId": c.CallID})
	})
}
