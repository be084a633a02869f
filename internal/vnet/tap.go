package vnet

import (
	"net/netip"
	"slices"
	"sync"
)

// Reasons reported in [PacketInfo.Reason] for dropped packets.
const (
	ReasonLoss           = "loss"                // dropped by a link's Loss probability
	ReasonLinkDown       = "link down"           // dropped by a link that is Down
	ReasonMTU            = "mtu"                 // injected packet larger than the MTU
	ReasonUnroutable     = "unroutable"          // nobody owns the destination IP (e.g. a private address on the internet)
	ReasonNoListener     = "no listener"         // the destination IP exists but nobody listens on the port
	ReasonNoMapping      = "no mapping"          // a NAT has no mapping for the destination port
	ReasonMappingExpired = "mapping expired"     // a NAT's mapping for the destination port has expired
	ReasonFiltered       = "filtered"            // a NAT's filter rejected the source
	ReasonQueueFull      = "queue full"          // the receiver's queue was full
	ReasonPortsExhausted = "nat ports exhausted" // a NAT ran out of public ports
)

// PacketInfo describes a packet that the network delivered into a receive
// queue or dropped. Src and Dst are the wire addresses: public addresses on
// the internet (after the sender's NAT, before the receiver's NAT), private
// addresses for packets on a NAT's LAN.
type PacketInfo struct {
	Src, Dst netip.AddrPort
	Len      int // payload length in bytes
	// Payload is the packet's payload: valid only during the tap's call,
	// and never to be modified (tests record it to replay it).
	Payload []byte
	Dropped bool   // whether the packet was dropped
	Reason  string // why it was dropped, one of the Reason constants; "" if delivered
}

type tapEntry struct {
	id uint64
	f  func(PacketInfo)
}

// Tap registers f to be called for every packet that the network delivers or
// drops. f is called synchronously, outside the network's locks, from the
// goroutine that wrote the packet or from the scheduler goroutine, possibly
// concurrently; it must not block and must not call [Network.Close], but may
// call other methods of the Network. The returned function removes the tap;
// deliveries already in progress when it is called may still reach f.
func (n *Network) Tap(f func(PacketInfo)) (remove func()) {
	n.mu.Lock()
	n.tapID++
	id := n.tapID
	n.taps = append(slices.Clip(n.taps), tapEntry{id: id, f: f})
	n.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			n.mu.Lock()
			defer n.mu.Unlock()
			n.taps = slices.DeleteFunc(slices.Clone(n.taps), func(e tapEntry) bool { return e.id == id })
		})
	}
}

// callTaps calls every tap in taps with info.
func callTaps(taps []tapEntry, info PacketInfo) {
	for _, t := range taps {
		t.f(info)
	}
}
