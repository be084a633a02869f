package transport

import (
	"crypto/rand"
	"net/netip"
	"time"
)

// PINGs of an established connection: keepalives on the active path (they
// hold NAT mappings open and measure the RTT) and rebind probes from a new
// local socket (rebind.go). Each is answered by a PONG echoing its random
// ID from the address it was sent to, on the carrier it left from.

// maxPings bounds the PINGs awaiting their PONG: a rebind sends one per
// retransmission gap for up to the rebind timeout, keepalives one per
// period; the oldest is forgotten beyond this.
const maxPings = 64

type pingPurpose int

const (
	pingKeepalive pingPurpose = iota
	pingRebind
	pingUpgrade
)

type pingProbe struct {
	sent    time.Time
	carrier Carrier
	remote  netip.AddrPort
	purpose pingPurpose
}

// tickKeepaliveLocked sends the keepalive PING when it is due.
func (e *endpoint) tickKeepaliveLocked(now time.Time) {
	if now.Before(e.nextKeep) {
		return
	}
	if p := e.path.Load(); p != nil {
		e.sendPingLocked(p.carrier, p.remote, pingKeepalive)
		e.noteSent(now)
	}
	e.nextKeep = now.Add(e.s.cfg.KeepAlive)
	if e.relay != nil && !now.Before(e.nextRelayKeep) {
		if p := e.path.Load(); p == nil || p.carrier != Carrier(e.relay) {
			e.sendPingLocked(e.relay, e.relay.remote, pingKeepalive)
		}
		e.nextRelayKeep = now.Add(relayKeepAlive)
	}
}

func (e *endpoint) sendPingLocked(c Carrier, to netip.AddrPort, purpose pingPurpose) {
	if len(e.pings) >= maxPings {
		e.forgetOldestPingLocked()
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	e.pings[id] = &pingProbe{sent: time.Now(), carrier: c, remote: to, purpose: purpose}
	e.sendEstablishedLocked(c, to, &ControlPacket{Type: CtrlPing, Data: id})
}

func (e *endpoint) forgetOldestPingLocked() {
	delete(e.pings, oldest(e.pings, func(p *pingProbe) time.Time { return p.sent }))
}

// expirePingsLocked forgets PINGs unanswered for PingTimeout.
func (e *endpoint) expirePingsLocked(now time.Time) {
	for id, p := range e.pings {
		if now.Sub(p.sent) > e.s.cfg.PingTimeout {
			delete(e.pings, id)
		}
	}
}

// handlePongLocked matches a PONG to its PING: the same ID, from the address
// the PING went to, on the carrier it left from.
func (e *endpoint) handlePongLocked(p *ControlPacket, from netip.AddrPort, c Carrier) {
	probe, ok := e.pings[p.Data]
	if !ok || probe.carrier != c || probe.remote != from {
		return
	}
	delete(e.pings, p.Data)
	e.rtt = time.Since(probe.sent)
	switch probe.purpose {
	case pingKeepalive:
		e.pongOnPathLocked(probe)
	case pingRebind:
		e.reboundLocked(c, from)
	case pingUpgrade:
		e.upgradedLocked(c, from)
	}
}
