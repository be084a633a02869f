package transport

import (
	"net/netip"
	"time"
)

// Upgrading: a connection that came up through a relay (or a punched TCP
// connection) keeps probing the peer's offered direct candidates with
// PINGs from the newest local socket, while both sides do so at once (each side's PINGs open its own
// NAT's mapping for the other's). The dialer moves to the first candidate
// whose PONG comes back, make-before-break; the acceptor follows its QUIC
// packets from there by passive migration. Both report ReasonUpgraded.

// maxUpgradeInterval is the slowest gap between upgrade PINGs to one
// candidate: a direct path that appears later (a NAT mapping that opens, a
// network that stops dropping UDP) is found within it, at a cost of one
// small packet per candidate per gap.
const maxUpgradeInterval = 5 * time.Second

// startUpgradeLocked schedules upgrade probes to every direct candidate.
func (e *endpoint) startUpgradeLocked(now time.Time) {
	if e.policy == RelayOnly {
		return
	}
	for _, a := range e.direct {
		e.upgrade[a] = &candidate{next: now, gap: e.s.cfg.ProbeInterval}
	}
}

// tickUpgradeLocked sends the upgrade PINGs that are due while the active
// path is relayed.
func (e *endpoint) tickUpgradeLocked(now time.Time) {
	p := e.path.Load()
	if len(e.upgrade) == 0 || p == nil || p.carrier.Kind() == PathDirectUDP {
		return
	}
	c := e.s.newestCarrier()
	for addr, cand := range e.upgrade {
		if now.Before(cand.next) {
			continue
		}
		e.sendPingLocked(c, addr, pingUpgrade)
		cand.probed(now, maxUpgradeInterval)
	}
}

// upgradedLocked acts on a PONG to an upgrade PING: a direct path to from
// works both ways. The dialer moves there; the acceptor waits for the
// dialer's packets from there.
func (e *endpoint) upgradedLocked(c Carrier, from netip.AddrPort) {
	p := e.path.Load()
	if e.role != RoleDialer || p == nil || p.carrier.Kind() == PathDirectUDP {
		return
	}
	e.setPathLocked(c, from, ReasonUpgraded)
	clear(e.upgrade)
	// A PING on the new path at once, flagged as sent on the active path:
	// the acceptor follows on it even while this side has no data to send.
	e.nextKeep = time.Now()
	e.tickKeepaliveLocked(e.nextKeep)
}

// maybeUpgradeTowardsLocked answers the peer's upgrade PING, which reached
// the dialer directly through c from from while the connection is on TCP
// or the relay, with an upgrade PING of the dialer's own: a direct path
// that just opened (the peer's NAT has a mapping towards us now) is taken
// one round trip later instead of at the dialer's next scheduled PING. It
// is paid from the send budget the peer's PING earned.
func (e *endpoint) maybeUpgradeTowardsLocked(c Carrier, from netip.AddrPort) {
	p := e.path.Load()
	if e.role != RoleDialer || p == nil || p.carrier.Kind() == PathDirectUDP || c.Kind() != PathDirectUDP {
		return
	}
	if e.budget.spend(from, MinControlLen) {
		e.sendPingLocked(c, from, pingUpgrade)
	}
}
