package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

func newLoopbackSocket(t testing.TB) *Socket {
	t.Helper()
	return newLoopbackSocketWith(t, fastConfig())
}

// newLoopbackSocketWith is newLoopbackSocket with cfg (its ListenAddr
// set to loopback).
func newLoopbackSocketWith(t testing.TB, cfg Config) *Socket {
	t.Helper()
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

// TestConnectDialerChoosesPath gives each side a candidate of the other in
// a different address family on loopback: the acceptor's probe is answered
// over IPv6 while the dialer's is answered, and its QUIC handshake sent,
// over IPv4. The acceptor must follow the path the dialer chose instead of
// settling on the first probe answered to it, or the handshake goes to an
// address it no longer routes (this failed ferry transfers between two
// processes on one machine with IPv6 configured).
func TestConnectDialerChoosesPath(t *testing.T) {
	probe, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	probe.Close()
	open := func() *Socket {
		cfg := fastConfig()
		cfg.ListenAddr = "[::]:0" // dual-stack; the test sends only to loopback
		s, err := NewSocket(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	for i := range 5 {
		a, b := open(), open()
		v6 := netip.AddrPortFrom(netip.IPv6Loopback(), a.LocalAddr().Port())
		v4 := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), b.LocalAddr().Port())
		ca, cb := connectPair(t, a, b, []netip.AddrPort{v6}, []netip.AddrPort{v4})
		// Either family may win; both sides must be on the same one.
		da, ab := ca.Path().Remote, cb.Path().Remote
		if da.Addr().Is4() != ab.Addr().Is4() || da.Port() != b.LocalAddr().Port() || ab.Port() != a.LocalAddr().Port() {
			t.Fatalf("run %d: the dialer uses %v, the acceptor %v", i, da, ab)
		}
		roundTrip(t, ca, cb, 64<<10)
		// Agreeing from the start: no side had to move its path.
		for side, st := range map[string]Stats{"dialer": ca.Stats(), "acceptor": cb.Stats()} {
			if st.PathChanges != 0 || st.ChallengesSent != 0 {
				t.Fatalf("run %d: the %s moved its path after connecting: %+v", i, side, st)
			}
		}
	}
}

// TestQUICCountersInStats: a connection's Stats carry quic-go's own
// counts: both sides count at least the packets 1 MiB needs. (They are
// QUIC packets, not datagrams: during the handshake one datagram carries
// several, so they are not bounded by QUICPacketsIn.)
func TestQUICCountersInStats(t *testing.T) {
	a, b := newLoopbackSocket(t), newLoopbackSocket(t)
	dialer, acceptor := connectPair(t, a, b, []netip.AddrPort{a.LocalAddr()}, []netip.AddrPort{b.LocalAddr()})
	const n = 1 << 20
	roundTrip(t, acceptor, dialer, n)
	sent, got := acceptor.Stats(), dialer.Stats()
	least := uint64(n / 1452)
	if sent.QUICPacketsSent < least {
		t.Errorf("the sender counted %d QUIC packets sent for %d bytes, want at least %d", sent.QUICPacketsSent, n, least)
	}
	if got.QUICPacketsReceived < least {
		t.Errorf("the receiver counted %d QUIC packets received for %d bytes, want at least %d", got.QUICPacketsReceived, n, least)
	}
	if sent.QUICPacketsLost > sent.QUICPacketsSent {
		t.Errorf("%d of %d packets lost", sent.QUICPacketsLost, sent.QUICPacketsSent)
	}
}
