package vnet

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"
)

// Default values used for zero fields of [Options].
const (
	DefaultSeed     = 1
	DefaultQueueLen = 4096
	DefaultMTU      = 1500
)

// Options configures a [Network]. The zero value selects the defaults.
type Options struct {
	// Seed seeds the random number generator used for loss, jitter and
	// reordering decisions. Zero selects DefaultSeed.
	Seed int64
	// QueueLen is the receive queue length of every Conn, in packets. Zero
	// selects DefaultQueueLen. A packet arriving at a full queue is dropped,
	// like one arriving at a full socket buffer.
	QueueLen int
	// MTU is the largest datagram payload, in bytes, that may be sent. Zero
	// selects DefaultMTU. IP and UDP headers are not counted. Larger writes
	// fail with an error wrapping syscall.EMSGSIZE.
	MTU int
}

// Network is an in-memory UDP network. Create one with [New] and release it
// with [Network.Close]. All methods are safe for concurrent use.
type Network struct {
	queueLen int
	mtu      int
	start    time.Time

	mu        sync.Mutex
	closed    bool
	rng       *rand.Rand
	direct    map[netip.AddrPort]*Conn // hosts listening on public addresses
	directIPs map[netip.Addr]int       // number of direct conns per IP
	nats      map[netip.Addr]*NAT      // NATs by public IP
	ephemeral uint16                   // next port tried by Listen with port 0
	links     map[ipPair]Link
	hostLinks map[netip.Addr]Link
	taps      []tapEntry // copy-on-write: never modified in place
	tapID     uint64
	sched     scheduler
}

// New returns an empty Network.
func New(opts Options) *Network {
	if opts.QueueLen <= 0 {
		opts.QueueLen = DefaultQueueLen
	}
	if opts.MTU <= 0 {
		opts.MTU = DefaultMTU
	}
	if opts.Seed == 0 {
		opts.Seed = DefaultSeed
	}
	return &Network{
		queueLen:  opts.QueueLen,
		mtu:       opts.MTU,
		start:     time.Now(),
		rng:       rand.New(rand.NewPCG(uint64(opts.Seed), 0x9e3779b97f4a7c15)),
		direct:    make(map[netip.AddrPort]*Conn),
		directIPs: make(map[netip.Addr]int),
		nats:      make(map[netip.Addr]*NAT),
		links:     make(map[ipPair]Link),
		hostLinks: make(map[netip.Addr]Link),
	}
}

// now returns the monotonic time elapsed since the Network was created.
func (n *Network) now() time.Duration { return time.Since(n.start) }

// Close closes every Conn of the network, discards packets in flight and
// stops the scheduler goroutine before returning. Later Listen calls fail
// and Inject does nothing. Close is idempotent and always returns nil. It
// must not be called from a Tap function.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	var conns []*Conn
	for _, c := range n.direct {
		conns = append(conns, c)
	}
	for _, nat := range n.nats {
		for _, c := range nat.hosts {
			conns = append(conns, c)
		}
	}
	exited := n.sched.stopLocked()
	n.mu.Unlock()

	for _, c := range conns {
		c.Close()
	}
	if exited != nil {
		<-exited
	}
	return nil
}

// Listen opens a Conn on a public address, reachable from everywhere without
// NAT, e.g. 198.18.0.1:4000. Port 0 picks a free port. The IP must be a
// concrete address and must not be the public address of a NAT.
func (n *Network) Listen(addr netip.AddrPort) (*Conn, error) {
	addr = normAddrPort(addr)
	if err := checkHostAddr(addr.Addr()); err != nil {
		return nil, listenError(addr, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, listenError(addr, net.ErrClosed)
	}
	if _, ok := n.nats[addr.Addr()]; ok {
		return nil, listenError(addr, os.NewSyscallError("bind", syscall.EADDRNOTAVAIL))
	}
	if addr.Port() == 0 {
		port, ok := allocPort(&n.ephemeral, func(p uint16) bool {
			return n.direct[netip.AddrPortFrom(addr.Addr(), p)] != nil
		})
		if !ok {
			return nil, listenError(addr, os.NewSyscallError("bind", syscall.EADDRINUSE))
		}
		addr = netip.AddrPortFrom(addr.Addr(), port)
	} else if n.direct[addr] != nil {
		return nil, listenError(addr, os.NewSyscallError("bind", syscall.EADDRINUSE))
	}
	c := newConn(n, nil, addr)
	n.direct[addr] = c
	n.directIPs[addr.Addr()]++
	return c, nil
}

// unregister removes a closed Conn from the routing tables.
func (n *Network) unregister(c *Conn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if c.nat != nil {
		c.nat.unregisterLocked(c)
		return
	}
	if n.direct[c.local] == c {
		delete(n.direct, c.local)
		if n.directIPs[c.local.Addr()]--; n.directIPs[c.local.Addr()] <= 0 {
			delete(n.directIPs, c.local.Addr())
		}
	}
}

// Inject sends a copy of b to dst as if a host on the internet at src (which
// need not exist) had sent it: spoofing. The packet takes the same path as
// any packet sent on the internet to dst: link impairments between the two
// IPs, NAT translation and filtering when dst is a NAT's public address, and
// the receive queue. A private dst is unroutable; use [NAT.Inject] to spoof
// packets on a NAT's LAN. Packets larger than the MTU are dropped.
func (n *Network) Inject(src, dst netip.AddrPort, b []byte) {
	n.transmit(nil, nil, normAddrPort(src), normAddrPort(dst), clone(b))
}

// packet is a datagram in flight.
type packet struct {
	data []byte
	src  netip.AddrPort // on the wire; private only on a LAN
	dst  netip.AddrPort // on the wire; private only on a LAN
	from *Conn          // sender, for statistics; nil when injected
	lan  *NAT           // non-nil if the packet travels on this NAT's LAN
}

// transmit carries data from src to dst. from is the sending Conn (nil for
// injected packets) and lan the NAT the sender sits behind (nil for senders on
// the internet), in which case src is the sender's private address.
func (n *Network) transmit(from *Conn, lan *NAT, src, dst netip.AddrPort, data []byte) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	p := packet{data: data, src: src, dst: dst, from: from}
	info, done := n.routeLocked(&p, lan, n.now())
	taps := n.taps
	n.mu.Unlock()
	if done {
		callTaps(taps, info)
	}
}

// routeLocked translates, impairs and then delivers or schedules p. It
// reports whether the packet's fate was decided (done), and if so, how.
func (n *Network) routeLocked(p *packet, lan *NAT, now time.Duration) (info PacketInfo, done bool) {
	if len(p.data) > n.mtu {
		return n.dropLocked(p, ReasonMTU, nil), true
	}
	if lan != nil {
		if lan.onLANLocked(p.dst.Addr()) {
			p.lan = lan
		} else {
			pub, ok := lan.outboundLocked(p.src, p.dst, now)
			if !ok {
				return n.dropLocked(p, ReasonPortsExhausted, nil), true
			}
			p.src = pub
		}
	}
	imp := n.impairmentLocked(p.src.Addr(), p.dst.Addr())
	if imp.down {
		return n.dropLocked(p, ReasonLinkDown, nil), true
	}
	if imp.loss > 0 && (imp.loss >= 1 || n.rng.Float64() < imp.loss) {
		return n.dropLocked(p, ReasonLoss, nil), true
	}
	if !n.sched.scheduleLocked(n, p, now, imp) {
		return PacketInfo{}, false
	}
	return n.deliverLocked(p, now), true
}

// deliverLocked hands p to its receiver: the LAN host, the NAT owning the
// destination IP, or the host listening directly on the destination.
func (n *Network) deliverLocked(p *packet, now time.Duration) PacketInfo {
	var target *Conn
	var reason string
	switch nat := n.nats[p.dst.Addr()]; {
	case p.lan != nil:
		if target = p.lan.hosts[p.dst]; target == nil {
			reason = ReasonNoListener
		}
	case nat != nil:
		target, reason = nat.inboundLocked(p.src, p.dst.Port(), now)
	default:
		if target = n.direct[p.dst]; target == nil {
			reason = ReasonUnroutable
			if n.directIPs[p.dst.Addr()] > 0 {
				reason = ReasonNoListener
			}
		}
	}
	if reason == "" {
		reason = target.enqueue(p.data, p.src)
	}
	if reason != "" {
		return n.dropLocked(p, reason, target)
	}
	return PacketInfo{Src: p.src, Dst: p.dst, Len: len(p.data), Payload: p.data}
}

// dropLocked counts a dropped packet against the sender or, for drops at the
// receiving end, the receiver, and describes it for the taps.
func (n *Network) dropLocked(p *packet, reason string, receiver *Conn) PacketInfo {
	switch reason {
	case ReasonQueueFull:
		receiver.stats.droppedQueueFull.Add(1)
	case ReasonFiltered:
		if receiver != nil {
			receiver.stats.droppedFiltered.Add(1)
		}
	case ReasonLoss, ReasonLinkDown:
		if p.from != nil {
			p.from.stats.droppedLost.Add(1)
		}
	default:
		if p.from != nil {
			p.from.stats.droppedUndeliverable.Add(1)
		}
	}
	return PacketInfo{Src: p.src, Dst: p.dst, Len: len(p.data), Payload: p.data, Dropped: true, Reason: reason}
}

// normAddr unmaps IPv4-mapped IPv6 addresses and drops IPv6 zones.
func normAddr(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// normAddrPort applies normAddr to the IP of ap.
func normAddrPort(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(normAddr(ap.Addr()), ap.Port())
}

// checkHostAddr reports whether a can be the address of a host or NAT.
func checkHostAddr(a netip.Addr) error {
	switch {
	case !a.IsValid():
		return fmt.Errorf("vnet: invalid IP address")
	case a.IsUnspecified():
		return fmt.Errorf("vnet: unspecified IP address %v not supported, use a concrete address", a)
	}
	return nil
}

func listenError(addr netip.AddrPort, err error) error {
	return &net.OpError{Op: "listen", Net: "udp", Addr: net.UDPAddrFromAddrPort(addr), Err: err}
}

// allocPort returns the first port in the ephemeral range 49152-65535, in
// round-robin order starting at *next, for which used is false.
func allocPort(next *uint16, used func(uint16) bool) (uint16, bool) {
	const lo, hi = 49152, 65535
	for range hi - lo + 1 {
		p := max(*next, lo)
		if p == hi {
			*next = lo
		} else {
			*next = p + 1
		}
		if !used(p) {
			return p, true
		}
	}
	return 0, false
}

// clone returns a copy of b in a newly allocated buffer of exactly len(b).
func clone(b []byte) []byte {
	c := make([]byte, len(b))
	copy(c, b)
	return c
}
