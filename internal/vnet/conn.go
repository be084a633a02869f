package vnet

import (
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Conn is a UDP socket on a [Network]. It implements [net.PacketConn]; the
// addresses it takes and returns are *net.UDPAddr. All methods are safe for
// concurrent use.
type Conn struct {
	n        *Network
	nat      *NAT           // nil for hosts on public addresses
	local    netip.AddrPort // private if behind a NAT
	laddr    *net.UDPAddr
	isClosed atomic.Bool // mirrors closed for the write path
	stats    connCounters

	mu       sync.Mutex
	cond     sync.Cond // signalled on enqueue, close and deadline expiry
	q        ring
	closed   bool
	expired  bool // the read deadline has passed
	dlGen    uint64
	dlTimer  *time.Timer
	queueLen int
}

var _ net.PacketConn = (*Conn)(nil)

func newConn(n *Network, nat *NAT, local netip.AddrPort) *Conn {
	c := &Conn{n: n, nat: nat, local: local, laddr: net.UDPAddrFromAddrPort(local), queueLen: n.queueLen}
	c.cond.L = &c.mu
	return c
}

// ReadFrom reads the next packet into b and returns its length and source
// address, a *net.UDPAddr. A packet longer than b is truncated, as with UDP
// sockets. ReadFrom blocks until a packet arrives, the Conn is closed
// (net.ErrClosed) or the read deadline passes (os.ErrDeadlineExceeded).
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, src, err := c.ReadFromUDPAddrPort(b)
	if err != nil {
		return 0, nil, err
	}
	return n, net.UDPAddrFromAddrPort(src), nil
}

// ReadFromUDPAddrPort is like ReadFrom but returns the source as a
// netip.AddrPort.
func (c *Conn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	c.mu.Lock()
	for {
		switch {
		case c.closed:
			c.mu.Unlock()
			return 0, netip.AddrPort{}, c.opError("read", nil, net.ErrClosed)
		case c.expired:
			c.mu.Unlock()
			return 0, netip.AddrPort{}, c.opError("read", nil, os.ErrDeadlineExceeded)
		case c.q.n > 0:
			p := c.q.pop()
			c.mu.Unlock()
			return copy(b, p.data), p.src, nil
		}
		c.cond.Wait()
	}
}

// WriteTo sends a copy of b to addr, which must be a *net.UDPAddr (other
// net.Addr types are parsed from their String form). See WriteToUDPAddrPort.
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	var dst netip.AddrPort
	switch a := addr.(type) {
	case *net.UDPAddr:
		if a != nil {
			dst = a.AddrPort()
		}
	case nil:
	default:
		dst, _ = netip.ParseAddrPort(a.String())
	}
	if !dst.IsValid() {
		return 0, c.opError("write", addr, &net.AddrError{Err: "invalid UDP address", Addr: addrString(addr)})
	}
	return c.WriteToUDPAddrPort(b, dst)
}

// WriteToUDPAddrPort sends a copy of b to addr and returns len(b). It never
// blocks. A packet nobody receives is dropped silently (and reported to taps).
// It fails with net.ErrClosed after Close and with syscall.EMSGSIZE if b is
// larger than the network's MTU.
func (c *Conn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	addr = normAddrPort(addr)
	switch {
	case c.isClosed.Load():
		return 0, c.opError("write", net.UDPAddrFromAddrPort(addr), net.ErrClosed)
	case !addr.IsValid():
		return 0, c.opError("write", nil, &net.AddrError{Err: "invalid UDP address", Addr: addr.String()})
	case len(b) > c.n.mtu:
		return 0, c.opError("write", net.UDPAddrFromAddrPort(addr), os.NewSyscallError("sendto", syscall.EMSGSIZE))
	}
	c.stats.packetsSent.Add(1)
	c.stats.bytesSent.Add(uint64(len(b)))
	c.n.transmit(c, c.nat, c.local, addr, clone(b))
	return len(b), nil
}

// LocalAddr returns the local address as a *net.UDPAddr. For a host behind
// a NAT this is its private address; see [NAT.Mapping] for the public one.
func (c *Conn) LocalAddr() net.Addr { return c.laddr }

// LocalAddrPort returns the local address as a netip.AddrPort.
func (c *Conn) LocalAddrPort() netip.AddrPort { return c.local }

// NAT returns the NAT the Conn sits behind, or nil for a public host.
func (c *Conn) NAT() *NAT { return c.nat }

// Close closes the Conn: blocked and future reads and writes fail with
// net.ErrClosed, queued packets are discarded and the address becomes free.
// Close is idempotent and always returns nil.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.isClosed.Store(true)
	if c.dlTimer != nil {
		c.dlTimer.Stop()
		c.dlTimer = nil
	}
	c.q = ring{}
	c.cond.Broadcast()
	c.mu.Unlock()
	c.n.unregister(c)
	return nil
}

// SetDeadline sets the read deadline; write deadlines are meaningless
// because writes never block.
func (c *Conn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline sets the time after which blocked and future reads fail
// with an error that wraps os.ErrDeadlineExceeded and whose Timeout method
// reports true. A time in the past unblocks blocked readers at once; the zero
// time removes the deadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.opError("set", nil, net.ErrClosed)
	}
	c.dlGen++
	if c.dlTimer != nil {
		c.dlTimer.Stop()
		c.dlTimer = nil
	}
	c.expired = false
	switch d := time.Until(t); {
	case t.IsZero():
	case d <= 0:
		c.expired = true
		c.cond.Broadcast()
	default:
		gen := c.dlGen
		c.dlTimer = time.AfterFunc(d, func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.dlGen == gen && !c.closed {
				c.expired = true
				c.dlTimer = nil
				c.cond.Broadcast()
			}
		})
	}
	return nil
}

// SetWriteDeadline does nothing, since writes never block. It fails only
// after Close.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if c.isClosed.Load() {
		return c.opError("set", nil, net.ErrClosed)
	}
	return nil
}

// SetReadBuffer does nothing; the queue length is set by [Options.QueueLen].
// It exists so that quic-go does not warn about buffer sizes.
func (c *Conn) SetReadBuffer(int) error { return nil }

// SetWriteBuffer does nothing; writes are never buffered. It exists so that
// quic-go does not warn about buffer sizes.
func (c *Conn) SetWriteBuffer(int) error { return nil }

// Queued returns the number of packets waiting in the receive queue.
func (c *Conn) Queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.q.n
}

// enqueue appends a received packet to the queue. It returns "" on success
// or the reason for dropping the packet.
func (c *Conn) enqueue(data []byte, src netip.AddrPort) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return ReasonNoListener
	case c.q.n >= c.queueLen:
		return ReasonQueueFull
	}
	c.q.push(queued{data: data, src: src}, c.queueLen)
	c.stats.packetsReceived.Add(1)
	c.stats.bytesReceived.Add(uint64(len(data)))
	c.cond.Signal()
	return ""
}

func (c *Conn) opError(op string, addr net.Addr, err error) error {
	return &net.OpError{Op: op, Net: "udp", Source: c.laddr, Addr: addr, Err: err}
}

func addrString(a net.Addr) string {
	if a == nil {
		return "<nil>"
	}
	return a.String()
}

// ConnStats are the packet counters of a Conn.
type ConnStats struct {
	PacketsSent     uint64 // packets accepted by WriteTo
	BytesSent       uint64 // payload bytes accepted by WriteTo
	PacketsReceived uint64 // packets put into the receive queue
	BytesReceived   uint64 // payload bytes put into the receive queue

	DroppedQueueFull     uint64 // inbound packets dropped because the queue was full
	DroppedFiltered      uint64 // inbound packets dropped by this host's NAT filter
	DroppedLost          uint64 // outbound packets dropped by a link's Loss or Down
	DroppedUndeliverable uint64 // outbound packets that found no receiver (unroutable, no listener, no NAT mapping)
	PacketsDropped       uint64 // the sum of the Dropped counters
}

// Stats returns a snapshot of the Conn's counters.
func (c *Conn) Stats() ConnStats {
	s := ConnStats{
		PacketsSent:          c.stats.packetsSent.Load(),
		BytesSent:            c.stats.bytesSent.Load(),
		PacketsReceived:      c.stats.packetsReceived.Load(),
		BytesReceived:        c.stats.bytesReceived.Load(),
		DroppedQueueFull:     c.stats.droppedQueueFull.Load(),
		DroppedFiltered:      c.stats.droppedFiltered.Load(),
		DroppedLost:          c.stats.droppedLost.Load(),
		DroppedUndeliverable: c.stats.droppedUndeliverable.Load(),
	}
	s.PacketsDropped = s.DroppedQueueFull + s.DroppedFiltered + s.DroppedLost + s.DroppedUndeliverable
	return s
}

type connCounters struct {
	packetsSent, bytesSent, packetsReceived, bytesReceived atomic.Uint64
	droppedQueueFull, droppedFiltered                      atomic.Uint64
	droppedLost, droppedUndeliverable                      atomic.Uint64
}

// queued is a packet waiting in a receive queue.
type queued struct {
	data []byte
	src  netip.AddrPort
}

// ring is a FIFO of packets that grows on demand up to a limit.
type ring struct {
	buf  []queued
	head int
	n    int
}

// push appends p; the caller has checked that r.n < limit.
func (r *ring) push(p queued, limit int) {
	if r.n == len(r.buf) {
		buf := make([]queued, min(max(2*len(r.buf), 16), limit))
		k := copy(buf, r.buf[r.head:])
		copy(buf[k:], r.buf[:r.head])
		r.buf, r.head = buf, 0
	}
	r.buf[(r.head+r.n)%len(r.buf)] = p
	r.n++
}

// pop removes and returns the oldest packet; the caller has checked r.n > 0.
func (r *ring) pop() queued {
	p := r.buf[r.head]
	r.buf[r.head] = queued{}
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	return p
}
