package transfer

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"ferry/discovery/portmap"
	"ferry/transport"
)

// Timing of the session's router port mapping.
const (
	// portMapLifetime is the lifetime asked for; the keeper renews at
	// half of it, so a crashed ferry leaves a mapping for at most this
	// long.
	portMapLifetime = 10 * time.Minute
	// portMapWait is how long gathering candidates waits for the first
	// mapping: PCP and NAT-PMP answer within a LAN round trip, and a
	// router that does not answer must not hold the code back. A mapping
	// that comes later is announced like any new candidate.
	portMapWait = 300 * time.Millisecond
)

// portMapper keeps a router port mapping (PCP, NAT-PMP or UPnP IGD) of
// the session's UDP socket while the session lives, so that a peer can
// reach this side through its router even behind a symmetric NAT. The
// mapped address is a candidate of its own type, probed right after host
// addresses. It maps again when the socket's port changes (a rebind after
// a network change) and deletes the mapping when the session ends.
type portMapper struct {
	log *slog.Logger
	// changed is called when the mapped address changes (a mapping that
	// came after the offer, or a new one after a loss), so the peer hears
	// of it; it must not block.
	changed func()

	mu     sync.Mutex
	port   uint16          // the port kept mapped; 0 for none
	keeper *portmap.Keeper // nil when off
	latest portmap.Update
	first  chan struct{} // closed at the keeper's first update
	// tried: a keeper has run before; maps: one of them got a mapping.
	// After a keeper that got none, gathering does not wait for the next:
	// a router that maps nothing must not slow the announcement after a
	// network change (a late mapping is announced by itself).
	tried, maps bool
	wg          sync.WaitGroup
}

// mapped returns the socket's mapped public address, starting (or
// restarting, for a new port) the keeper as needed and waiting up to
// portMapWait for its first answer. It returns false when there is no
// mapping (yet).
func (m *portMapper) mapped(ctx context.Context, sock *transport.Socket) (netip.AddrPort, bool) {
	local := sock.LocalAddr()
	if !portMappable(local.Addr()) {
		return netip.AddrPort{}, false
	}
	m.mu.Lock()
	var old *portmap.Keeper
	wait := true
	if m.port != local.Port() {
		old = m.keeper
		wait = !m.tried || m.maps
		m.tried = true
		m.startLocked(local.Port())
	}
	first := m.first
	m.mu.Unlock()
	if old != nil {
		old.Close() // deletes the old port's mapping; bounded
	}
	if !wait {
		return netip.AddrPort{}, false
	}
	t := time.NewTimer(portMapWait)
	defer t.Stop()
	select {
	case <-first:
	case <-t.C:
	case <-ctx.Done():
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.latest.External, m.latest.External.IsValid()
}

// portMappable reports whether a socket bound to local can be reached
// through the router's mapping: one bound to every address, or to a
// private one (the router maps to the address we talk to it from). A
// loopback socket (tests, --listen 127.0.0.1:0) never asks the router.
func portMappable(local netip.Addr) bool {
	return local.IsUnspecified() || local.Unmap().IsPrivate()
}

// startLocked starts a keeper for port; m.mu is held.
func (m *portMapper) startLocked(port uint16) {
	k := portmap.Keep(context.Background(), portmap.Config{Logger: m.log}, "udp", port, portMapLifetime)
	first := make(chan struct{})
	m.port, m.keeper, m.first, m.latest = port, k, first, portmap.Update{}
	m.wg.Go(func() {
		once := sync.OnceFunc(func() { close(first) })
		defer once()
		for u := range k.Updates() {
			m.mu.Lock()
			current := m.keeper == k
			moved := current && u.External.IsValid() && u.External != m.latest.External
			if current {
				m.latest = u
			}
			if u.External.IsValid() {
				m.maps = true
			}
			m.mu.Unlock()
			if u.External.IsValid() && u.Renewals == 0 {
				m.log.Info("router port mapping", "protocol", string(u.Protocol), "public", u.External)
			}
			once()
			if moved && m.changed != nil {
				m.changed()
			}
		}
	})
}

// close deletes the mapping, if any (bounded: half a second at most),
// and waits for the keeper.
func (m *portMapper) close() {
	m.mu.Lock()
	k := m.keeper
	m.keeper, m.port, m.latest = nil, 0, portmap.Update{}
	m.mu.Unlock()
	if k != nil {
		k.Close()
	}
	m.wg.Wait()
}
