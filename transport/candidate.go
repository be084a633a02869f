package transport

import "net/netip"

// MaxPeerCandidates bounds the candidate addresses of a peer that Connect
// probes; an offer carrying more is cut to this many (the first ones win).
const MaxPeerCandidates = 32

// UsableCandidate reports whether a peer may name ap as an address to probe:
// a valid unicast address and a non-zero port. Unspecified, multicast and
// the limited broadcast address are refused, so that a malicious or broken
// offer cannot turn ferry's probes into a broadcast or a multicast flood.
func UsableCandidate(ap netip.AddrPort) bool {
	a := ap.Addr().Unmap()
	switch {
	case !a.IsValid(), ap.Port() == 0, a.IsUnspecified(), a.IsMulticast():
		return false
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return false
	}
	return true
}

// usableCandidates returns the usable ones of cands, unmapped, without
// duplicates, at most MaxPeerCandidates.
func usableCandidates(cands []netip.AddrPort) []netip.AddrPort {
	out := make([]netip.AddrPort, 0, min(len(cands), MaxPeerCandidates))
	seen := make(map[netip.AddrPort]bool, len(cands))
	for _, c := range cands {
		c = UnmapAddrPort(c)
		if len(out) == MaxPeerCandidates || !UsableCandidate(c) || seen[c] {
			continue
		}
		seen[c] = true
		out = append(out, c)
	}
	return out
}

// CandidateType says how an address of the peer was learned. It orders the
// probes of a connection attempt (a host address first: on a shared
// network it is the shortest path; then a port its router mapped; see
// preference) and names the remote end of a path. The numbers are on the
// wire (CANDIDATES packets), so new types are added at the end.
type CandidateType uint8

// Candidate types.
const (
	// CandidateHost is an address of one of the peer's own interfaces.
	CandidateHost CandidateType = iota + 1
	// CandidateServerReflexive is the peer's public address as a server saw
	// it (STUN for UDP, the rendezvous server's address query for TCP).
	CandidateServerReflexive
	// CandidatePeerReflexive was learned from the peer's own packets: a
	// NAT mapping no server saw (a symmetric NAT's, or one that rebound).
	CandidatePeerReflexive
	// CandidateRelay is the pairing's session at the relay.
	CandidateRelay
	// CandidatePortMapped is a public address the peer's router mapped to
	// its socket on request (NAT-PMP, PCP, UPnP IGD): it lets packets in
	// from anyone, so it works even behind a symmetric NAT.
	CandidatePortMapped
)

// preference orders probes: host addresses, then a mapped port, then
// what a server saw, then what the peer's packets showed.
func (t CandidateType) preference() int {
	switch t {
	case CandidateHost:
		return 0
	case CandidatePortMapped:
		return 1
	case CandidateServerReflexive:
		return 2
	case CandidatePeerReflexive:
		return 3
	}
	return 4
}

// peerMayAnnounce reports whether a peer may say its address is of type t:
// every type but the relay, which names no address of the peer's.
func (t CandidateType) peerMayAnnounce() bool {
	return t >= CandidateHost && t <= CandidatePortMapped && t != CandidateRelay
}

func (t CandidateType) String() string {
	switch t {
	case CandidateHost:
		return "host"
	case CandidateServerReflexive:
		return "srflx"
	case CandidatePeerReflexive:
		return "prflx"
	case CandidateRelay:
		return "relay"
	case CandidatePortMapped:
		return "mapped"
	}
	return "unknown"
}

// ParseCandidateType is the inverse of String; ok is false for anything else.
func ParseCandidateType(s string) (t CandidateType, ok bool) {
	for t := CandidateHost; t <= CandidatePortMapped; t++ {
		if t.String() == s {
			return t, true
		}
	}
	return 0, false
}

// inferCandidateType is the type of an offered address whose type the
// offer does not say (a peer before typed offers): a private, loopback or
// link-local address is a host address, anything else was seen by a server.
func inferCandidateType(a netip.AddrPort) CandidateType {
	ip := a.Addr().Unmap()
	if ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() {
		return CandidateHost
	}
	return CandidateServerReflexive
}
