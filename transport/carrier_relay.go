package transport

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// relayCarrier carries one endpoint's datagrams through a relay: one TCP
// connection to the relay server, paired there with the peer's by the
// pairing's relay token, framed as on any TCP path (tcpCarrier). Every
// datagram it reads comes "from" the relay's address and belongs to its
// endpoint alone (the Socket routes by carrier, not by address: every
// relayed pair shares that address).
type relayCarrier struct {
	*tcpCarrier
	ep *endpoint // set once, before the Socket starts reading
}

func (c *relayCarrier) owner() *endpoint { return c.ep }

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
	_ = conn.SetDeadline(time.Now().Add(relayHelloTimeout))
	if _, err := conn.Write(AppendRelayHello(nil, token, side)); err != nil {
		return nil, err
	}
	r := bufio.NewReaderSize(conn, tcpCarrierBuffer)
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
			return &relayCarrier{tcpCarrier: newFramedCarrier(conn, r, PathRelay)}, nil
		default:
			return nil, &RelayRefusedError{Status: st}
		}
	}
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return UnmapAddrPort(ta.AddrPort())
	}
	return netip.AddrPort{}
}
