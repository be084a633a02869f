package transport

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/ipv4"
)

// PacketConn is the datagram socket a UDP carrier is built on: a *net.UDPConn
// in production, an in-memory network's conn in tests.
type PacketConn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	LocalAddr() net.Addr
	SetReadDeadline(t time.Time) error
	Close() error
}

// udpCarrier carries datagrams over one UDP socket. On a *net.UDPConn on
// Linux it reads in batches (recvmmsg), with receive offload (UDP_GRO) where
// the kernel allows, and passes UDP segmentation offload through to the
// kernel; on other systems, and on any other PacketConn, it reads one
// datagram at a time and splits offload batches itself.
type udpCarrier struct {
	conn  PacketConn
	udp   *net.UDPConn     // nil unless conn is a real UDP socket
	gro   *groReader       // reads udp with UDP_GRO on; nil where the kernel refused it or there is none (gro_*.go)
	batch *ipv4.PacketConn // recvmmsg reader for udp without gro; nil where batch reads do not exist (batchread_*.go)
	msgs  []ipv4.Message   // reused by ReadBatch; only the reading goroutine touches it
	gso   bool             // udp accepts UDP_SEGMENT (gso_*.go)
	local netip.AddrPort
}

// newUDPCarrier wraps conn; a real *net.UDPConn also gets the platform's
// fast paths (batch reads, receive and segmentation offload) and large
// socket buffers.
func newUDPCarrier(conn PacketConn) *udpCarrier {
	c := &udpCarrier{conn: conn}
	if ua, ok := conn.LocalAddr().(*net.UDPAddr); ok {
		c.local = ua.AddrPort()
	}
	if udp, ok := conn.(*net.UDPConn); ok {
		c.udp = udp
		if c.gro = newGROReader(udp); c.gro == nil {
			c.batch = newBatchReader(udp)
		}
		c.gso = gsoSupported(udp)
		setSocketBuffers(udp)
	}
	return c
}

func (c *udpCarrier) Kind() PathKind            { return PathDirectUDP }
func (c *udpCarrier) LocalAddr() netip.AddrPort { return c.local }
func (c *udpCarrier) Close() error              { return c.conn.Close() }

// ReadBatch reads one datagram, or as many as recvmmsg returns at once where
// the carrier has a batch reader, or, with receive offload, as many as fit
// ds of those the kernel coalesced. Only the carrier's one reading goroutine
// may call it.
func (c *udpCarrier) ReadBatch(ds []Datagram) (int, error) {
	if c.gro != nil {
		return c.gro.ReadBatch(ds)
	}
	if c.batch == nil || len(ds) == 1 {
		n, from, err := c.conn.ReadFromUDPAddrPort(ds[0].Buf)
		if err != nil {
			return 0, err
		}
		ds[0].N, ds[0].From = n, UnmapAddrPort(from)
		return 1, nil
	}
	if len(c.msgs) < len(ds) {
		c.msgs = make([]ipv4.Message, len(ds))
		for i := range c.msgs {
			c.msgs[i].Buffers = make([][]byte, 1)
		}
	}
	msgs := c.msgs[:len(ds)]
	for i := range msgs {
		msgs[i].Buffers[0] = ds[i].Buf
	}
	n, err := c.batch.ReadBatch(msgs, 0)
	if err != nil {
		return 0, err
	}
	for i := range n {
		ds[i].N = msgs[i].N
		ds[i].From = messageSource(&msgs[i])
	}
	return n, nil
}

// messageSource is the (unmapped) address a batch-read message came from,
// or the zero AddrPort when it names none.
func messageSource(m *ipv4.Message) netip.AddrPort {
	if ua, ok := m.Addr.(*net.UDPAddr); ok {
		return UnmapAddrPort(ua.AddrPort())
	}
	return netip.AddrPort{}
}

// WriteTo sends b to to, as one offloaded send when b is a batch and the
// socket accepts UDP_SEGMENT, otherwise one datagram at a time.
func (c *udpCarrier) WriteTo(b []byte, segSize int, to netip.AddrPort) error {
	if segSize > 0 && segSize < len(b) && c.gso {
		return writeGSO(c.udp, b, segSize, to)
	}
	return splitSegments(b, segSize, func(d []byte) error {
		_, err := c.conn.WriteToUDPAddrPort(d, to)
		return err
	})
}

// socketBufferSize is what ferry asks for on its UDP sockets, as quic-go
// does; setSocketBuffers (sockbuf_*.go) applies it.
const socketBufferSize = 7 << 20

// UnmapAddrPort turns an IPv4-mapped IPv6 address (from a dual-stack socket)
// back into plain IPv4, so one peer has one address form: the two
// spellings of one address compare equal.
func UnmapAddrPort(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// listenUDP opens ferry's real UDP socket: dual-stack where the system allows.
func listenUDP(addr string) (*net.UDPConn, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport: bad listen address %q: %w", addr, err)
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("transport: listen %s: %w", addr, err)
	}
	return conn, nil
}

// isClosedErr reports whether err means the socket was closed under a reader.
func isClosedErr(err error) bool { return errors.Is(err, net.ErrClosed) }
