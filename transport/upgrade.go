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

// repunchLocked probes every direct candidate of the peer afresh, even on
// a direct path, for repunchFor: after a change on either side (announce.go,
// liveness.go) both sides' probes must cross to open their NATs for each
// other.
func (e *endpoint) repunchLocked(now time.Time) {
	if e.policy == RelayOnly {
		return
	}
	e.repunchUntil = now.Add(repunchFor)
	for _, a := range e.direct {
		e.upgrade[a] = &candidate{next: now, gap: e.s.cfg.ProbeInterval}
	}
	if p := e.path.Load(); p != nil && p.carrier.Kind() == PathDirectUDP {
		// The peer's current address, which it may never have offered
		// (learned from its packets), from this side's newest socket.
		e.upgrade[p.remote] = &candidate{next: now, gap: e.s.cfg.ProbeInterval}
	}
}

// tickUpgradeLocked sends the upgrade PINGs that are due while the active
// path is relayed, or for a while after a change (repunchLocked).
func (e *endpoint) tickUpgradeLocked(now time.Time) {
	p := e.path.Load()
	if len(e.upgrade) == 0 || p == nil {
		return
	}
	if p.carrier.Kind() == PathDirectUDP && now.After(e.repunchUntil) {
		clear(e.upgrade)
		return
	}
	newest := e.s.newestCarrier()
	for addr, cand := range e.upgrade {
		if now.Before(cand.next) {
			continue
		}
		c := newest
		if cand.carrier != nil { // a punched TCP connection
			if e.tcp == nil || cand.carrier != Carrier(e.tcp) {
				delete(e.upgrade, addr)
				continue
			}
			c = cand.carrier
		}
		e.sendPingLocked(c, addr, pingUpgrade)
		cand.probed(now, maxUpgradeInterval)
	}
}

// upgradedLocked acts on a PONG to an upgrade PING: a direct path to from
// works both ways. From a relay or TCP path the dialer moves there, while
// the acceptor waits for the dialer's packets from there. From a suspect
// direct path either side moves (reported as a migration); a healthy
// direct path stays, and the peer's own move reaches it passively.
func (e *endpoint) upgradedLocked(c Carrier, from netip.AddrPort) {
	p := e.path.Load()
	if p == nil {
		return
	}
	switch {
	case p.carrier.Kind() != PathDirectUDP:
		if e.role != RoleDialer {
			return
		}
		e.setPathLocked(c, from, ReasonUpgraded)
	case e.suspectSince.IsZero() || p.carrier == c && p.remote == from:
		delete(e.upgrade, from)
		return
	default:
		e.setPathLocked(c, from, ReasonMigrated)
	}
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
// is paid from the send budget the peer's PING earned. A side whose direct
// path is suspect does the same, whatever its role.
func (e *endpoint) maybeUpgradeTowardsLocked(c Carrier, from netip.AddrPort) {
	p := e.path.Load()
	switch {
	case p == nil || c.Kind() != PathDirectUDP:
		return
	case p.carrier.Kind() != PathDirectUDP && e.role != RoleDialer:
		return
	case p.carrier.Kind() == PathDirectUDP && (e.suspectSince.IsZero() || p.remote == from):
		return
	}
	if e.budget.spend(from, MinControlLen) {
		e.sendPingLocked(c, from, pingUpgrade)
	}
}
