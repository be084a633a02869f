package transport

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

func TestNetMonitorSeesChanges(t *testing.T) {
	var v atomic.Value
	v.Store([]string{"eth0 192.0.2.1/24"})
	m := newNetMonitor(func() []string { return v.Load().([]string) })
	if m.changed() {
		t.Fatal("changed with nothing changed")
	}
	v.Store([]string{"eth0 192.0.2.1/24", "wlan0 10.0.0.5/24"})
	if !m.changed() {
		t.Fatal("a new address was not seen")
	}
	if m.changed() {
		t.Fatal("the same change reported twice")
	}
	// The real source works on this machine and is sorted.
	if got := interfaceAddrs(); len(got) > 1 && got[0] > got[1] {
		t.Fatalf("interface addresses not sorted: %v", got)
	}
}

// TestPolledAddressChangeRebinds: when polling sees the interface addresses
// change, the socket moves its connections to a new local socket by itself.
func TestPolledAddressChangeRebinds(t *testing.T) {
	n := newNet(t)
	var addrs atomic.Value
	addrs.Store([]string{"wlan0 10.0.0.2/24"})
	cfg := fastConfig()
	cfg.NetworkPollInterval = 10 * time.Millisecond
	cfg.interfaceAddrs = func() []string { return addrs.Load().([]string) }
	laptop := vnetSocket(t, cfg, listenAt(n, netip.MustParseAddrPort("198.18.0.10:5000")), listenAt(n, netip.MustParseAddrPort("198.18.0.11:5000")))
	server := vnetSocket(t, fastConfig(), listenAt(n, publicA))
	cl, cs := connectPair(t, laptop, server, nil, []netip.AddrPort{publicA})
	sub, stop := cs.SubscribePath()
	defer stop()

	addrs.Store([]string{"usb0 198.18.0.11/24"})
	p := waitPath(t, sub, func(p PathInfo) bool { return p.Remote.Addr() == netip.MustParseAddr("198.18.0.11") })
	if p.Reason != ReasonPeerMoved || cl.Path().Reason != ReasonRebound {
		t.Fatalf("server path %+v, laptop path %+v", p, cl.Path())
	}
	roundTrip(t, cs, cl, 64<<10)
}
