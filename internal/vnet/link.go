package vnet

import (
	"net/netip"
	"time"
)

// Link describes impairments of the path between IPs. Impairments match a
// packet by its wire addresses: the public addresses of the packet on the
// internet (the sender's NAT public IP, not its private IP), or the private
// addresses of a packet on a NAT's LAN. Loss, Down and Reorder are decided
// when the packet is sent.
type Link struct {
	Loss    float64       // probability in [0, 1] that a packet is dropped
	Delay   time.Duration // one-way delay
	Jitter  time.Duration // uniform random extra delay in [0, Jitter)
	Reorder float64       // probability that a packet gets an extra 2*Delay+1ms, so later ones overtake it
	Down    bool          // black hole: drop everything
}

// normalize clamps probabilities to [0, 1] and durations to >= 0.
func (l Link) normalize() Link {
	l.Loss = min(max(l.Loss, 0), 1)
	l.Reorder = min(max(l.Reorder, 0), 1)
	l.Delay = max(l.Delay, 0)
	l.Jitter = max(l.Jitter, 0)
	return l
}

// ipPair is an unordered pair of IPs.
type ipPair struct{ a, b netip.Addr }

func makePair(a, b netip.Addr) ipPair {
	if b.Less(a) {
		a, b = b, a
	}
	return ipPair{a, b}
}

// SetLink sets the impairments for packets between IPs a and b, in both
// directions, replacing earlier ones. A zero Link removes them. It may be
// called at any time; packets already in flight are not affected.
func (n *Network) SetLink(a, b netip.Addr, l Link) {
	l = l.normalize()
	key := makePair(normAddr(a), normAddr(b))
	n.mu.Lock()
	defer n.mu.Unlock()
	if l == (Link{}) {
		delete(n.links, key)
	} else {
		n.links[key] = l
	}
}

// SetHostLink sets the impairments for every packet to or from IP a,
// whatever the peer, replacing earlier ones. A zero Link removes them. They
// combine with SetLink impairments and with the peer's host impairments:
// loss and reorder probabilities combine as independent events, delays and
// jitters add, and Down wins.
func (n *Network) SetHostLink(a netip.Addr, l Link) {
	l = l.normalize()
	a = normAddr(a)
	n.mu.Lock()
	defer n.mu.Unlock()
	if l == (Link{}) {
		delete(n.hostLinks, a)
	} else {
		n.hostLinks[a] = l
	}
}

// impairment is the combination of the Links that apply to a packet.
type impairment struct {
	loss, reorder float64
	delay, jitter time.Duration
	down          bool
}

func (imp *impairment) add(l Link) {
	imp.down = imp.down || l.Down
	imp.loss = 1 - (1-imp.loss)*(1-l.Loss)
	imp.reorder = 1 - (1-imp.reorder)*(1-l.Reorder)
	imp.delay += l.Delay
	imp.jitter += l.Jitter
}

// impairmentLocked combines the impairments for a packet from src to dst.
func (n *Network) impairmentLocked(src, dst netip.Addr) impairment {
	var imp impairment
	if len(n.links) == 0 && len(n.hostLinks) == 0 {
		return imp
	}
	if l, ok := n.links[makePair(src, dst)]; ok {
		imp.add(l)
	}
	if l, ok := n.hostLinks[src]; ok {
		imp.add(l)
	}
	if dst != src {
		if l, ok := n.hostLinks[dst]; ok {
			imp.add(l)
		}
	}
	return imp
}
