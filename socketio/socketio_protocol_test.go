package socketio_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/socketio"
	"github.com/parley-chat/parley/socketio/socketiotest"
)

func mustConnect(t *testing.T, c client, nspPrefix string) string {
	t.Helper()
	c.Send(t, "40"+nspPrefix)
	got := MustRecvText(t, c, "40"+nspPrefix+`{"sid":"*`)
	var v struct{ SID string }
	if err := json.Unmarshal([]byte(strings.TrimPrefix(got, "40"+nspPrefix)), &v); err != nil || v.SID == "" {
		t.Fatalf("connect answer %q", got)
	}
	MustRecvText(t, c, "42"+nspPrefix+`["auth",{}]`)
	return v.SID
}

func TestSocketIOConnect(t *testing.T) {
	base := MustStart(t, nil)

	t.Run("OKMain", func(t *testing.T) {
		transports(t, base, func(t *testing.T, c client) { mustConnect(t, c, "") })
	})
	t.Run("OKCustom", func(t *testing.T) {
		transports(t, base, func(t *testing.T, c client) { mustConnect(t, c, "/custom,") })
	})
	t.Run("OKAuth", func(t *testing.T) {
		transports(t, base, func(t *testing.T, c client) {
			c.Send(t, `40{"token":"123"}`)
			MustRecvText(t, c, `40{"sid":"*`)
			MustRecvText(t, c, `42["auth",{"token":"123"}]`)
		})
	})
	t.Run("ErrInvalidNamespace", func(t *testing.T) {
		transports(t, base, func(t *testing.T, c client) {
			c.Send(t, "40/random,")
			MustRecvText(t, c, `44/random,{"message":"Invalid namespace"}`)
		})
	})
	t.Run("ErrAuthNotObject", func(t *testing.T) {
		c := MustDialWS(t, base)
		c.Send(t, `40"token"`)
		MustRecvText(t, c, `44{"message":*`)
	})
	t.Run("OKDisconnectAndReconnect", func(t *testing.T) {
		transports(t, base, func(t *testing.T, c client) {
			sid1 := mustConnect(t, c, "")
			c.Send(t, "41")
			if sid2 := mustConnect(t, c, ""); sid2 == sid1 {
				t.Fatal("reconnect reused the namespace sid")
			}
		})
	})
	t.Run("ErrNoHandshake", func(t *testing.T) {
		c := MustDialWS(t, base) // never sends CONNECT; connect timeout is 1 s
		c.WaitClosed(t)
	})
}

func TestSocketIOEvents(t *testing.T) {
	base := MustStart(t, nil)
	for _, tc := range []struct {
		name     string
		send     string
		sendBin  []byte
		want     string
		wantBin  []byte
		nspConnB string
	}{
		{name: "OKEcho", send: `42["message",1,"2",{"3":[true]}]`, want: `42["message-back",1,"2",{"3":[true]}]`},
		{name: "OKAck", send: `42456["message-with-ack",1,"2",{"3":[false]}]`, want: `43456[1,"2",{"3":[false]}]`},
		{name: "OKBinaryEcho", send: `451-["message",{"_placeholder":true,"num":0}]`, sendBin: []byte{1, 2, 3},
			want: `451-["message-back",{"_placeholder":true,"num":0}]`, wantBin: []byte{1, 2, 3}},
		{name: "OKBinaryAck", send: `451-789["message-with-ack",{"_placeholder":true,"num":0}]`, sendBin: []byte{4, 5},
			want: `461-789[{"_placeholder":true,"num":0}]`, wantBin: []byte{4, 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			transports(t, base, func(t *testing.T, c client) {
				mustConnect(t, c, "")
				c.Send(t, tc.send)
				if tc.sendBin != nil {
					c.SendBinary(t, tc.sendBin)
				}
				MustRecvText(t, c, tc.want)
				if tc.wantBin != nil {
					if m := c.Recv(t); !m.binary || !bytes.Equal(m.data, tc.wantBin) {
						t.Fatalf("attachment %v, want %v", m, tc.wantBin)
					}
				}
			})
		})
	}
}

func TestSocketIOInvalidPackets(t *testing.T) {
	base := MustStart(t, nil)
	for _, tc := range []struct {
		name string
		send []string // "bin:" prefix sends a binary frame
	}{
		{"ErrUnknownType", []string{"4abc"}},
		{"ErrTypeOutOfRange", []string{"49"}},
		{"ErrMalformedJSON", []string{`42{"abc`}},
		{"ErrNotArray", []string{`42{"a":1}`}},
		{"ErrEmptyArray", []string{`42[]`}},
		{"ErrEventNameNotString", []string{`42[1,2]`}},
		{"ErrInvalidAckID", []string{`42abc["message-with-ack",1]`}},
		{"ErrDisconnectWithPayload", []string{`41{"a":1}`}},
		{"ErrConnectErrorFromClient", []string{`44{"message":"x"}`}},
		{"ErrTooManyAttachments", []string{`4511-["message"]`}},
		{"ErrPlaceholderOutOfRange", []string{`451-["message",{"_placeholder":true,"num":3}]`}},
		{"ErrUnexpectedBinary", []string{"bin:abc"}},
		{"ErrTextInsteadOfAttachment", []string{`451-["message",{"_placeholder":true,"num":0}]`, `42["message"]`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := MustDialWS(t, base)
			mustConnect(t, c, "")
			for _, s := range tc.send {
				if b, ok := strings.CutPrefix(s, "bin:"); ok {
					c.SendBinary(t, []byte(b))
				} else {
					c.Send(t, s)
				}
			}
			c.WaitClosed(t)
		})
	}
}

func TestSocketIOServerAPI(t *testing.T) {
	opts := socketiotest.Options()
	srv := socketio.NewServer(opts)
	socks := make(chan *socketio.Socket, 4)
	reasons := make(chan [2]string, 16) // socket id, reason
	waitReason := func(t *testing.T, id string) string {
		t.Helper()
		for {
			select {
			case r := <-reasons:
				if r[0] == id {
					return r[1]
				}
			case <-time.After(wait):
				t.Fatal("OnDisconnect not called")
			}
		}
	}
	nsp := srv.Of("/")
	nsp.OnConnect(func(sock *socketio.Socket, auth json.RawMessage) error {
		var a struct{ Token string }
		_ = json.Unmarshal(auth, &a)
		if a.Token == "" {
			a.Token = sock.Request().URL.Query().Get("token")
		}
		if a.Token != "good" {
			return errors.New("unauthorized")
		}
		sock.SetData(a.Token)
		sock.OnDisconnect(func(reason string) { reasons <- [2]string{sock.ID(), reason} })
		if err := sock.Emit("hello", "early"); err != nil {
			t.Errorf("emit from the connect hook: %v", err)
		}
		socks <- sock
		return nil
	})
	srv.Of("/other")
	base := MustStart(t, srv)

	t.Run("ErrUnauthorized", func(t *testing.T) {
		c := MustDialWS(t, base)
		c.Send(t, `40{"token":"bad"}`)
		MustRecvText(t, c, `44{"message":"unauthorized"}`)
	})
	t.Run("OKQueryToken", func(t *testing.T) {
		c, _ := DialWS(t, wsURL(base, "")+"&token=good", true)
		c.Recv(t)
		c.Send(t, `40`)
		MustRecvText(t, c, `40{"sid":"*`)
		MustRecvText(t, c, `42["hello","early"]`)
		if sock := <-socks; sock.Data() != "good" || sock.ID() == "" {
			t.Fatalf("socket data %v id %q", sock.Data(), sock.ID())
		}
	})
	t.Run("OKEmitWithAckPreparedDisconnect", func(t *testing.T) {
		transports(t, base, func(t *testing.T, c client) {
			c.Send(t, `40{"token":"good"}`)
			MustRecvText(t, c, `40{"sid":"*`)
			MustRecvText(t, c, `42["hello","early"]`)
			sock := <-socks

			got := make(chan socketio.Args, 1)
			if err := sock.EmitWithAck("question", wait, func(a socketio.Args, err error) {
				if err != nil {
					t.Errorf("ack: %v", err)
				}
				got <- a
			}, 42, []byte{9}); err != nil {
				t.Fatal(err)
			}
			MustRecvText(t, c, `451-1["question",42,{"_placeholder":true,"num":0}]`)
			if m := c.Recv(t); !m.binary || !bytes.Equal(m.data, []byte{9}) {
				t.Fatalf("attachment %v", m)
			}
			c.Send(t, `461-1["answer",{"_placeholder":true,"num":0}]`)
			c.SendBinary(t, []byte{7, 7})
			select {
			case a := <-got:
				var s string
				b, ok := a.Binary(1)
				if a.Unmarshal(0, &s) != nil || s != "answer" || !ok || !bytes.Equal(b, []byte{7, 7}) {
					t.Fatalf("ack args %+v", a)
				}
			case <-time.After(wait):
				t.Fatal("ack callback not called")
			}

			timedOut := make(chan error, 1)
			_ = sock.EmitWithAck("ignored", 100*time.Millisecond, func(_ socketio.Args, err error) { timedOut <- err })
			MustRecvText(t, c, `422["ignored"]`)
			if err := <-timedOut; !errors.Is(err, socketio.ErrAckTimeout) {
				t.Fatalf("ack error %v, want ErrAckTimeout", err)
			}

			p, err := socketio.PrepareEvent("/", "news", json.RawMessage(`{"a":1}`))
			if err != nil {
				t.Fatal(err)
			}
			other, _ := socketio.PrepareEvent("/other", "news")
			if !sock.SendPrepared(p) || sock.SendPrepared(other) {
				t.Fatal("SendPrepared: want true for own namespace, false for another")
			}
			MustRecvText(t, c, `42["news",{"a":1}]`)

			sock.Disconnect()
			MustRecvText(t, c, `41`)
			if r := waitReason(t, sock.ID()); r != socketio.ReasonServerDisconnect {
				t.Fatalf("reason %q", r)
			}
			if err := sock.Emit("late"); !errors.Is(err, socketio.ErrDisconnected) {
				t.Fatalf("emit after disconnect: %v", err)
			}
		})
	})
	t.Run("OKClientDisconnectReason", func(t *testing.T) {
		c := MustDialWS(t, base)
		c.Send(t, `40{"token":"good"}`)
		MustRecvText(t, c, `40{"sid":"*`)
		sock := <-socks
		c.Send(t, `41`)
		if r := waitReason(t, sock.ID()); r != socketio.ReasonClientDisconnect {
			t.Fatalf("reason %q", r)
		}
	})
}
