package transport

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ferry/internal/vnet"
)

// TestProbeScheduleBacksOffPerProbe drives an endpoint's connect timer with
// a synthetic clock at 1 ms ticks for 3 s, towards a candidate that never
// answers: the gap between probes grows by half per probe, from
// ProbeInterval to MaxProbeInterval, however often the timer ticks.
func TestProbeScheduleBacksOffPerProbe(t *testing.T) {
	n := newNet(t)
	silent := netip.MustParseAddrPort("198.18.0.77:7")
	var probes atomic.Int64
	t.Cleanup(n.Tap(func(p vnet.PacketInfo) {
		if p.Dst == silent {
			probes.Add(1)
		}
	}))
	cfg := fastConfig()
	cfg.ProbeInterval, cfg.MaxProbeInterval = 100*time.Millisecond, time.Second
	s := vnetSocket(t, cfg, listenAt(n, publicA))
	keys, err := derivePairingKeys(make([]byte, 32), RoleDialer)
	if err != nil {
		t.Fatal(err)
	}
	e := newEndpoint(s, s.newTag(), keys, RoleDialer, AnyPath, []netip.AddrPort{silent})
	t0 := e.attempt.candidates[silent].next

	// Gaps 100, 150, 225, 337.5, 506.25, 759.375 ms, then 1000, each from
	// the 1 ms tick that sent the probe before: probes at 0, 100, 250,
	// 475, 813, 1320, 2080 ms, and the next after 3 s.
	at := []time.Duration{0, 100, 250, 475, 813, 1320, 2080}
	next := 0
	for ms := range 3000 {
		now := t0.Add(time.Duration(ms) * time.Millisecond)
		e.mu.Lock()
		e.tickConnectingLocked(now)
		e.mu.Unlock()
		if next < len(at) && time.Duration(ms)*time.Millisecond >= at[next]*time.Millisecond {
			waitFor(t, "the probe to be sent", func() bool { return probes.Load() > int64(next) })
			next++
		}
		if got := probes.Load(); got > int64(next) {
			t.Fatalf("at %d ms: %d probes sent, the schedule allows %d", ms, got, next)
		}
	}
	if got := probes.Load(); got != int64(len(at)) {
		t.Fatalf("%d probes in 3 s, want %d", got, len(at))
	}
}

// TestProbesHostCandidatesFirst: of the candidates due in the same tick, a
// host address is probed before a server-reflexive one, whatever their
// order in the offer.
func TestProbesHostCandidatesFirst(t *testing.T) {
	n := newNet(t)
	host := netip.MustParseAddrPort("10.9.9.9:9")
	srflx := netip.MustParseAddrPort("198.18.0.77:7")
	var mu sync.Mutex
	var order []netip.AddrPort
	t.Cleanup(n.Tap(func(p vnet.PacketInfo) {
		if p.Dst == host || p.Dst == srflx {
			mu.Lock()
			order = append(order, p.Dst)
			mu.Unlock()
		}
	}))
	s := vnetSocket(t, fastConfig(), listenAt(n, publicA))
	keys, err := derivePairingKeys(make([]byte, 32), RoleDialer)
	if err != nil {
		t.Fatal(err)
	}
	e := newEndpoint(s, s.newTag(), keys, RoleDialer, AnyPath, []netip.AddrPort{srflx, host})
	e.mu.Lock()
	e.tickConnectingLocked(e.attempt.candidates[host].next)
	e.mu.Unlock()
	waitFor(t, "both probes", func() bool { mu.Lock(); defer mu.Unlock(); return len(order) == 2 })
	if order[0] != host {
		t.Fatalf("probed %v first, want the host address %v", order[0], host)
	}
}

// TestPathNamesTheRemoteType: a path reports how its remote address was
// learned: offered (server-reflexive, as the offer says or as inferred)
// or learned from the peer's packets.
func TestPathNamesTheRemoteType(t *testing.T) {
	n := newNet(t)
	nat := n.NewNAT(netip.MustParseAddr("198.18.1.1"), vnet.NATOptions{Kind: vnet.PortRestrictedCone})
	private := netip.MustParseAddrPort("10.0.0.2:5000")
	mover := vnetSocket(t, fastConfig(), behind(nat, private))
	fixed := vnetSocket(t, fastConfig(), listenAt(n, publicA))
	cm, cf := connectPair(t, mover, fixed, nil, []netip.AddrPort{publicA})
	if got := cm.Path().RemoteType; got != CandidateServerReflexive {
		t.Errorf("the mover's path to the fixed peer's offered public address is %v, want srflx", got)
	}
	if got := cf.Path().RemoteType; got != CandidatePeerReflexive {
		t.Errorf("the fixed peer's path to a NAT mapping nobody offered is %v, want prflx", got)
	}
}
