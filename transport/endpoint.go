package transport

import (
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Role says which side of the QUIC handshake an endpoint plays. Both sides
// probe, validate and migrate alike; only the handshake differs.
type Role int

// Roles.
const (
	// RoleDialer runs the QUIC client.
	RoleDialer Role = iota
	// RoleAcceptor runs the QUIC server.
	RoleAcceptor
)

func (r Role) String() string {
	if r == RoleAcceptor {
		return "acceptor"
	}
	return "dialer"
}

// endpointCounters are monotonically increasing event counts, for tests and
// diagnostics.
type endpointCounters struct {
	quicIn, controlIn, controlDropped, queueDrops, writeErrors atomic.Uint64
	challengesSent, validationsFailed, pathChanges             atomic.Uint64
	largestOut                                                 atomic.Uint64 // bytes
}

// noteOut records the size of a QUIC packet sent (a GSO batch's segment
// size): one load on the hot path, a store only when it grows.
func (k *endpointCounters) noteOut(size int) {
	if n := uint64(size); n > k.largestOut.Load() {
		k.largestOut.Store(n) // only quic-go's one sending goroutine writes
	}
}

// endpoint is one peer as seen by the Socket: its keys, its active path, the
// validations in flight and the queue feeding its quic.Transport. The hot
// paths (receiveQUIC, send) only load the active path atomically; everything
// else runs under mu. The mechanisms live in files of their own: connecting
// (connect.go), keepalive PINGs (ping.go), moving to a new local socket
// (rebind.go), path validation (validation.go), the active path and its
// subscribers (path.go).
type endpoint struct {
	s        *Socket
	tag      routerTag
	cids     *cidGenerator // the connection IDs quic-go issues here
	pairing  pairingKeys
	role     Role
	log      *slog.Logger
	vc       *vconn
	path     atomic.Pointer[path]
	counters endpointCounters
	// unanswered is the UnixNano of the first send on the active path after
	// the last packet heard on it; zero when nothing is awaited
	// (liveness.go).
	unanswered atomic.Int64
	// stash keeps quic-go's newest packets while the path is suspect
	// (stash.go).
	stash stash

	mu            sync.Mutex
	state         State
	policy        PathPolicy
	attempt       *attempt
	relay         *relayCarrier                    // the pairing's session at a relay, once paired
	relayAddr     string                           // the relay server, for rejoining
	rejoining     bool                             // a rejoinRelay loop runs
	relayWake     chan struct{}                    // restarts the rejoin loop's wait after a network change
	nextRelayKeep time.Time                        // the next PING on the relay session while it is not the path
	tcp           *ownedTCP                        // the punched TCP connection, once one authenticated
	candTypes     map[netip.AddrPort]CandidateType // how the peer learned its offered addresses (read-only)
	direct        []netip.AddrPort                 // the peer's offered direct candidates, for upgrades
	peerTCP       []netip.AddrPort                 // the peer's TCP punching addresses, offered or announced
	tcpPunching   bool                             // a repunchTCPLocked runs
	upgrade       map[netip.AddrPort]*candidate    // upgrade probes while the path is relayed or suspect
	repunchUntil  time.Time                        // probes continue on a direct path until then (upgrade.go)
	suspectSince  time.Time                        // the active path is suspect since (liveness.go); zero: healthy
	suspectLocal  bool                             // the suspicion came from a local network change
	activeClaim   uint64                           // the peer's latest active-path packet counter acted on
	announce      *announcement                    // this side's candidates on their way to the peer
	ownGen        uint64                           // the latest generation this side announced
	peerGen       uint64                           // the latest generation the peer announced
	peerAnnounced time.Time                        // when this side adopted it
	established   *peerAttempt                     // the attempt's keys once established
	sent          uint64                           // counter of the last control packet sent
	budget        *sendBudget
	validations   map[netip.AddrPort]*validation
	holdDown      map[netip.AddrPort]time.Time
	pings         map[[8]byte]*pingProbe
	rebind        *rebindProbe
	nextKeep      time.Time
	rtt           time.Duration
	seq           uint64
	subs          map[chan PathInfo]struct{}
	up            chan struct{} // closed when the first path is up
	done          chan struct{} // closed by close
}

func newEndpoint(s *Socket, tag routerTag, keys pairingKeys, role Role, policy PathPolicy, candidates []netip.AddrPort) *endpoint {
	if policy == RelayOnly {
		candidates = nil
	}
	e := &endpoint{
		policy:      policy,
		direct:      usableCandidates(candidates),
		upgrade:     make(map[netip.AddrPort]*candidate),
		s:           s,
		tag:         tag,
		cids:        &cidGenerator{tag: tag},
		pairing:     keys,
		role:        role,
		log:         s.log.With("peer", tag, "role", role.String()),
		attempt:     newAttempt(candidates, time.Now(), s.cfg.ProbeInterval),
		budget:      newSendBudget(),
		validations: make(map[netip.AddrPort]*validation),
		holdDown:    make(map[netip.AddrPort]time.Time),
		pings:       make(map[[8]byte]*pingProbe),
		subs:        make(map[chan PathInfo]struct{}),
		up:          make(chan struct{}),
		done:        make(chan struct{}),
		relayWake:   make(chan struct{}, 1),
	}
	e.vc = newVconn(e, &s.pool)
	return e
}

// run is the endpoint's timer loop: probes, retransmissions, keepalives. It
// exits when the endpoint closes.
func (e *endpoint) run() {
	t := time.NewTicker(e.s.cfg.tick)
	defer t.Stop()
	e.tick(time.Now())
	for {
		select {
		case <-e.done:
			return
		case now := <-t.C:
			e.tick(now)
		}
	}
}

func (e *endpoint) tick(now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch e.state {
	case StateClosed:
		return
	case StateConnecting:
		e.tickConnectingLocked(now)
	default:
		e.tickValidationsLocked(now)
		e.tickRebindLocked(now)
		e.tickKeepaliveLocked(now)
		e.tickLivenessLocked(now)
		e.tickAnnounceLocked(now)
		e.tickUpgradeLocked(now)
	}
	for a, until := range e.holdDown {
		if now.After(until) {
			delete(e.holdDown, a)
		}
	}
	e.expirePingsLocked(now)
	e.budget.expire(now.Add(-e.s.cfg.PingTimeout))
}

// receiveQUIC takes a QUIC packet routed to this endpoint. A packet from an
// address other than the active path's remote starts passive migration; the
// packet itself is handed to quic-go either way (QUIC authenticates it).
func (e *endpoint) receiveQUIC(p rxPkt, from netip.AddrPort, c Carrier) {
	e.counters.quicIn.Add(1)
	path := e.path.Load()
	switch {
	case path != nil && path.remote == from && path.carrier.Kind() == c.Kind():
		e.noteHeard()
	case path == nil && e.role == RoleAcceptor:
		e.mu.Lock()
		e.maybeFollowDialerLocked(from)
		e.mu.Unlock()
	case path != nil && (path.remote != from || path.carrier.Kind() != c.Kind()):
		// (The active remote through another local socket of ours is a
		// straggler to an old socket after a rebind: no lock, no move.)
		e.mu.Lock()
		e.budget.earn(from, len(p.b), time.Now())
		e.maybeStartPassiveLocked(from, c, triggerQUIC)
		e.mu.Unlock()
	}
	e.vc.deliver(p)
}

// send writes one of quic-go's packets (or a GSO batch) on the active path.
// Network errors are swallowed as loss: quic-go would close the connection on
// a write error, while ferry expects to survive a network change. quic-go's
// transport is created only once a path is up, so there always is one.
func (e *endpoint) send(b []byte, segSize int) error {
	p := e.path.Load()
	if p == nil {
		return nil
	}
	e.noteSent(time.Now())
	if segSize > 0 && segSize < len(b) {
		e.counters.noteOut(segSize)
	} else {
		e.counters.noteOut(len(b))
	}
	e.stash.keep(b, segSize)
	if err := p.carrier.WriteTo(b, segSize, p.remote); err != nil {
		if isGSOError(err) {
			return err
		}
		if n := e.counters.writeErrors.Add(1); n == 1 || n%1000 == 0 {
			e.log.Debug("write failed, counting as loss", "err", err, "count", n)
		}
	}
	return nil
}

// handleControl acts on a control packet from (c, from) that names one of
// this endpoint's sessions; b is its wire form, p its parsed fields, not yet
// authenticated.
func (e *endpoint) handleControl(b []byte, p *ControlPacket, from netip.AddrPort, c Carrier) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state == StateClosed {
		return
	}
	if p.Type.connecting() {
		if p.Session != e.pairing.session {
			e.counters.controlDropped.Add(1)
			return
		}
		if p.Type == CtrlHello {
			e.handleHelloLocked(b, p, from, c)
		} else {
			e.handleProbeLocked(b, p, from, c)
		}
		return
	}
	est := e.established
	if est == nil || p.Session != est.keys.session || VerifyControl(b, est.keys.recv) != nil || !est.window.accept(p.Counter) {
		e.counters.controlDropped.Add(1)
		return
	}
	e.counters.controlIn.Add(1)
	e.budget.earn(from, len(b), time.Now())
	cur := e.path.Load()
	onPath := cur != nil && cur.remote == from && cur.carrier.Kind() == c.Kind()
	if onPath {
		e.noteHeard()
	}
	switch p.Type {
	case CtrlPing, CtrlPunch:
		e.sendEstablishedLocked(c, from, &ControlPacket{Type: CtrlPong, Data: p.Data})
		e.maybeUpgradeTowardsLocked(c, from)
	case CtrlPong:
		e.handlePongLocked(p, from, c)
		return
	case CtrlPathChallenge:
		e.sendEstablishedLocked(c, from, &ControlPacket{Type: CtrlPathResponse, Data: p.Data})
	case CtrlPathResponse:
		e.handlePathResponseLocked(p, from, c)
		return
	case CtrlCandidates:
		e.handleCandidatesLocked(p, from, c)
	case CtrlCandidatesAck:
		e.handleCandidatesAckLocked(p)
	}
	if p.Flags&FlagActivePath == 0 {
		return
	}
	switch {
	case onPath:
		e.activeClaim = max(e.activeClaim, p.Counter)
	case e.relay != nil && c == Carrier(e.relay):
		e.followRelayLocked(c, from, p.Counter)
	default:
		e.maybeStartPassiveLocked(from, c, triggerControl)
	}
}

// sendEstablishedLocked sends p under the established attempt's keys.
func (e *endpoint) sendEstablishedLocked(c Carrier, to netip.AddrPort, p *ControlPacket) {
	e.sendControlLocked(c, to, p, e.established.keys.session, e.established.keys.send)
}

// sendControlLocked numbers p, addresses it to session, marks it as sent on
// the active path when it leaves on the active path's carrier, and sends it
// authenticated with key.
func (e *endpoint) sendControlLocked(c Carrier, to netip.AddrPort, p *ControlPacket, session SessionID, key *ControlKey) {
	e.sent++
	p.Session, p.Counter = session, e.sent
	if cur := e.path.Load(); cur != nil && cur.carrier == c {
		p.Flags |= FlagActivePath
	}
	if p.Type == CtrlCandidates && e.announce != nil {
		// The payload's key stream depends on the counter just taken.
		p.Payload = sealCandidates(e.announce.cands, &e.established.keys.sealSend, session, p.Counter)
	}
	var buf [MaxCandidatesLen]byte
	b := AppendControl(buf[:0], p, key)
	if err := c.WriteTo(b, 0, to); err != nil {
		e.counters.writeErrors.Add(1)
	}
}

// usesCarrier reports whether the endpoint still sends on, or is moving to, c.
func (e *endpoint) usesCarrier(c Carrier) bool {
	if p := e.path.Load(); p != nil && p.carrier == c {
		return true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rebind != nil && e.rebind.carrier == c || e.relay != nil && Carrier(e.relay) == c || e.tcp != nil && Carrier(e.tcp) == c
}

func (e *endpoint) stateNow() State {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.state
}

// close moves the endpoint to Closed, fails waiters and leaves the router.
func (e *endpoint) close() {
	e.mu.Lock()
	if e.state == StateClosed {
		e.mu.Unlock()
		return
	}
	e.state = StateClosed
	close(e.done)
	for addr, v := range e.validations {
		v.finish(ErrClosed)
		delete(e.validations, addr)
	}
	for ch := range e.subs {
		close(ch)
	}
	clear(e.subs)
	relay, tcp := e.relay, e.tcp
	e.mu.Unlock()
	if relay != nil {
		_ = relay.Close()
	}
	if tcp != nil {
		_ = tcp.Close()
	}
	e.s.router.remove(e)
	_ = e.vc.Close()
	e.s.carrierReleased()
}
