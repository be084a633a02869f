package transport

import (
	"net/netip"
	"slices"
	"testing"
	"time"

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

// TestPeerAnnouncementsAreRateLimited: a peer that announces new candidate
// lists back to back gets the second adopted only a minAnnounceGap after
// the first (it stays unacknowledged and is resent meanwhile), so it
// cannot renew this side's probes to fresh addresses at will.
func TestPeerAnnouncementsAreRateLimited(t *testing.T) {
	n := newNet(t)
	a := vnetSocket(t, fastConfig(), listenAt(n, publicA))
	b := vnetSocket(t, fastConfig(), listenAt(n, publicB))
	ca, cb := connectPair(t, a, b, nil, []netip.AddrPort{publicB})
	list := func(port uint16) []Announced {
		return []Announced{{Addr: netip.AddrPortFrom(netip.MustParseAddr("198.18.9.9"), port), Type: CandidateServerReflexive}}
	}
	var adopted []time.Time
	record := func() {
		e := cb.ep
		e.mu.Lock()
		defer e.mu.Unlock()
		if len(adopted) < int(e.peerGen) {
			adopted = append(adopted, e.peerAnnounced)
		}
	}
	ca.ep.mu.Lock()
	ca.ep.announceLocked(list(1000), time.Now())
	ca.ep.mu.Unlock()
	waitFor(t, "the first list adopted", func() bool { record(); return len(adopted) == 1 })
	ca.ep.mu.Lock()
	ca.ep.announceLocked(list(2000), time.Now())
	ca.ep.mu.Unlock()
	waitFor(t, "the second list adopted", func() bool { record(); return len(adopted) == 2 })
	if gap := adopted[1].Sub(adopted[0]); gap < minAnnounceGap {
		t.Fatalf("second list adopted %v after the first, want at least %v", gap, minAnnounceGap)
	}
	cb.ep.mu.Lock()
	direct := slices.Clone(cb.ep.direct)
	cb.ep.mu.Unlock()
	if !slices.Equal(direct, []netip.AddrPort{list(2000)[0].Addr}) {
		t.Fatalf("peer candidates %v, want the second list", direct)
	}
}
