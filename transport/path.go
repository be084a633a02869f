package transport

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// State is an endpoint's place in its state machine:
//
//	Connecting --address proven--> Established <--response/timeout-- ValidatingPath
//	                                |  new source address / Migrate --^
//	any state --Close, idle timeout--> Closed
type State int

// Endpoint states.
const (
	// StateConnecting probes the peer's candidate addresses; no path yet.
	StateConnecting State = iota
	// StateEstablished has a validated path and no validation in flight.
	StateEstablished
	// StateValidatingPath is Established with at least one path validation
	// in flight; traffic keeps flowing on the old path meanwhile.
	StateValidatingPath
	// StateClosed is final.
	StateClosed
)

func (s State) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateEstablished:
		return "established"
	case StateValidatingPath:
		return "validating-path"
	case StateClosed:
		return "closed"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// PathChangeReason says why the active path changed.
type PathChangeReason string

// Reasons for a path change, as reported in PathInfo.
const (
	ReasonEstablished PathChangeReason = "established"
	// ReasonPeerMoved: the peer's packets came from a new address, which was validated.
	ReasonPeerMoved PathChangeReason = "peer-moved"
	// ReasonMigrated: Migrate validated a new remote address.
	ReasonMigrated PathChangeReason = "migrated"
	// ReasonRebound: this side moved to a new local socket after a network change.
	ReasonRebound PathChangeReason = "rebound"
	// ReasonUpgraded: a relayed connection moved to a direct path.
	ReasonUpgraded PathChangeReason = "upgraded"
	// ReasonRelayRejoined: the relay session carrying the connection ended
	// and a new one with the same peer took its place.
	ReasonRelayRejoined PathChangeReason = "relay-rejoined"
	// ReasonFallback: the direct path went silent or this side's network
	// changed, and the connection moved to the relay (liveness.go).
	ReasonFallback PathChangeReason = "fallback"
)

// PathPolicy says which kinds of path a connection may use.
type PathPolicy int

// Path policies.
const (
	// AnyPath connects over whichever path is up first, direct or relayed,
	// and moves from a relay to a direct path when one comes up.
	AnyPath PathPolicy = iota
	// DirectOnly never uses a relay.
	DirectOnly
	// RelayOnly uses only the relay: the peer never learns this side's
	// addresses from ferry's packets (tests, and users who must not
	// expose them).
	RelayOnly
)

// PathInfo describes an endpoint's active path.
type PathInfo struct {
	Kind   PathKind
	Local  netip.AddrPort
	Remote netip.AddrPort
	// Seq counts path changes, starting at 1 for the first path.
	Seq    uint64
	Reason PathChangeReason
	// Since is when this path became active.
	Since time.Time
	// RTT is the latest round-trip time measured on the path by PING/PONG
	// (zero before the first sample).
	RTT time.Duration
	// RemoteType says how the remote address was learned: offered as a
	// host or server-reflexive address, learned from the peer's packets,
	// or the relay.
	RemoteType CandidateType
}

// IsLocalNetwork reports whether the remote address is on a local network
// (private, link-local or loopback), which callers show as "Local network".
func (p PathInfo) IsLocalNetwork() bool {
	a := p.Remote.Addr()
	return a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast()
}

// path is an endpoint's active path: which carrier sends and to where.
// It is immutable; a change swaps the pointer.
type path struct {
	carrier Carrier
	remote  netip.AddrPort
	info    PathInfo
}

// setPathLocked makes (c, remote) the active path, updates the router's
// address map and tells subscribers.
func (e *endpoint) setPathLocked(c Carrier, remote netip.AddrPort, reason PathChangeReason) {
	old := e.path.Load()
	e.seq++
	if old != nil && c.Kind().rank() < old.carrier.Kind().rank() {
		reason = ReasonUpgraded
	}
	info := PathInfo{Kind: c.Kind(), Local: c.LocalAddr(), Remote: remote, Seq: e.seq, Reason: reason, Since: time.Now(), RTT: e.rtt,
		RemoteType: e.candidateTypeLocked(c, remote)}
	e.path.Store(&path{carrier: c, remote: remote, info: info})
	e.suspectSince = time.Time{}
	e.unanswered.Store(0)
	e.flushStashLocked()
	if old != nil {
		e.counters.pathChanges.Add(1)
		if old.remote != remote || old.carrier != c {
			e.vc.newPath()
		}
		if old.remote != remote {
			if old.carrier.Kind() == PathDirectUDP {
				e.s.router.removeAddr(old.remote, e.tag)
			}
			// Packets still in flight from the old address must not start
			// a validation back to it.
			e.holdDown[old.remote] = time.Now().Add(e.s.cfg.HoldDown)
		}
	}
	e.budget.forget(remote)
	if c.Kind() == PathDirectUDP {
		// Relayed and TCP packets are routed by their carrier; every
		// relayed pair shares the relay's address.
		e.s.router.addAddr(remote, e.tag)
	}
	e.log.Info("path changed", "kind", info.Kind.String(), "local", info.Local, "remote", remote, "type", info.RemoteType.String(), "reason", string(reason), "seq", info.Seq)
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

// candidateTypeLocked is how the peer's address remote, reached through c,
// was learned.
func (e *endpoint) candidateTypeLocked(c Carrier, remote netip.AddrPort) CandidateType {
	if c.Kind() == PathRelay {
		return CandidateRelay
	}
	if t, ok := e.candTypes[remote]; ok {
		return t
	}
	if slices.Contains(e.direct, remote) || c.Kind() == PathDirectTCP {
		return inferCandidateType(remote)
	}
	return CandidatePeerReflexive
}
