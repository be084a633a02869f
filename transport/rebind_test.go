package transport

import (
	"net/netip"
	"testing"
)

// TestReconnectAfterRebindRetiredFirstSocket moves the dialer to a new
// local socket half way through a transfer and lets the old one, the
// Socket's first, be retired and closed. Then the same peer (same key and
// certificates) connects again, and a new peer connects: quic-go checks the
// capabilities of a real socket (DF, GSO, buffers) when each connection's
// transport is made, so each Connect must hand it a socket that is still
// open, not the first one. Real loopback UDP sockets: only they have a
// RawConn.
func TestReconnectAfterRebindRetiredFirstSocket(t *testing.T) {
	a, b := newLoopbackSocket(t), newLoopbackSocket(t)
	first := a.newestCarrier()
	if uc, ok := first.(*udpCarrier); !ok || uc.udp == nil {
		t.Fatalf("first carrier %T is not a real UDP socket; the test needs one", first)
	}
	oldA := a.LocalAddr()

	spec := newPairSpec(t)
	ca, cb := connectPairWith(t, spec, a, b, []netip.AddrPort{a.LocalAddr()}, []netip.AddrPort{b.LocalAddr()})
	subA, stopA := ca.SubscribePath()
	defer stopA()
	subB, stopB := cb.SubscribePath()
	defer stopB()

	// 1. A network change half way through a transfer: the sender holds
	// the second half until the dialer has moved to its new socket, so
	// that half crosses the new path; the stream arrives intact.
	var pa PathInfo
	streamInHalves(t, ca, cb, 4<<20, func() {
		a.NetworkChanged()
		pa = waitPath(t, subA, func(p PathInfo) bool { return p.Reason == ReasonRebound })
	})
	newA := a.LocalAddr()
	if newA == oldA || pa.Local != newA {
		t.Fatalf("after the rebind: dialer path local %v, socket local %v; want both a new address (old %v)", pa.Local, newA, oldA)
	}
	waitPath(t, subB, func(p PathInfo) bool { return p.Remote == newA })

	// 2. The first socket is retired and closed.
	waitFor(t, "the first socket to be retired", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		_, kept := a.carriers[first]
		return len(a.carriers) == 1 && !kept
	})
	rc, err := first.(*udpCarrier).udp.SyscallConn()
	if err == nil {
		err = rc.Control(func(uintptr) {})
	}
	if err == nil {
		t.Fatalf("the retired first socket %v is still open", oldA)
	}

	// 3. The connection ends, as a lost one would; the same peer
	// reconnects with the same key and certificates, to a's new address.
	ca.Close()
	cb.Close()
	ca2, cb2 := connectPairWith(t, spec, a, b, []netip.AddrPort{newA}, []netip.AddrPort{b.LocalAddr()})
	if p := ca2.Path(); p.Local != newA || p.Remote != b.LocalAddr() {
		t.Fatalf("reconnected dialer path %+v, want local %v remote %v", p, newA, b.LocalAddr())
	}
	if p := cb2.Path(); p.Remote != newA {
		t.Fatalf("reconnected acceptor path %+v, want remote %v", p, newA)
	}
	roundTrip(t, ca2, cb2, 1<<20)
	roundTrip(t, cb2, ca2, 256<<10)

	// 4. A new peer connects to a as well.
	c := newLoopbackSocket(t)
	ca3, cc := connectPairWith(t, newPairSpec(t), a, c, []netip.AddrPort{newA}, []netip.AddrPort{c.LocalAddr()})
	if p := ca3.Path(); p.Local != newA || p.Remote != c.LocalAddr() {
		t.Fatalf("new peer: dialer path %+v, want local %v remote %v", p, newA, c.LocalAddr())
	}
	roundTrip(t, ca3, cc, 1<<20)
	roundTrip(t, cc, ca3, 256<<10)
}
