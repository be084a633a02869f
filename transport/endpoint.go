package transport

import (
	"crypto/rand"
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
	quicIn, controlIn, reflected, queueDrops, writeErrors atomic.Uint64
	challengesSent, validationsFailed, pathChanges        atomic.Uint64
}

// maxPendingWrites bounds what the accepting side buffers from quic-go while
// it still waits for its first PONG.
const maxPendingWrites = 32

// maxPassiveValidations bounds the validations that packets from new source
// addresses may start at once, so spoofed packets cannot make an endpoint
// send unbounded challenges.
const maxPassiveValidations = 4

// endpoint is one peer as seen by the Socket: its keys, its active path, the
// validations in flight and the queue feeding its quic.Transport. The hot
// paths (receiveQUIC, send) only load the active path atomically; everything
// else runs under mu.
type endpoint struct {
	s        *Socket
	tag      routerTag
	keys     peerKeys
	role     Role
	log      *slog.Logger
	vc       *vconn
	path     atomic.Pointer[path]
	counters endpointCounters

	mu         sync.Mutex
	state      State
	candidates map[netip.AddrPort]time.Time // connecting: address -> next probe time
	// peerAddrs (acceptor, connecting) are addresses the dialer proved with
	// an authenticated control packet: its QUIC packets from one of them
	// establish the path.
	peerAddrs   map[netip.AddrPort]bool
	probeGap    time.Duration
	validations map[netip.AddrPort]*validation
	holdDown    map[netip.AddrPort]time.Time
	pings       map[[8]byte]*pingProbe
	rebind      *rebindProbe
	nextKeep    time.Time
	rtt         time.Duration
	seq         uint64
	pending     [][]byte
	subs        map[chan PathInfo]struct{}
	established chan struct{} // closed when the first path is up
	done        chan struct{} // closed by close
}

type pingPurpose int

const (
	pingConnect pingPurpose = iota
	pingKeepalive
	pingRebind
)

type pingProbe struct {
	sent    time.Time
	carrier Carrier
	remote  netip.AddrPort
	purpose pingPurpose
}

// rebindProbe is a local move in progress: PINGs from a new carrier to the
// current remote; the first PONG moves the path there.
type rebindProbe struct {
	carrier  Carrier
	deadline time.Time
	next     time.Time
}

func newEndpoint(s *Socket, tag routerTag, keys peerKeys, role Role, candidates []netip.AddrPort) *endpoint {
	e := &endpoint{
		s:           s,
		tag:         tag,
		keys:        keys,
		role:        role,
		log:         s.log.With("peer", tag, "role", role.String()),
		candidates:  make(map[netip.AddrPort]time.Time),
		peerAddrs:   make(map[netip.AddrPort]bool),
		probeGap:    s.cfg.ProbeInterval,
		validations: make(map[netip.AddrPort]*validation),
		holdDown:    make(map[netip.AddrPort]time.Time),
		pings:       make(map[[8]byte]*pingProbe),
		subs:        make(map[chan PathInfo]struct{}),
		established: make(chan struct{}),
		done:        make(chan struct{}),
	}
	now := time.Now()
	for _, c := range candidates {
		e.candidates[unmapAddrPort(c)] = now
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
		for addr, next := range e.candidates {
			if now.Before(next) {
				continue
			}
			e.sendPingLocked(e.s.primaryCarrier(), addr, pingConnect, 0)
			e.candidates[addr] = now.Add(e.probeGap)
		}
		e.probeGap = min(e.probeGap*3/2, e.s.cfg.MaxProbeInterval)
	default:
		e.tickValidationsLocked(now)
		e.tickRebindLocked(now)
		if !now.Before(e.nextKeep) {
			if p := e.path.Load(); p != nil {
				e.sendPingLocked(p.carrier, p.remote, pingKeepalive, FlagPrimary)
			}
			e.nextKeep = now.Add(e.s.cfg.KeepAlive)
		}
	}
	for a, until := range e.holdDown {
		if now.After(until) {
			delete(e.holdDown, a)
		}
	}
	for id, p := range e.pings {
		if now.Sub(p.sent) > e.s.cfg.PingTimeout {
			delete(e.pings, id)
		}
	}
}

// receiveQUIC takes a QUIC packet routed to this endpoint. A packet from an
// address other than the active path's remote starts passive migration; the
// packet itself is handed to quic-go either way (QUIC authenticates it).
func (e *endpoint) receiveQUIC(pb *pktBuf, from netip.AddrPort) {
	e.counters.quicIn.Add(1)
	p := e.path.Load()
	if p == nil && e.role == RoleAcceptor {
		e.mu.Lock()
		e.maybeFollowDialerLocked(from)
		e.mu.Unlock()
	}
	if p != nil && p.remote != from {
		e.mu.Lock()
		e.maybeStartPassiveLocked(from)
		e.mu.Unlock()
	}
	e.vc.deliver(pb)
}

// send writes one of quic-go's packets (or a GSO batch) on the active path.
// Network errors are swallowed as loss: quic-go would close the connection on
// a write error, while ferry expects to survive a network change.
func (e *endpoint) send(b []byte, segSize int) error {
	p := e.path.Load()
	if p == nil {
		e.bufferPending(b)
		return nil
	}
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

func (e *endpoint) bufferPending(b []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state == StateConnecting && len(e.pending) < maxPendingWrites {
		e.pending = append(e.pending, append([]byte(nil), b...))
	}
}

// handleControl acts on an authenticated control packet from (c, from).
func (e *endpoint) handleControl(p *ControlPacket, from netip.AddrPort, c Carrier) {
	e.counters.controlIn.Add(1)
	if (p.Flags&FlagFromAcceptor != 0) == (e.role == RoleAcceptor) {
		// Our own packet reflected back at us.
		e.counters.reflected.Add(1)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state == StateClosed {
		return
	}
	switch p.Type {
	case CtrlPing, CtrlPunch:
		e.sendControlLocked(c, from, &ControlPacket{Type: CtrlPong, Data: p.Data, Observed: from})
		if e.state == StateConnecting {
			e.addPeerReflexiveLocked(from)
			e.peerAddrs[from] = true
		}
	case CtrlPong:
		e.handlePongLocked(p, from, c)
		return
	case CtrlPathChallenge:
		e.sendControlLocked(c, from, &ControlPacket{Type: CtrlPathResponse, Data: p.Data, Observed: from})
	case CtrlPathResponse:
		e.handlePathResponseLocked(p, from, c)
		return
	}
	if p.Flags&FlagPrimary != 0 {
		e.maybeStartPassiveLocked(from)
	}
}

// addPeerReflexiveLocked learns a candidate address from the peer's own
// authenticated packet (its NAT's mapping, as ICE does) and lets QUIC
// packets from it reach this endpoint before the path is up.
func (e *endpoint) addPeerReflexiveLocked(from netip.AddrPort) {
	if _, ok := e.candidates[from]; !ok {
		e.candidates[from] = time.Now()
		e.sendPingLocked(e.s.primaryCarrier(), from, pingConnect, 0)
		e.candidates[from] = time.Now().Add(e.probeGap)
	}
	e.s.router.addAddr(from, e.tag)
}

func (e *endpoint) handlePongLocked(p *ControlPacket, from netip.AddrPort, c Carrier) {
	probe, ok := e.pings[p.Data]
	if !ok || probe.carrier != c || probe.remote != from {
		return
	}
	delete(e.pings, p.Data)
	e.rtt = time.Since(probe.sent)
	switch probe.purpose {
	case pingConnect:
		if e.state != StateConnecting {
			break
		}
		if e.role == RoleAcceptor {
			// The dialer picks the path; this address is one it may pick.
			e.peerAddrs[from] = true
			e.s.router.addAddr(from, e.tag)
			break
		}
		e.establishLocked(c, from)
	case pingRebind:
		if e.rebind != nil && e.rebind.carrier == c {
			cur := e.path.Load()
			if cur != nil && cur.remote == from {
				e.setPathLocked(c, from, ReasonRebound)
			}
			e.rebind = nil
			e.s.carrierReleased()
		}
	}
}

// establishLocked makes (c, from) the first path and releases Connect.
func (e *endpoint) establishLocked(c Carrier, from netip.AddrPort) {
	e.setPathLocked(c, from, ReasonEstablished)
	e.state = StateEstablished
	e.nextKeep = time.Now().Add(e.s.cfg.KeepAlive)
	clear(e.candidates)
	clear(e.peerAddrs)
	e.s.router.retainAddrs(e.tag, from)
	close(e.established)
	e.flushPendingLocked()
}

// maybeFollowDialerLocked establishes the acceptor's path on the first QUIC
// packet of the dialer, from the address the dialer's packets come from.
// Only the dialer chooses among the candidate pairs that answered: if each
// side took the first pair answering it, they could choose different
// address families or interfaces, and the QUIC handshake would go to an
// address the other side no longer routes. The address must have proven
// itself with an authenticated control packet.
func (e *endpoint) maybeFollowDialerLocked(from netip.AddrPort) {
	if e.state == StateConnecting && e.peerAddrs[from] {
		e.establishLocked(e.s.primaryCarrier(), from)
	}
}

func (e *endpoint) flushPendingLocked() {
	p := e.path.Load()
	for _, b := range e.pending {
		_ = p.carrier.WriteTo(b, 0, p.remote)
	}
	e.pending = nil
}

// setPathLocked makes (c, remote) the active path, updates the router's
// address map and tells subscribers.
func (e *endpoint) setPathLocked(c Carrier, remote netip.AddrPort, reason PathChangeReason) {
	old := e.path.Load()
	e.seq++
	info := PathInfo{Kind: c.Kind(), Local: c.LocalAddr(), Remote: remote, Seq: e.seq, Reason: reason, Since: time.Now(), RTT: e.rtt}
	e.path.Store(&path{carrier: c, remote: remote, info: info})
	if old != nil {
		e.counters.pathChanges.Add(1)
		if old.remote != remote {
			e.s.router.removeAddr(old.remote, e.tag)
			// Packets still in flight from the old address must not start
			// a validation back to it.
			e.holdDown[old.remote] = time.Now().Add(e.s.cfg.HoldDown)
		}
	}
	e.s.router.addAddr(remote, e.tag)
	e.log.Info("path changed", "kind", info.Kind.String(), "local", info.Local, "remote", remote, "reason", string(reason), "seq", info.Seq)
	for ch := range e.subs {
		offerLatest(ch, info)
	}
}

// offerLatest puts info on ch without blocking, dropping the oldest queued
// value when ch is full so the newest path is always delivered.
func offerLatest(ch chan PathInfo, info PathInfo) {
	for {
		select {
		case ch <- info:
			return
		default:
		}
		select {
		case <-ch:
		default:
		}
	}
}

func (e *endpoint) sendPingLocked(c Carrier, to netip.AddrPort, purpose pingPurpose, flags byte) {
	var id [8]byte
	_, _ = rand.Read(id[:])
	e.pings[id] = &pingProbe{sent: time.Now(), carrier: c, remote: to, purpose: purpose}
	e.sendControlLocked(c, to, &ControlPacket{Type: CtrlPing, Flags: flags, Data: id})
}

// sendControlLocked fills in the session, role and primary flag and sends.
// A packet leaving on the active path's carrier is marked primary.
func (e *endpoint) sendControlLocked(c Carrier, to netip.AddrPort, p *ControlPacket) {
	p.Session = e.keys.session
	if e.role == RoleAcceptor {
		p.Flags |= FlagFromAcceptor
	}
	if cur := e.path.Load(); cur != nil && cur.carrier == c {
		p.Flags |= FlagPrimary
	}
	var buf [MaxControlLen]byte
	b := AppendControl(buf[:0], p, e.keys.control)
	if err := c.WriteTo(b, 0, to); err != nil {
		e.counters.writeErrors.Add(1)
	}
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
		e.sendPingLocked(r.carrier, p.remote, pingRebind, 0)
	}
	r.next = now.Add(e.s.cfg.ValidationRetransmit)
}

// usesCarrier reports whether the endpoint still sends on, or is moving to, c.
func (e *endpoint) usesCarrier(c Carrier) bool {
	if p := e.path.Load(); p != nil && p.carrier == c {
		return true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rebind != nil && e.rebind.carrier == c
}

func (e *endpoint) stateNow() State {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.state
}

func (e *endpoint) subscribe() (<-chan PathInfo, func()) {
	ch := make(chan PathInfo, 8)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state == StateClosed {
		close(ch)
		return ch, func() {}
	}
	e.subs[ch] = struct{}{}
	return ch, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if _, ok := e.subs[ch]; ok {
			delete(e.subs, ch)
			close(ch)
		}
	}
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
	e.pending = nil
	e.mu.Unlock()
	e.s.router.remove(e)
	_ = e.vc.Close()
	e.s.carrierReleased()
}
