package transport

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"ferry/internal/vnet"
)

// TestMoveBehindFilteringNATs: the laptop starts on a public address and
// moves, mid-stream, behind a NAT that filters by address and port, while
// its peer sits behind one too. Passive migration alone cannot work: the
// peer's NAT drops the laptop's packets from its new public address until
// the peer sends there. The laptop announces its new address through the
// relay (CANDIDATES), both sides probe each other, and the connection
// carries on over a direct path from the new address, every byte intact.
// (Before CANDIDATES existed the stream stalled here until the idle
// timeout.)
func TestMoveBehindFilteringNATs(t *testing.T) {
	n := newNet(t)
	hotspot := n.NewNAT(netip.MustParseAddr("198.18.2.1"), vnet.NATOptions{Kind: vnet.PortRestrictedCone})
	home := n.NewNAT(netip.MustParseAddr("198.18.3.1"), vnet.NATOptions{Kind: vnet.PortRestrictedCone})
	hotspotHost := netip.MustParseAddrPort("10.1.0.7:6000")
	laptop := vnetSocket(t, fastConfig(), listenAt(n, publicA), behind(hotspot, hotspotHost))
	peer := vnetSocket(t, fastConfig(), behind(home, netip.MustParseAddrPort("10.2.0.2:7000")))
	relay := startRelay(t, RelayConfig{})

	// The laptop's gatherer reports its hotspot mapping once the new
	// socket's first packet made one (a STUN server would see the same).
	laptop.SetGatherer(func(ctx context.Context) []Announced {
		for {
			for _, m := range []netip.AddrPort{peerMapping(home)} {
				if pub, ok := hotspot.Mapping(hotspotHost, m); ok {
					return []Announced{{Addr: pub, Type: CandidateServerReflexive}}
				}
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(5 * time.Millisecond):
			}
		}
	})

	spec := newPairSpec(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pc := make(chan connectResult, 1)
	go func() {
		c, err := peer.Connect(ctx, Peer{Role: RoleDialer, Key: spec.key, Certificate: spec.certB, PeerFingerprint: spec.certA.Fingerprint,
			Candidates: []netip.AddrPort{publicA}, Relay: relay})
		pc <- connectResult{c, err}
	}()
	cl, err := laptop.Connect(ctx, Peer{Role: RoleAcceptor, Key: spec.key, Certificate: spec.certA, PeerFingerprint: spec.certB.Fingerprint, Relay: relay})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	rp := <-pc
	if rp.err != nil {
		t.Fatal(rp.err)
	}
	cp := rp.c
	t.Cleanup(func() { cp.Close() })
	waitFor(t, "a direct path", func() bool { return cp.Path().Kind == PathDirectUDP && cl.Path().Kind == PathDirectUDP })
	subP, stopP := cp.SubscribePath()
	defer stopP()

	streamWithHook(t, cl, cp, 8<<20, func() {
		n.SetHostLink(publicA.Addr(), vnet.Link{Down: true})
		laptop.NetworkChanged()
	})
	p := waitPath(t, subP, func(p PathInfo) bool { return p.Kind == PathDirectUDP && p.Remote.Addr() == hotspot.Public() })
	t.Logf("peer's path after the move: %+v", p)
	roundTrip(t, cp, cl, 256<<10)
}

// peerMapping is the public address of the home NAT's only host, as seen
// from anywhere (a cone NAT maps it the same towards every destination).
func peerMapping(home *vnet.NAT) netip.AddrPort {
	pub, _ := home.Mapping(netip.MustParseAddrPort("10.2.0.2:7000"), publicA)
	return pub
}
