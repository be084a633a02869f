package transport

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// Announcing candidates. After this side's network changed, or its path
// went silent, the Socket learns its new candidates (Socket.SetGatherer)
// and each endpoint tells its peer in a CANDIDATES packet: on the active
// path if it still works, and through the relay session, which survives a
// move (relay_rejoin.go). The peer replaces its list of this side's direct
// candidates and probes them at once from its own socket (upgrade.go):
// those probes open the peer's NAT for this side's probes, which is what
// a NAT that filters by address and port needs before anything gets in.
//
// CANDIDATES is resent, its gap doubling, until the peer acknowledges its
// generation or announceFor passes. It is sent only on proven paths and
// under the attempt's keys (encrypted, control_candidates.go), and its
// acknowledgement is shorter than it, so it amplifies nothing. A
// relay-only connection never announces: its peer must not learn this
// side's addresses.

const (
	// announceFor bounds the resending of one announcement: a peer that
	// hears nothing for this long has a bigger problem (the reconnect
	// window takes over).
	announceFor = 15 * time.Second
	// maxAnnounceGap caps the gap between resends.
	maxAnnounceGap = 2 * time.Second
	// minAnnounceGap is the least time between two of the peer's lists
	// that this side adopts: each starts fresh probes to up to
	// maxAnnounced addresses, which a hostile peer must not renew at
	// will, and an honest peer moves far less often.
	minAnnounceGap = time.Second
)

// announcement is this side's newest candidate list on its way to the peer.
type announcement struct {
	gen   uint64
	cands []Announced
	next  time.Time
	gap   time.Duration
	until time.Time
}

// announceLocked starts delivering cands to the peer as a new generation.
func (e *endpoint) announceLocked(cands []Announced, now time.Time) {
	if e.policy == RelayOnly || e.established == nil || e.state == StateClosed {
		return
	}
	e.ownGen++
	e.announce = &announcement{gen: e.ownGen, cands: announceable(cands), next: now, gap: e.s.cfg.ValidationRetransmit, until: now.Add(announceFor)}
	e.tickAnnounceLocked(now)
}

// announceable is cands as the wire carries them: usable addresses only,
// unmapped, each with a known type (inferred where the gatherer gave none).
func announceable(cands []Announced) []Announced {
	out := make([]Announced, 0, min(len(cands), maxAnnounced))
	for _, c := range cands {
		c.Addr = UnmapAddrPort(c.Addr)
		if !UsableCandidate(c.Addr) || len(out) == maxAnnounced {
			continue
		}
		if !c.Type.peerMayAnnounce() {
			c.Type = inferCandidateType(c.Addr)
		}
		out = append(out, c)
	}
	return out
}

// tickAnnounceLocked resends the pending announcement when it is due.
func (e *endpoint) tickAnnounceLocked(now time.Time) {
	a := e.announce
	if a == nil {
		return
	}
	if now.After(a.until) {
		e.log.Debug("the peer never acknowledged this side's candidates", "generation", a.gen)
		e.announce = nil
		return
	}
	if now.Before(a.next) {
		return
	}
	a.next = now.Add(a.gap)
	a.gap = min(2*a.gap, maxAnnounceGap)
	var gen [8]byte
	binary.BigEndian.PutUint64(gen[:], a.gen)
	p := e.path.Load()
	if p != nil {
		e.sendEstablishedLocked(p.carrier, p.remote, &ControlPacket{Type: CtrlCandidates, Data: gen})
	}
	if e.relay != nil && (p == nil || p.carrier != Carrier(e.relay)) {
		e.sendEstablishedLocked(e.relay, e.relay.remote, &ControlPacket{Type: CtrlCandidates, Data: gen})
	}
}

// handleCandidatesLocked takes the peer's authenticated, fresh CANDIDATES
// from (c, from): it acknowledges it there and, if it is newer than any
// before, adopts the list.
func (e *endpoint) handleCandidatesLocked(p *ControlPacket, from netip.AddrPort, c Carrier) {
	cands, err := openCandidates(p, &e.established.keys.sealRecv)
	if err != nil {
		e.counters.controlDropped.Add(1)
		e.log.Debug("malformed candidates from the peer", "err", err)
		return
	}
	gen := binary.BigEndian.Uint64(p.Data[:])
	now := time.Now()
	if gen > e.peerGen && now.Sub(e.peerAnnounced) < minAnnounceGap {
		// Unacknowledged, so resent later: a peer cannot make this side
		// probe a fresh list of addresses faster than once a gap.
		return
	}
	e.sendEstablishedLocked(c, from, &ControlPacket{Type: CtrlCandidatesAck, Data: p.Data})
	if gen <= e.peerGen {
		return // a resend, or older than what the peer said since
	}
	e.peerGen, e.peerAnnounced = gen, now
	e.peerCandidatesLocked(cands, now)
}

// handleCandidatesAckLocked ends the announcement the peer acknowledged.
func (e *endpoint) handleCandidatesAckLocked(p *ControlPacket) {
	if a := e.announce; a != nil && binary.BigEndian.Uint64(p.Data[:]) == a.gen {
		e.announce = nil
		// The peer punches TCP towards this side's new candidates now
		// (peerCandidatesLocked); simultaneous open needs both at once.
		e.repunchTCPLocked()
	}
}

// SplitAnnounced sorts cands into UDP and TCP addresses, as Peer takes
// them, and the type of each.
func SplitAnnounced(cands []Announced) (udp, tcp []netip.AddrPort, types map[netip.AddrPort]CandidateType) {
	types = make(map[netip.AddrPort]CandidateType, len(cands))
	for _, c := range cands {
		types[c.Addr] = c.Type
		if c.TCP {
			tcp = append(tcp, c.Addr)
		} else {
			udp = append(udp, c.Addr)
		}
	}
	return udp, tcp, types
}

// peerCandidatesLocked makes cands the peer's direct candidates and probes
// them at once.
func (e *endpoint) peerCandidatesLocked(cands []Announced, now time.Time) {
	if e.policy == RelayOnly {
		return
	}
	udp, tcp, types := SplitAnnounced(cands)
	e.direct = usableCandidates(udp)
	e.peerTCP = usableCandidates(tcp)
	e.candTypes = types
	e.log.Info("the peer announced new candidates", "udp", len(e.direct), "tcp", len(e.peerTCP))
	e.repunchLocked(now)
	e.repunchTCPLocked()
}

// UpdatePeerCandidates replaces the peer's direct candidates with cands,
// learned out of band (the rendezvous mailbox, when no relay carries
// CANDIDATES), and probes them at once, as if the peer had announced them.
func (c *Conn) UpdatePeerCandidates(cands []Announced) {
	e := c.ep
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state == StateClosed {
		return
	}
	e.peerCandidatesLocked(announceable(cands), time.Now())
}

// RelayJoined reports whether the connection has a relay session up: the
// fallback of its direct path, and the way its candidates reach the peer
// after a change.
func (c *Conn) RelayJoined() bool {
	c.ep.mu.Lock()
	defer c.ep.mu.Unlock()
	return c.ep.relay != nil
}
