package transport

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
)

// tcpCarrier carries datagrams over one TCP connection: a connection to
// the peer made by hole punching (punchTCP), or a session at a relay
// (carrier_relay.go). Either carries the same control, QUIC and STUN
// datagrams a UDP path carries, each framed as on the relay (a 2-byte
// big-endian length, then the datagram: WriteRelayFrame, ReadRelayFrame).
// A connection reaches one peer, so every datagram read comes from the
// connection's remote address and WriteTo ignores its address.
//
// A byte stream cannot resynchronise: after any read or write error (the
// peer closed, a reset, a malformed frame) the carrier closes itself and
// every later read and write fails with an error wrapping net.ErrClosed,
// which tells the Socket's read loop that the carrier is gone rather than
// having a passing fault.
type tcpCarrier struct {
	conn   net.Conn
	kind   PathKind // PathDirectTCP, or PathRelay
	local  netip.AddrPort
	remote netip.AddrPort

	r    *bufio.Reader
	rerr error // the error that ended reading; only ReadBatch touches r and rerr

	wmu  sync.Mutex
	w    *bufio.Writer
	werr error // the error that ended writing, under wmu
}

// tcpCarrierBuffer sizes the carrier's read and write buffers: a GSO batch
// from quic-go (up to 64 KiB) goes out in one write, and a burst of frames
// comes in with one read.
const tcpCarrierBuffer = 64 << 10

// newTCPCarrier carries datagrams over conn, a punched connection to the
// peer, which the carrier owns from now on.
func newTCPCarrier(conn net.Conn) *tcpCarrier {
	return newFramedCarrier(conn, nil, PathDirectTCP)
}

// newFramedCarrier carries datagrams of a path of kind over conn, reading
// through r when the caller already read from conn through it (nil: a new
// reader).
func newFramedCarrier(conn net.Conn, r *bufio.Reader, kind PathKind) *tcpCarrier {
	if tc, ok := conn.(*net.TCPConn); ok {
		// Each frame is a whole packet quic-go wants on the wire now.
		_ = tc.SetNoDelay(true)
	}
	if r == nil {
		r = bufio.NewReaderSize(conn, tcpCarrierBuffer)
	}
	return &tcpCarrier{
		conn:   conn,
		kind:   kind,
		local:  addrPortOf(conn.LocalAddr()),
		remote: addrPortOf(conn.RemoteAddr()),
		r:      r,
		w:      bufio.NewWriterSize(conn, tcpCarrierBuffer),
	}
}

func (c *tcpCarrier) Kind() PathKind            { return c.kind }
func (c *tcpCarrier) LocalAddr() netip.AddrPort { return c.local }

// RemoteAddr is the peer's address on this connection, the From of every
// datagram read.
func (c *tcpCarrier) RemoteAddr() netip.AddrPort { return c.remote }

// Close closes the connection, which unblocks ReadBatch.
func (c *tcpCarrier) Close() error { return c.conn.Close() }

// ReadBatch reads one datagram, and any more the reader already holds.
// Each Datagram's Buf must hold MaxRelayFrame bytes. It must not be called
// from two goroutines at once.
func (c *tcpCarrier) ReadBatch(ds []Datagram) (int, error) {
	if c.rerr != nil {
		return 0, c.rerr
	}
	n := 0
	for n < len(ds) {
		k, err := ReadRelayFrame(c.r, ds[n].Buf)
		if err != nil {
			c.rerr = c.ended(err)
			if n > 0 { // the next call reports it
				return n, nil
			}
			return 0, c.rerr
		}
		ds[n].N, ds[n].From = k, c.remote
		n++
		if !frameBuffered(c.r) {
			break // a partial frame must not hold back the whole ones
		}
	}
	return n, nil
}

// ended closes the connection after err ended its stream and returns the
// error to report from now on, wrapping both err and net.ErrClosed.
func (c *tcpCarrier) ended(err error) error {
	_ = c.conn.Close()
	switch {
	case errors.Is(err, net.ErrClosed): // closed here
		return fmt.Errorf("transport: %v path to %v: %w", c.kind, c.remote, err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("transport: %v closed the %v path (%w): %w", c.remote, c.kind, err, net.ErrClosed)
	default:
		return fmt.Errorf("transport: %v path to %v ended (%w): %w", c.kind, c.remote, err, net.ErrClosed)
	}
}

// WriteTo frames b (each segment of a GSO batch) onto the connection and
// flushes it with one write. An empty or oversized datagram is refused
// with ErrRelayFrame before anything is written, leaving the stream
// intact; to is ignored (the connection reaches one peer).
func (c *tcpCarrier) WriteTo(b []byte, segSize int, _ netip.AddrPort) error {
	seg := len(b)
	if segSize > 0 && segSize < len(b) {
		seg = segSize
	}
	if len(b) == 0 || seg > MaxRelayFrame {
		return ErrRelayFrame
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	err := splitSegments(b, segSize, func(d []byte) error { return WriteRelayFrame(c.w, d) })
	if err == nil {
		err = c.w.Flush()
	}
	if err != nil {
		// Part of a frame may have gone out: the stream is lost.
		c.werr = c.ended(err)
		return c.werr
	}
	return nil
}
