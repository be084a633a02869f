package transport

import (
	"cmp"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"slices"
	"time"
)

// Connecting: how the two endpoints of one pairing agree on a fresh attempt
// and prove each other's addresses before the QUIC handshake.
//
// Each Connect draws a random nonce; the attempt's keys come from the
// pairing key and both nonces (keys.go). Every message answers exactly one
// received message with one of the same length, so no address draws more
// than it sends:
//
//	A -> B  HELLO(Na)                        hello key: replayable, so answered, never believed
//	B -> A  PROBE(Nb, Na, data=cB)           attempt keys; A's own Na makes it fresh
//	A -> B  PROBE(Na, Nb, data=cA, echo=cB)  B's challenge answered from A's address: proven to B
//	B -> A  PROBE(Nb, Na, echo=cA)           A's challenge answered from B's address: proven to A
//
// A side keeps asking (a challenge in each answer) until the other's
// address is proven to it. The dialer (A or B) establishes on a PROBE that
// proves an address and asks nothing more, since then its own address is
// proven to the acceptor too, and starts the QUIC handshake there; the
// acceptor follows the dialer's first QUIC packet if it comes from an
// address proven to it. A lost message is made up for by the sides'
// probe schedules towards the offered candidates. Challenges are stateless
// cookies (an HMAC over the address, the carrier, the peer's nonce and a
// coarse clock), so HELLOs replayed from any number of spoofed sources
// cost no state; PROBEs pass a replay window per peer nonce. Nothing
// recorded in an earlier attempt carries this attempt's nonce, so none of
// it is accepted.

// maxPeerAttempts bounds the fresh peer nonces remembered in one attempt:
// the peer's current Connect and a few it restarted.
const maxPeerAttempts = 4

// attempt is an endpoint's connection attempt: its nonce, what it knows of
// the peer's, the offered candidates it probes and (acceptor) the addresses
// proven to it.
type attempt struct {
	nonce      Nonce
	secret     [32]byte                         // keys the challenge cookies
	peers      []*peerAttempt                   // fresh peer nonces, newest first
	heard      []*peerAttempt                   // keys of nonces only heard in HELLOs, newest first
	candidates map[netip.AddrPort]*candidate    // offered by the peer
	proven     map[netip.AddrPort]provenAddress // acceptor: answered a challenge
	// heldBack (dialer) is the best proven path other than direct UDP (a
	// TCP connection, the relay), kept back until heldUntil in case a
	// direct UDP path is proven too.
	heldBack  *provenAddress
	heldFrom  netip.AddrPort
	heldUntil time.Time
}

// peerAttempt is one pairing of our nonce with a peer nonce: its keys and
// the replay window of the peer's packets under them.
type peerAttempt struct {
	nonce  Nonce
	keys   attemptKeys
	window replayWindow
}

// candidate is the probe schedule of one address of the peer: offered, or
// the relay.
type candidate struct {
	next    time.Time
	gap     time.Duration
	carrier Carrier // nil: the newest local socket
}

// probed schedules the next probe after one sent at now: the gap grows by
// half per probe, up to maxGap.
func (c *candidate) probed(now time.Time, maxGap time.Duration) {
	c.next = now.Add(c.gap)
	c.gap = min(c.gap*3/2, maxGap)
}

// pushFront puts pa first in list, which holds at most maxPeerAttempts.
func pushFront(list []*peerAttempt, pa *peerAttempt) []*peerAttempt {
	if len(list) == maxPeerAttempts {
		list = list[:maxPeerAttempts-1]
	}
	return append([]*peerAttempt{pa}, list...)
}

// provenAddress is an address that answered the acceptor's challenge: the
// carrier it answered on and the peer nonce it answered under.
type provenAddress struct {
	carrier Carrier
	peer    *peerAttempt
}

func newAttempt(offered []netip.AddrPort, now time.Time, gap time.Duration) *attempt {
	a := &attempt{
		candidates: make(map[netip.AddrPort]*candidate),
		proven:     make(map[netip.AddrPort]provenAddress),
	}
	_, _ = rand.Read(a.nonce[:])
	_, _ = rand.Read(a.secret[:])
	for _, c := range usableCandidates(offered) {
		a.candidates[c] = &candidate{next: now, gap: gap}
	}
	return a
}

// latest is the newest fresh peer nonce, or nil before the peer proved one.
func (a *attempt) latest() *peerAttempt {
	if len(a.peers) == 0 {
		return nil
	}
	return a.peers[0]
}

// peerForLocked returns the remembered keys for peer nonce n (known), or
// keys not yet proven fresh: the packet under them must verify first. Keys
// derived for nonces only heard of are kept a while too, so that a flood
// of one replayed HELLO costs one derivation, not one per packet.
func (e *endpoint) peerForLocked(n Nonce) (pa *peerAttempt, known bool) {
	a := e.attempt
	for _, p := range a.peers {
		if p.nonce == n {
			return p, true
		}
	}
	for _, p := range a.heard {
		if p.nonce == n {
			return p, false
		}
	}
	pa = &peerAttempt{nonce: n, keys: e.pairing.attempt(e.role, a.nonce, n)}
	a.heard = pushFront(a.heard, pa)
	return pa, false
}

// remember makes pa the newest fresh peer nonce.
func (a *attempt) remember(pa *peerAttempt) {
	a.heard = slices.DeleteFunc(a.heard, func(p *peerAttempt) bool { return p == pa })
	for i, p := range a.peers {
		if p == pa {
			copy(a.peers[1:i+1], a.peers[:i])
			a.peers[0] = pa
			return
		}
	}
	a.peers = pushFront(a.peers, pa)
}

// cookie is this endpoint's challenge for (to, c) under the peer nonce,
// valid in clock epoch.
func (a *attempt) cookie(to netip.AddrPort, c Carrier, peer Nonce, epoch int64) [8]byte {
	m := hmac.New(sha256.New, a.secret[:])
	b, _ := to.MarshalBinary()
	m.Write(b)
	b, _ = c.LocalAddr().MarshalBinary()
	m.Write(b)
	m.Write(peer[:])
	m.Write(binary.BigEndian.AppendUint64(nil, uint64(epoch)))
	var out [8]byte
	copy(out[:], m.Sum(nil))
	return out
}

func cookieEpochOf(now time.Time) int64 { return now.UnixNano() / int64(cookieEpoch) }

// validCookie reports whether echo is a challenge this endpoint sent to
// from on c under the peer nonce, in this clock epoch or the one before.
func (a *attempt) validCookie(echo [8]byte, from netip.AddrPort, c Carrier, peer Nonce, now time.Time) bool {
	ep := cookieEpochOf(now)
	for _, e := range []int64{ep, ep - 1} {
		want := a.cookie(from, c, peer, e)
		if hmac.Equal(echo[:], want[:]) {
			return true
		}
	}
	return false
}

// tickConnectingLocked probes the offered candidates that are due, each on
// its own schedule (the gap grows per probe, not per tick).
func (e *endpoint) tickConnectingLocked(now time.Time) {
	if h := e.attempt.heldBack; h != nil && !now.Before(e.attempt.heldUntil) {
		e.establishLocked(h.carrier, e.attempt.heldFrom, h.peer)
		return
	}
	// Due candidates in order of preference: host addresses first (on a
	// shared network the first proven is the shortest path), then the
	// server-reflexive ones, then the relay.
	type dueProbe struct {
		addr netip.AddrPort
		cand *candidate
		c    Carrier
		typ  CandidateType
	}
	var due []dueProbe
	for addr, cand := range e.attempt.candidates {
		if now.Before(cand.next) {
			continue
		}
		c := cand.carrier
		if c == nil {
			c = e.s.newestCarrier()
		}
		due = append(due, dueProbe{addr, cand, c, e.candidateTypeLocked(c, addr)})
	}
	slices.SortFunc(due, func(a, b dueProbe) int {
		return cmp.Or(cmp.Compare(a.typ.preference(), b.typ.preference()), a.addr.Compare(b.addr))
	})
	for _, d := range due {
		e.probeLocked(d.c, d.addr, e.attempt.latest(), [8]byte{}, true, now)
		d.cand.probed(now, e.s.cfg.MaxProbeInterval)
	}
}

// probeLocked sends a HELLO to to when no peer nonce is known, else a PROBE
// answering echo and, when challenge is set, posing this endpoint's
// challenge for the address.
func (e *endpoint) probeLocked(c Carrier, to netip.AddrPort, pa *peerAttempt, echo [8]byte, challenge bool, now time.Time) {
	if pa == nil {
		e.sendControlLocked(c, to, &ControlPacket{Type: CtrlHello, Nonce: e.attempt.nonce}, e.pairing.session, e.pairing.hello.send)
		return
	}
	p := &ControlPacket{Type: CtrlProbe, Echo: echo, Nonce: e.attempt.nonce, PeerNonce: pa.nonce}
	if challenge {
		p.Data = e.attempt.cookie(to, c, pa.nonce, cookieEpochOf(now))
	}
	e.sendControlLocked(c, to, p, e.pairing.session, pa.keys.send)
}

// answerLocked answers a connecting packet of n bytes from (c, to) with one
// PROBE: the request earns its sender's address its length and the answer
// spends as much, so no address draws more than it sent (budget.go).
func (e *endpoint) answerLocked(c Carrier, to netip.AddrPort, pa *peerAttempt, echo [8]byte, challenge bool, n int, now time.Time) {
	e.budget.earn(to, n, now)
	if !e.budget.spend(to, MaxControlLen) {
		return
	}
	e.probeLocked(c, to, pa, echo, challenge, now)
}

// handleHelloLocked answers an authentic HELLO (perhaps a replay) with one
// PROBE of the same length under the keys its nonce gives: only the peer
// holding that nonce now can answer it, so a replay ends there.
func (e *endpoint) handleHelloLocked(b []byte, p *ControlPacket, from netip.AddrPort, c Carrier) {
	if e.state != StateConnecting || VerifyControl(b, e.pairing.hello.recv) != nil {
		e.counters.controlDropped.Add(1) // an established connection answers no HELLO
		return
	}
	e.counters.controlIn.Add(1)
	pa, _ := e.peerForLocked(p.Nonce)
	e.answerLocked(c, from, pa, [8]byte{}, true, len(b), time.Now())
}

// handleProbeLocked acts on a PROBE: fresh only if it names this attempt's
// nonce, authentic under the keys of both nonces, and new to the replay
// window. It proves the sender's address when it echoes our challenge from
// there, and is answered when it poses a challenge of its own.
func (e *endpoint) handleProbeLocked(b []byte, p *ControlPacket, from netip.AddrPort, c Carrier) {
	a := e.attempt
	if p.PeerNonce != a.nonce {
		e.counters.controlDropped.Add(1) // another attempt's: a replay or a straggler
		return
	}
	pa, known := e.peerForLocked(p.Nonce)
	if VerifyControl(b, pa.keys.recv) != nil || !pa.window.accept(p.Counter) {
		e.counters.controlDropped.Add(1)
		return
	}
	e.counters.controlIn.Add(1)
	if !known || a.latest() != pa {
		a.remember(pa)
	}
	if e.state != StateConnecting && e.established != pa {
		return // an established connection answers only its own attempt
	}
	now := time.Now()
	proved := e.state == StateConnecting && p.Echo != [8]byte{} && a.validCookie(p.Echo, from, c, pa.nonce, now)
	// The dialer establishes on an address proven to it by a PROBE that
	// poses no challenge: the acceptor asks no more because our address
	// is proven to it too, and will follow our handshake from there.
	establish := proved && e.role == RoleDialer && p.Data == [8]byte{}
	if p.Data != [8]byte{} {
		_, isProven := a.proven[from]
		var ask bool
		if e.role == RoleDialer {
			ask = e.state == StateConnecting // until an answer without a challenge comes
		} else {
			ask = e.state == StateConnecting && !proved && !isProven
		}
		e.answerLocked(c, from, pa, p.Data, ask, len(b), now)
	}
	switch {
	case establish && c.Kind() != PathDirectUDP && len(e.direct) > 0:
		if a.heldBack == nil {
			a.heldUntil = now.Add(preferDirectFor)
		}
		if a.heldBack == nil || c.Kind().rank() < a.heldBack.carrier.Kind().rank() {
			a.heldBack, a.heldFrom = &provenAddress{carrier: c, peer: pa}, from
		}
	case establish:
		e.establishLocked(c, from, pa)
	case proved && e.role == RoleAcceptor:
		// The dialer picks the path; this address is one it may pick.
		if len(a.proven) < maxAddrsPerEndpoint && e.s.router.addAddr(from, e.tag) {
			a.proven[from] = provenAddress{carrier: c, peer: pa}
		}
	}
}

// maybeFollowDialerLocked establishes the acceptor's path on the first QUIC
// packet of the dialer, from the address the dialer's packets come from.
// Only the dialer chooses among the candidate pairs that answered: if each
// side took the first pair answering it, they could choose different
// address families or interfaces, and the QUIC handshake would go to an
// address the other side no longer routes. The address must have answered
// this endpoint's challenge in this attempt.
func (e *endpoint) maybeFollowDialerLocked(from netip.AddrPort) {
	if e.state != StateConnecting {
		return
	}
	if pr, ok := e.attempt.proven[from]; ok {
		e.establishLocked(pr.carrier, from, pr.peer)
	}
}

// establishLocked makes (c, from) the first path under the attempt keys of
// pa and releases Connect.
func (e *endpoint) establishLocked(c Carrier, from netip.AddrPort, pa *peerAttempt) {
	e.established = pa
	if !e.s.router.addSession(pa.keys.session, e) {
		e.log.Warn("attempt session ID collides with another endpoint's; control packets of this connection are not routed")
	}
	e.setPathLocked(c, from, ReasonEstablished)
	e.state = StateEstablished
	e.nextKeep = time.Now() // the first keepalive measures the RTT at once
	clear(e.attempt.candidates)
	clear(e.attempt.proven)
	if c.Kind() != PathDirectUDP {
		// Packets of a relay or TCP path are routed by their carrier.
		e.s.router.retainAddrs(e.tag, netip.AddrPort{})
		e.startUpgradeLocked(time.Now())
	} else {
		e.s.router.retainAddrs(e.tag, from)
	}
	close(e.up)
}

// relayPairedLocked adds the relay session as a candidate path: probed at
// once, on its own schedule, like an offered address.
func (e *endpoint) relayPairedLocked(rc *relayCarrier, now time.Time) {
	e.relay = rc
	if e.state == StateConnecting {
		e.attempt.candidates[rc.remote] = &candidate{next: now, gap: e.s.cfg.ProbeInterval, carrier: rc}
		e.tickConnectingLocked(now)
	}
}
