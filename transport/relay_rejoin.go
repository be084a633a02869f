package transport

import (
	"context"
	"time"
)

// Rejoining the relay. A relay session ends for both sides when the relay
// server goes away (restarted, redeployed), either side's TCP connection
// breaks, or either side joins again from a new network (the server gives
// the newcomer the side's place: relay_server.go). A connection whose
// active path was that session would then have no path until quic-go's
// idle timeout and a reconnect; instead both sides join the relay again
// with the same pairing token, and the connection moves to the new
// session, its streams intact. A session that does not carry the
// connection is rejoined too: it is the fallback when a direct path dies
// (liveness.go) and the way candidates reach a peer after a move
// (announce.go). After a local network change this side closes its
// session itself, since its TCP connection left through the old network,
// and a rejoin loop that waits is woken to try at once.

// Rejoin schedule: the first try at once (a restarted server is back
// within a second or two), then gaps doubling to relayRejoinMaxGap, so a
// long outage costs one TCP connection attempt per gap.
const (
	relayRejoinFirstGap = 200 * time.Millisecond
	relayRejoinMaxGap   = 5 * time.Second
)

// carrierLost is called by the reader of one of e's own carriers (a relay
// session, a TCP connection) when it ended.
func (e *endpoint) carrierLost(c ownedCarrier) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.tcp != nil && Carrier(e.tcp) == c {
		e.tcp = nil // the connection idles out, and reconnects, if it was the path
		return
	}
	rc, ok := c.(*relayCarrier)
	if !ok || e.relay != rc || e.state == StateClosed {
		return
	}
	e.relay = nil
	if e.relayAddr == "" || e.policy == DirectOnly || e.rejoining {
		return
	}
	e.rejoining = true
	e.log.Info("relay session ended; joining the relay again", "relay", e.relayAddr)
	e.s.wg.Add(1)
	go func() {
		defer e.s.wg.Done()
		e.rejoinRelay(rc)
	}()
}

// rejoinRelay joins the relay again until it pairs or the endpoint closes,
// and moves the path from the lost session old to the new one.
func (e *endpoint) rejoinRelay(old *relayCarrier) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-e.done:
			cancel()
		case <-stop:
		}
	}()
	defer func() {
		e.mu.Lock()
		e.rejoining = false
		e.mu.Unlock()
	}()
	gap := relayRejoinFirstGap
	for {
		rc, woken, err := e.dialRelayOnce(ctx)
		if err == nil {
			e.adoptRelay(rc, old)
			return
		}
		if ctx.Err() != nil {
			return
		}
		if woken {
			gap = relayRejoinFirstGap
			continue
		}
		e.log.Debug("relay rejoin failed", "err", err, "retry in", gap)
		select {
		case <-ctx.Done():
			return
		case <-e.relayWake:
			gap = relayRejoinFirstGap // a new network: try it at once
			continue
		case <-time.After(gap):
		}
		gap = min(gap*2, relayRejoinMaxGap)
	}
}

// dialRelayOnce joins the relay once; a network change while it dials or
// waits for the peer abandons the try (it went out through the old
// network) and the loop tries again at once.
func (e *endpoint) dialRelayOnce(ctx context.Context) (rc *relayCarrier, woken bool, err error) {
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-e.relayWake:
			cancel()
		case <-stop:
		}
	}()
	rc, err = dialRelay(dctx, e.relayAddr, e.pairing.relay, e.role)
	close(stop)
	<-watched
	woken = err != nil && ctx.Err() == nil && dctx.Err() != nil
	return rc, woken, err
}

// adoptRelay makes rc the endpoint's relay session and, if the connection
// was still on the lost session old, its path.
func (e *endpoint) adoptRelay(rc *relayCarrier, old *relayCarrier) {
	rc.ep = e
	if !e.s.addOwnedCarrier(rc) { // outside e.mu: see joinRelay
		_ = rc.Close()
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state == StateClosed {
		_ = rc.Close()
		return
	}
	e.relay = rc
	now := time.Now()
	e.nextRelayKeep = now.Add(relayKeepAlive)
	if p := e.path.Load(); p != nil && p.carrier == Carrier(old) {
		e.setPathLocked(rc, rc.remote, ReasonRelayRejoined)
		e.nextKeep = now // tell the peer at once which way this side is now
	}
	if a := e.announce; a != nil {
		a.next = now // the peer may hear of this side's move only this way
		e.tickAnnounceLocked(now)
	}
}
