package transport

import (
	"net"
	"net/netip"
	"slices"
)

// netMonitor notices network changes by comparing the network's
// fingerprint (interface addresses and default routes, networkFingerprint)
// between looks: after a kernel notification, and on a poll. Callers that
// hear of changes sooner (the GUI on wake-up, a platform API) call
// Socket.NetworkChanged directly.
type netMonitor struct {
	addrs func() []string
	last  []string
}

// newNetMonitor watches addrs, by default the network's fingerprint.
func newNetMonitor(addrs func() []string) *netMonitor {
	if addrs == nil {
		addrs = networkFingerprint
	}
	return &netMonitor{addrs: addrs, last: addrs()}
}

// changed reports whether the address set differs from the previous poll.
func (m *netMonitor) changed() bool {
	now := m.addrs()
	if slices.Equal(now, m.last) {
		return false
	}
	m.last = now
	return true
}

// interfaceAddrs lists the up, non-loopback interfaces' addresses, sorted,
// without link-local ones: ferry never uses them, and an IPv6 link-local
// address appears a second or two after its link (duplicate address
// detection), which must not count as a move.
func interfaceAddrs() []string {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []string
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if pfx, err := netip.ParsePrefix(a.String()); err == nil && pfx.Addr().IsLinkLocalUnicast() {
				continue
			}
			out = append(out, ifc.Name+" "+a.String())
		}
	}
	slices.Sort(out)
	return out
}
