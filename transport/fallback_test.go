package transport

import (
	"testing"

	"ferry/internal/vnet"
)

// TestDeadDirectPathFallsBackToRelay: two peers on a direct path with a
// relay session standing by. Mid-stream the direct link dies without a
// sign: both sides notice the silence, fall back to the relay (reason
// fallback, the second side following the first's fresh claim), and the
// stream carries on intact. When the link comes back, the connection
// upgrades to it again.
func TestDeadDirectPathFallsBackToRelay(t *testing.T) {
	rp := newRelayPeers(t)
	rp.n.SetLink(publicA.Addr(), publicB.Addr(), vnet.Link{})
	ra, rb, subA, subB := rp.connectSubscribed(t)
	waitFor(t, "a direct path on both sides", func() bool {
		return ra.c.Path().Kind == PathDirectUDP && rb.c.Path().Kind == PathDirectUDP
	})
	waitFor(t, "the standing relay session", func() bool {
		for _, c := range []*Conn{ra.c, rb.c} {
			c.ep.mu.Lock()
			joined := c.ep.relay != nil
			c.ep.mu.Unlock()
			if !joined {
				return false
			}
		}
		return true
	})

	streamWithHook(t, ra.c, rb.c, 4<<20, func() {
		rp.n.SetLink(publicA.Addr(), publicB.Addr(), vnet.Link{Down: true})
	})
	for _, sub := range []<-chan PathInfo{subA, subB} {
		waitPath(t, sub, func(p PathInfo) bool { return p.Kind == PathRelay && p.Reason == ReasonFallback })
	}
	roundTrip(t, rb.c, ra.c, 256<<10)

	rp.n.SetLink(publicA.Addr(), publicB.Addr(), vnet.Link{})
	waitPath(t, subA, func(p PathInfo) bool { return p.Kind == PathDirectUDP && p.Reason == ReasonUpgraded })
	waitPath(t, subB, func(p PathInfo) bool { return p.Kind == PathDirectUDP })
	roundTrip(t, ra.c, rb.c, 256<<10)

	// A relayed active-path claim the peer made before it moved back (a
	// lower counter than the claim that moved this side) must not pull
	// the path back to the relay; a newer one does.
	e := rb.c.ep
	e.mu.Lock()
	defer e.mu.Unlock()
	stale := e.activeClaim - 1
	e.followRelayLocked(e.relay, e.relay.remote, stale)
	if p := e.path.Load(); p.carrier.Kind() != PathDirectUDP {
		t.Fatalf("a stale relayed claim moved the path to %v", p.info)
	}
	e.followRelayLocked(e.relay, e.relay.remote, e.activeClaim+1)
	if p := e.path.Load(); p.carrier.Kind() != PathRelay || p.info.Reason != ReasonFallback {
		t.Fatalf("a fresh relayed claim left the path on %v", p.info)
	}
}
