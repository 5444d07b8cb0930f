package wsock

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
)

// clientFrame encodes a frame as a client must send it: masked.
func clientFrame(fin bool, op byte, payload []byte) []byte {
	b := []byte{op, 0x80}
	if fin {
		b[0] |= 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b[1] |= byte(n)
	case n <= 0xFFFF:
		b[1] |= 126
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b[1] |= 127
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	b = append(b, key[:]...)
	start := len(b)
	b = append(b, payload...)
	for i := range b[start:] {
		b[start+i] ^= key[i&3]
	}
	return b
}

func cat(frames ...[]byte) []byte { return bytes.Join(frames, nil) }

// readAll feeds data to a new reader in pieces of chunk bytes (all at once
// when chunk <= 0) and returns what it emitted, one line per frame, and
// the error that stopped it. A close frame stops reading, as in dispatch.
func readAll(t testing.TB, limit int, data []byte, chunk int) ([]string, error) {
	r := frameReader{limit: limit}
	var got []string
	emit := func(op byte, p []byte) error {
		if len(p) > limit {
			t.Fatalf("emitted %d bytes, over the limit %d", len(p), limit)
		}
		got = append(got, fmt.Sprintf("%d:%q", op, p))
		if op == opClose {
			return errStopReading
		}
		return nil
	}
	if chunk <= 0 {
		chunk = len(data) + 1
	}
	for len(data) > 0 {
		n := min(chunk, len(data))
		// A copy, so nothing the reader keeps may alias the caller's buffer.
		piece := append([]byte(nil), data[:n]...)
		data = data[n:]
		if err := r.feed(piece, emit); err != nil {
			return got, err
		}
		clear(piece)
		if len(r.partial) > limit+maxHeader {
			t.Fatalf("partial frame buffer of %d bytes, limit %d", len(r.partial), limit)
		}
	}
	if r.failed && (r.partial != nil || r.msg != nil) {
		t.Fatal("a failed reader still holds buffers")
	}
	return got, nil
}

func TestReadFrames(t *testing.T) {
	big := bytes.Repeat([]byte("abcdefgh"), 40) // 320 bytes: 16-bit length
	for _, tc := range []struct {
		name string
		data []byte
		want []string
		err  error
	}{
		{"OKText", clientFrame(true, opText, []byte("hello")), []string{`1:"hello"`}, nil},
		{"OKEmptyBinary", clientFrame(true, opBinary, nil), []string{`2:""`}, nil},
		{"OK16BitLength", clientFrame(true, opBinary, big), []string{fmt.Sprintf("2:%q", big)}, nil},
		{"OKFragmentedWithPing", cat(
			clientFrame(false, opText, []byte("he")),
			clientFrame(true, opPing, []byte("p")),
			clientFrame(false, 0, []byte("l")),
			clientFrame(true, 0, []byte("lo")),
			clientFrame(true, opBinary, []byte("next")),
		), []string{`9:"p"`, `1:"hello"`, `2:"next"`}, nil},
		{"OKCloseStops", cat(
			clientFrame(true, opPong, nil),
			clientFrame(true, opClose, []byte{0x03, 0xE9}),
			clientFrame(true, opText, []byte("dropped")),
		), []string{`10:""`, `8:"\x03\xe9"`}, nil},
		{"ErrUnmasked", []byte{0x81, 0x01, 'x'}, nil, errUnmasked},
		{"ErrReservedBits", append([]byte{0xC1}, clientFrame(true, opText, []byte("x"))[1:]...), nil, errReserved},
		{"ErrOpcode", clientFrame(true, 0x3, nil), nil, errOpcode},
		{"ErrControlOpcode", clientFrame(true, 0xB, nil), nil, errOpcode},
		{"ErrFragmentedControl", clientFrame(false, opPing, nil), nil, errControl},
		{"ErrLongControl", clientFrame(true, opPing, make([]byte, 126)), nil, errControl},
		{"ErrContinuation", clientFrame(true, 0, []byte("x")), nil, errContinuation},
		{"ErrInterleaved", cat(
			clientFrame(false, opText, []byte("a")),
			clientFrame(true, opText, []byte("b")),
		), nil, errInterleaved},
		{"ErrTooLarge", clientFrame(true, opBinary, make([]byte, 1025)), nil, errTooLarge},
		{"ErrFragmentsTooLarge", cat(
			clientFrame(false, opBinary, make([]byte, 1000)),
			clientFrame(true, 0, make([]byte, 25)),
		), nil, errTooLarge},
		{"ErrLength64", cat([]byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0}, make([]byte, 4)), nil, errLength},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunk := range []int{0, 1, 3, 7} {
				got, err := readAll(t, 1024, tc.data, chunk)
				if !errors.Is(err, tc.err) {
					t.Fatalf("chunk %d: error %v, want %v", chunk, err, tc.err)
				}
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Fatalf("chunk %d: got %v, want %v", chunk, got, tc.want)
				}
			}
		})
	}
}

// TestReadFramesReleases checks that a reader keeps no buffer once the
// frames it was given are complete, and keeps one while a frame is split.
func TestReadFramesReleases(t *testing.T) {
	r := frameReader{limit: 1 << 20}
	f := clientFrame(true, opBinary, make([]byte, 100_000))
	emit := func(byte, []byte) error { return nil }
	if err := r.feed(append([]byte(nil), f[:5000]...), emit); err != nil {
		t.Fatal(err)
	}
	if cap(r.partial) < len(f) {
		t.Fatalf("partial buffer of %d bytes for a frame of %d", cap(r.partial), len(f))
	}
	if err := r.feed(append([]byte(nil), f[5000:]...), emit); err != nil {
		t.Fatal(err)
	}
	if r.partial != nil || r.msg != nil {
		t.Fatal("the reader keeps a buffer after a complete frame")
	}
}

// FuzzReadFrames checks that the reader never panics, never emits more
// than the limit, and reads the same frames and error however the input
// is split across reads.
func FuzzReadFrames(f *testing.F) {
	f.Add(clientFrame(true, opText, []byte("hello")), uint8(1))
	f.Add(cat(
		clientFrame(false, opText, []byte("he")),
		clientFrame(true, opPing, []byte("p")),
		clientFrame(true, 0, []byte("llo")),
	), uint8(2))
	f.Add(clientFrame(true, opBinary, bytes.Repeat([]byte{7}, 300)), uint8(5))
	f.Add(cat(clientFrame(true, opClose, []byte{0x03, 0xE8, 'o', 'k'}), clientFrame(true, opText, nil)), uint8(3))
	f.Add([]byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, uint8(4))
	f.Add([]byte{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'}, uint8(0))
	f.Add(clientFrame(false, opPing, nil), uint8(1))
	f.Add(clientFrame(true, opBinary, make([]byte, 600)), uint8(9))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		const limit = 512
		whole, wholeErr := readAll(t, limit, data, 0)
		split, splitErr := readAll(t, limit, data, int(chunk%17)+1)
		if fmt.Sprint(whole) != fmt.Sprint(split) || !errors.Is(splitErr, wholeErr) {
			t.Fatalf("whole: %v %v; split in %d: %v %v", whole, wholeErr, chunk%17+1, split, splitErr)
		}
	})
}
