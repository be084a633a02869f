package transport

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

// forwarder is a test middlebox on loopback: what the dialer sends to it
// goes to the acceptor and back, like a port forward or a relay. Both peers
// see the forwarder's address as the other's.
func startForwarder(t *testing.T, dialer, acceptor netip.AddrPort) netip.AddrPort {
	t.Helper()
	u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := u.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			switch UnmapAddrPort(from) {
			case dialer:
				u.WriteToUDPAddrPort(buf[:n], acceptor)
			case acceptor:
				u.WriteToUDPAddrPort(buf[:n], dialer)
			}
		}
	}()
	t.Cleanup(func() { u.Close(); <-done })
	return UnmapAddrPort(u.LocalAddr().(*net.UDPAddr).AddrPort())
}

// waitPath waits for a path change matching ok on sub.
func waitPath(t *testing.T, sub <-chan PathInfo, ok func(PathInfo) bool) PathInfo {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case p, open := <-sub:
			if !open {
				t.Fatal("connection closed while waiting for a path change")
			}
			if ok(p) {
				return p
			}
		case <-timeout:
			t.Fatal("no matching path change within 10s")
		}
	}
}

func TestMigrateThroughForwarder(t *testing.T) {
	a, b := newLoopbackSocket(t), newLoopbackSocket(t)
	ca, cb := connectPair(t, a, b, []netip.AddrPort{a.LocalAddr()}, []netip.AddrPort{b.LocalAddr()})
	fwd := startForwarder(t, a.LocalAddr(), b.LocalAddr())
	subB, stop := cb.SubscribePath()
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ca.Migrate(ctx, fwd); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if p := ca.Path(); p.Remote != fwd || p.Reason != ReasonMigrated {
		t.Fatalf("dialer path after Migrate = %+v, want remote %v reason migrated", p, fwd)
	}
	// The acceptor now sees the dialer's packets from the forwarder and
	// follows by passive migration.
	p := waitPath(t, subB, func(p PathInfo) bool { return p.Remote == fwd })
	if p.Reason != ReasonPeerMoved {
		t.Fatalf("acceptor path reason = %q, want %q", p.Reason, ReasonPeerMoved)
	}
	roundTrip(t, ca, cb, 1<<20)
}

func TestMigrateTimeoutKeepsPath(t *testing.T) {
	a, b := newLoopbackSocket(t), newLoopbackSocket(t)
	ca, cb := connectPair(t, a, b, []netip.AddrPort{a.LocalAddr()}, []netip.AddrPort{b.LocalAddr()})
	// A closed loopback port: nobody answers the challenge.
	u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	dead := UnmapAddrPort(u.LocalAddr().(*net.UDPAddr).AddrPort())
	u.Close()
	before := ca.Path()

	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	err = ca.Migrate(ctx, dead)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Migrate to a dead address: err = %v, want deadline exceeded", err)
	}
	// Without a ctx deadline the configured validation timeout applies.
	err = ca.Migrate(context.Background(), netip.AddrPortFrom(dead.Addr(), dead.Port()+1))
	if !errors.Is(err, ErrValidationTimeout) {
		t.Fatalf("Migrate without deadline: err = %v, want ErrValidationTimeout", err)
	}
	if after := ca.Path(); after.Remote != before.Remote || after.Seq != before.Seq {
		t.Fatalf("path moved on a failed Migrate: before %+v after %+v", before, after)
	}
	if st := ca.State(); st != StateEstablished {
		t.Fatalf("state after failed Migrate = %v, want established", st)
	}
	roundTrip(t, ca, cb, 64<<10)
}
