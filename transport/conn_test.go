package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/netip"
	"testing"
	"time"
)

func newLoopbackSocket(t testing.TB) *Socket {
	t.Helper()
	cfg := fastConfig()
	cfg.ListenAddr = "127.0.0.1:0"
	s, err := NewSocket(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConnectLoopbackStreams(t *testing.T) {
	a, b := newLoopbackSocket(t), newLoopbackSocket(t)
	ca, cb := connectPair(t, a, b, []netip.AddrPort{a.LocalAddr()}, []netip.AddrPort{b.LocalAddr()})
	if got := ca.Path(); got.Remote != b.LocalAddr() || got.Kind != PathDirectUDP {
		t.Fatalf("dialer path = %+v, want direct-udp to %v", got, b.LocalAddr())
	}
	if got := cb.Path(); got.Remote != a.LocalAddr() {
		t.Fatalf("acceptor path = %+v, want remote %v", got, a.LocalAddr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	payload := make([]byte, 4<<20)
	_, _ = rand.Read(payload)
	go func() {
		s, err := ca.OpenStream(ctx)
		if err != nil {
			t.Error(err)
			return
		}
		s.Write(payload)
		s.Close()
	}()
	s, err := cb.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("received %d bytes, differing from the %d sent", len(got), len(payload))
	}
}
