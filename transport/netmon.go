package transport

import (
	"net"
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

// interfaceAddrs lists the up, non-loopback interfaces' addresses, sorted.
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
			out = append(out, ifc.Name+" "+a.String())
		}
	}
	slices.Sort(out)
	return out
}
