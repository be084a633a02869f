package transport

import (
	"net/netip"
	"time"
)

// Liveness of the active path. A path can die without any local sign: the
// peer's laptop left its Wi-Fi, a NAT on the way rebound or rebooted. The
// endpoint notices by silence: it has been sending (QUIC packets, a
// keepalive PING) for DefaultPathSilence without hearing anything back on
// the active path. A local network change makes the path suspect at once
// (rebind.go). A suspect path:
//
//   - asks the Socket for fresh candidates of this side, announced to the
//     peer (announce.go), since this side's public address may be what
//     changed;
//   - probes every candidate of the peer from the newest local socket
//     (upgrade.go), and moves to the first that answers;
//   - falls back to the relay after fallbackDelay, if a relay session is
//     up, reporting ReasonFallback. The peer follows there (followRelay),
//     and the relayed connection moves back to a direct path as soon as
//     one answers, like any relayed connection.
//
// Hearing from the active path again clears the suspicion of a silent
// path. After a local network change hearing proves nothing (the old
// network may still deliver the peer's packets while this side's go out
// through the new one, from an address the peer's NAT drops): only a PONG
// to a keepalive PING sent on the path after the change clears it, or a
// move.

// noteHeard records that an authenticated or QUIC packet arrived on the
// active path. Called on the hot path: one atomic store.
func (e *endpoint) noteHeard() { e.unanswered.Store(0) }

// noteSent records that something that expects an answer left on the
// active path: the first such send after the last packet heard starts the
// silence clock.
func (e *endpoint) noteSent(now time.Time) {
	if e.unanswered.Load() == 0 {
		e.unanswered.CompareAndSwap(0, now.UnixNano())
	}
}

// silenceLimit is how long the active path may stay silent while this side
// sends before it is suspect: DefaultPathSilence, plus a few round trips of
// a slow path.
func (e *endpoint) silenceLimit() time.Duration {
	return e.s.cfg.PathSilence + 4*e.rtt
}

// fallbackDelay is how long a suspect path gets to recover (a rebind PING
// answered, a direct candidate answering) before the connection falls back
// to the relay: a few round trips.
func (e *endpoint) fallbackDelay() time.Duration {
	return max(minFallbackDelay, 4*e.rtt)
}

// tickLivenessLocked notices a silent path, clears the suspicion when the
// path speaks again, and falls back to the relay when it stays suspect.
func (e *endpoint) tickLivenessLocked(now time.Time) {
	p := e.path.Load()
	if p == nil {
		return
	}
	since := e.unanswered.Load()
	switch {
	case e.suspectSince.IsZero() && since != 0 && now.Sub(time.Unix(0, since)) > e.silenceLimit():
		e.suspectLocked(now, "the path went silent", false)
	case !e.suspectSince.IsZero() && since == 0 && !e.suspectLocal:
		e.log.Info("path answers again")
		e.suspectSince = time.Time{}
		e.flushStashLocked()
	}
	if e.suspectSince.IsZero() || p.carrier.Kind() == PathRelay || e.relay == nil || e.policy == DirectOnly {
		return
	}
	if now.Sub(e.suspectSince) >= e.fallbackDelay() {
		e.fallBackLocked(p)
	}
}

// suspectLocked marks the active path suspect (see the top of the file);
// local says this side's network changed.
func (e *endpoint) suspectLocked(now time.Time, why string, local bool) {
	if e.state == StateConnecting || e.state == StateClosed {
		return
	}
	if e.suspectSince.IsZero() || local {
		e.log.Info("active path suspect", "why", why)
		e.suspectSince = now
		e.suspectLocal = local
		e.stash.on.Store(true)
		// Only what is heard from now on clears the suspicion.
		e.unanswered.Store(now.UnixNano())
		// A keepalive at once: its PONG is the quickest proof that the
		// path still works both ways.
		e.nextKeep = now
	}
	e.repunchLocked(now)
	if !local {
		e.s.requestGather() // after a local change the rebind asks once for all
	}
}

// pongOnPathLocked clears a suspicion when the PONG to a keepalive PING
// sent after it began came back on the active path.
func (e *endpoint) pongOnPathLocked(probe *pingProbe) {
	p := e.path.Load()
	if e.suspectSince.IsZero() || p == nil || probe.carrier != p.carrier || probe.remote != p.remote || probe.sent.Before(e.suspectSince) {
		return
	}
	e.log.Info("path answers again")
	e.suspectSince = time.Time{}
	e.flushStashLocked()
}

// fallBackLocked moves the connection from its suspect path p to the relay
// session, and keeps probing p's remote among the direct candidates in
// case it comes back.
func (e *endpoint) fallBackLocked(p *path) {
	if p.carrier.Kind() == PathDirectUDP && !e.hasDirect(p.remote) && e.policy != RelayOnly {
		e.upgrade[p.remote] = &candidate{next: time.Now(), gap: e.s.cfg.ProbeInterval}
	}
	e.setPathLocked(e.relay, e.relay.remote, ReasonFallback)
	// Tell the peer at once which way this side sends now (followRelay).
	e.nextKeep = time.Now()
	e.tickKeepaliveLocked(e.nextKeep)
}

func (e *endpoint) hasDirect(a netip.AddrPort) bool {
	for _, d := range e.direct {
		if d == a {
			return true
		}
	}
	return false
}

// followRelayLocked follows the peer to the relay: an authenticated, fresh
// control packet that the peer sent on its active path arrived through the
// relay session while this side's path is a better kind. A path is never
// given up passively for a worse one on a stale claim: only a claim newer
// (by the peer's packet counter) than the latest the peer made on the
// current path counts.
func (e *endpoint) followRelayLocked(c Carrier, from netip.AddrPort, counter uint64) {
	if e.relay == nil || c != Carrier(e.relay) || e.policy == DirectOnly {
		return
	}
	cur := e.path.Load()
	if cur == nil || cur.carrier == c || counter <= e.activeClaim {
		return
	}
	e.activeClaim = counter
	e.log.Info("the peer moved to the relay; following")
	e.fallBackLocked(cur)
}
