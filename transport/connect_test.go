package transport

import (
	"net/netip"
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
