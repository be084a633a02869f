package transport

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/netip"
	"testing"
)

func TestRelayHelloRoundTrip(t *testing.T) {
	var token [RelayTokenLen]byte
	token[0], token[31] = 1, 2
	for _, side := range []Role{RoleDialer, RoleAcceptor} {
		b := AppendRelayHello(nil, token, side)
		if len(b) != RelayHelloLen || string(b[:4]) != RelayMagic {
			t.Fatalf("hello %x", b)
		}
		got, s, err := ParseRelayHello(b)
		if err != nil || got != token || s != side {
			t.Fatalf("parsed %x %v %v", got, s, err)
		}
	}
}

func FuzzParseRelayHello(f *testing.F) {
	f.Add(AppendRelayHello(nil, [RelayTokenLen]byte{1}, RoleAcceptor))
	f.Add([]byte("FRYR"))
	f.Fuzz(func(t *testing.T, b []byte) {
		token, side, err := ParseRelayHello(b)
		if err != nil {
			return
		}
		if again := AppendRelayHello(nil, token, side); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
		}
	})
}

// FuzzReadRelayFrame: any byte stream reads as whole frames of 1 to
// MaxRelayFrame bytes that re-encode to what was read, or fails cleanly.
func FuzzReadRelayFrame(f *testing.F) {
	f.Add(AppendRelayFrame(AppendRelayFrame(nil, []byte("hello")), []byte{0x40, 1, 2}))
	f.Add([]byte{0, 0})
	f.Add([]byte{0xff, 0xff, 1})
	f.Fuzz(func(t *testing.T, stream []byte) {
		r := bytes.NewReader(stream)
		buf := make([]byte, MaxRelayFrame)
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		consumed := 0
		for {
			n, err := ReadRelayFrame(r, buf)
			if err != nil {
				if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrRelayFrame) {
					break
				}
				t.Fatal(err)
			}
			if n < 1 || n > MaxRelayFrame {
				t.Fatalf("frame of %d bytes", n)
			}
			consumed += 2 + n
			if err := WriteRelayFrame(w, buf[:n]); err != nil {
				t.Fatal(err)
			}
		}
		w.Flush()
		if !bytes.Equal(out.Bytes(), stream[:consumed]) {
			t.Fatal("frames re-encode differently")
		}
	})
}

// FuzzReadRelayAddr: any bytes read as an address answer either fail or
// give an address that re-encodes to exactly the bytes consumed.
func FuzzReadRelayAddr(f *testing.F) {
	f.Add(AppendRelayAddr(nil, netip.MustParseAddrPort("198.51.100.7:4000")))
	f.Add(AppendRelayAddr(nil, netip.MustParseAddrPort("[2001:db8::1]:9")))
	f.Add([]byte{5, 1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		ap, err := ReadRelayAddr(r)
		if err != nil {
			return
		}
		consumed := len(b) - r.Len()
		if again := AppendRelayAddr(nil, ap); !bytes.Equal(again, b[:consumed]) {
			t.Fatalf("re-encoding differs: %x vs %x", again, b[:consumed])
		}
	})
}
