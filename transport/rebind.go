package transport

import (
	"net/netip"
	"time"
)

// Moving to a new local socket after a network change, make-before-break:
// PINGs from the new carrier to the current remote; the first PONG moves
// the endpoint's sending there, and the peer then sees packets from a new
// address and migrates passively (validation.go).

// rebindProbe is a local move in progress.
type rebindProbe struct {
	carrier  Carrier
	deadline time.Time
	next     time.Time
}

// startRebindLocked begins moving this endpoint to carrier c.
func (e *endpoint) startRebindLocked(c Carrier, now time.Time) {
	if e.state == StateClosed || e.state == StateConnecting {
		return
	}
	e.rebind = &rebindProbe{carrier: c, deadline: now.Add(e.s.cfg.RebindTimeout), next: now}
	e.tickRebindLocked(now)
}

func (e *endpoint) tickRebindLocked(now time.Time) {
	r := e.rebind
	if r == nil {
		return
	}
	if now.After(r.deadline) {
		e.log.Warn("no answer through the new local socket; staying on the old one")
		e.rebind = nil
		e.s.carrierReleased()
		return
	}
	if now.Before(r.next) {
		return
	}
	if p := e.path.Load(); p != nil {
		e.sendPingLocked(r.carrier, p.remote, pingRebind)
	}
	r.next = now.Add(e.s.cfg.ValidationRetransmit)
}

// reboundLocked moves the path to carrier c after a rebind PING through it
// was answered from the current remote.
func (e *endpoint) reboundLocked(c Carrier, from netip.AddrPort) {
	if e.rebind == nil || e.rebind.carrier != c {
		return
	}
	if cur := e.path.Load(); cur != nil && cur.remote == from {
		e.setPathLocked(c, from, ReasonRebound)
	}
	e.rebind = nil
	e.s.carrierReleased()
}

// localChangedLocked reacts to a change of this machine's network, with c
// the new local socket: a rebind to it, and since the active path may have
// died with the old network (a NAT that filters by address and port drops
// packets from this side's new public address), the path is suspect
// (liveness.go) and the peer's candidates are probed from c. It returns the
// relay session, which the caller closes outside the lock: its TCP
// connection left through the old network, so the endpoint joins the
// relay again from the new one.
func (e *endpoint) localChangedLocked(c Carrier, now time.Time) *relayCarrier {
	if e.state == StateClosed || e.state == StateConnecting {
		return nil
	}
	e.startRebindLocked(c, now)
	if p := e.path.Load(); p != nil && p.carrier.Kind() != PathRelay {
		e.suspectLocked(now, "the local network changed", true)
	} else {
		e.repunchLocked(now)
	}
	select {
	case e.relayWake <- struct{}{}:
	default:
	}
	return e.relay
}
