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
		c = unmapAddrPort(c)
		if len(out) == MaxPeerCandidates || !UsableCandidate(c) || seen[c] {
			continue
		}
		seen[c] = true
		out = append(out, c)
	}
	return out
}
