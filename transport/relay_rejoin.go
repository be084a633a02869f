package transport

import (
	"context"
	"time"
)

// Rejoining the relay. A relay session ends for both sides when the relay
// server goes away (restarted, redeployed) or either side's TCP connection
// breaks. A connection whose active path was that session would then have
// no path until quic-go's idle timeout and a reconnect; instead both sides
// join the relay again with the same pairing token, and the connection
// moves to the new session, its streams intact.

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
	p := e.path.Load()
	if p == nil || p.carrier != Carrier(rc) || e.relayAddr == "" {
		return // not carrying the connection: nothing to restore
	}
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
	gap := relayRejoinFirstGap
	for {
		rc, err := dialRelay(ctx, e.relayAddr, e.pairing.relay, e.role)
		if err == nil {
			e.adoptRelay(rc, old)
			return
		}
		if ctx.Err() != nil {
			return
		}
		e.log.Debug("relay rejoin failed", "err", err, "retry in", gap)
		select {
		case <-ctx.Done():
			return
		case <-time.After(gap):
		}
		gap = min(gap*2, relayRejoinMaxGap)
	}
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
	if p := e.path.Load(); p != nil && p.carrier == Carrier(old) {
		e.setPathLocked(rc, rc.remote, ReasonRelayRejoined)
		e.nextKeep = time.Now() // tell the peer at once which way this side is now
	}
}
