package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// relayCarrier carries one endpoint's datagrams through a relay: one TCP
// connection to the relay server, paired there with the peer's by the
// pairing's relay token. Every datagram it reads comes "from" the relay's
// address and belongs to its endpoint alone (the Socket routes by carrier,
// not by address: every relayed pair shares that address).
type relayCarrier struct {
	conn   net.Conn
	r      *bufio.Reader
	local  netip.AddrPort
	remote netip.AddrPort // the relay server

	wmu sync.Mutex
	w   *bufio.Writer

	ep *endpoint // set once, before the Socket starts reading
}

// relayHelloTimeout bounds the hello exchange with the relay server (a
// round trip to the server), not the wait for the peer.
const relayHelloTimeout = 10 * time.Second

// dialRelay connects to the relay at addr and waits until the peer's side
// is there too (or ctx ends). A refusal is a *RelayRefusedError.
func dialRelay(ctx context.Context, addr string, token [RelayTokenLen]byte, side Role) (*relayCarrier, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport: relay %s: %w", addr, err)
	}
	// Closing the conn is how ctx interrupts the blocking reads below.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	c, err := relayHandshake(conn, token, side)
	if !stop() || err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("transport: relay %s: %w", addr, err)
	}
	return c, nil
}

func relayHandshake(conn net.Conn, token [RelayTokenLen]byte, side Role) (*relayCarrier, error) {
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	_ = conn.SetDeadline(time.Now().Add(relayHelloTimeout))
	if _, err := conn.Write(AppendRelayHello(nil, token, side)); err != nil {
		return nil, err
	}
	r := bufio.NewReaderSize(conn, 64<<10)
	for {
		b, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		switch st := RelayStatus(b); st {
		case RelayWaiting:
			// The peer is not there yet: wait for it as long as ctx allows.
			_ = conn.SetDeadline(time.Time{})
			continue
		case RelayPaired:
			_ = conn.SetDeadline(time.Time{})
			c := &relayCarrier{conn: conn, r: r, w: bufio.NewWriterSize(conn, 64<<10)}
			c.local = addrPortOf(conn.LocalAddr())
			c.remote = addrPortOf(conn.RemoteAddr())
			return c, nil
		default:
			return nil, &RelayRefusedError{Status: st}
		}
	}
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return unmapAddrPort(ta.AddrPort())
	}
	return netip.AddrPort{}
}

func (c *relayCarrier) Kind() PathKind            { return PathRelay }
func (c *relayCarrier) owner() *endpoint          { return c.ep }
func (c *relayCarrier) LocalAddr() netip.AddrPort { return c.local }
func (c *relayCarrier) Close() error              { return c.conn.Close() }

// ReadBatch reads one datagram, and any more the reader already holds.
func (c *relayCarrier) ReadBatch(ds []Datagram) (int, error) {
	n := 0
	for n < len(ds) {
		k, err := ReadRelayFrame(c.r, ds[n].Buf)
		if err != nil {
			if n > 0 {
				return n, nil
			}
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("transport: relay closed the session: %w", net.ErrClosed)
			}
			return 0, err
		}
		ds[n].N, ds[n].From = k, c.remote
		n++
		if !frameBuffered(c.r) {
			break // a partial frame must not hold back the whole ones
		}
	}
	return n, nil
}

// WriteTo frames b (each segment of a GSO batch) to the relay; to is the
// relay's address, the only one this carrier reaches.
func (c *relayCarrier) WriteTo(b []byte, segSize int, _ netip.AddrPort) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	err := splitSegments(b, segSize, func(d []byte) error { return WriteRelayFrame(c.w, d) })
	if err != nil {
		return err
	}
	return c.w.Flush()
}
