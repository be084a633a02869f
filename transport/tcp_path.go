package transport

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// The TCP path: where UDP is blocked, both sides punch a TCP connection
// from their Socket's one TCP port (tcppunch.go) to the other's TCP
// candidates, and the winner becomes one more candidate path of the
// connection attempt, carrying the same datagrams framed (carrier_tcp.go).
// Its candidates are the port's host addresses and the public address the
// rendezvous server saw the port come from (an address query, FRYA).

// tcpQueryTimeout bounds asking the rendezvous server for the TCP port's
// public address: one connection and a round trip.
const tcpQueryTimeout = 3 * time.Second

// ownedTCP is a punched TCP connection of one endpoint.
type ownedTCP struct {
	*tcpCarrier
	ep *endpoint
}

func (c *ownedTCP) owner() *endpoint { return c.ep }

// tcpPortOpen returns the Socket's TCP punching port, opening it on the
// first call (on ListenAddr's host, any port).
func (s *Socket) tcpPortOpen(ctx context.Context) (*tcpPort, error) {
	s.tcpMu.Lock()
	defer s.tcpMu.Unlock()
	if s.tcp != nil {
		return s.tcp, nil
	}
	if s.isClosed() {
		return nil, ErrClosed
	}
	p, err := newTCPPort(ctx, s.listenHostAnyPort())
	if err != nil {
		return nil, err
	}
	s.tcp = p
	return p, nil
}

// TCPCandidates opens the Socket's TCP punching port (once) and tells
// where a peer may reach it: host, its interface addresses with its port,
// and public, when server ("host:port" of a ferry rendezvous server) is set
// and answers, the address the server sees it come from (invalid
// otherwise). Both are empty where no TCP port can be opened.
func (s *Socket) TCPCandidates(ctx context.Context, server string) (host []netip.AddrPort, public netip.AddrPort) {
	p, err := s.tcpPortOpen(ctx)
	if err != nil {
		s.log.Info("no TCP punching port", "err", err)
		return nil, netip.AddrPort{}
	}
	host = hostCandidates(p.Addr())
	if server == "" {
		return host, netip.AddrPort{}
	}
	qctx, cancel := context.WithTimeout(ctx, tcpQueryTimeout)
	defer cancel()
	public, err = queryTCPAddr(qctx, p, server)
	if err != nil {
		s.log.Info("no public TCP address", "server", server, "err", err)
		return host, netip.AddrPort{}
	}
	return host, public
}

// queryTCPAddr asks the rendezvous server which address it sees p's
// connections come from.
func queryTCPAddr(ctx context.Context, p *tcpPort, server string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(server)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("server address %q: %w", server, err)
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("resolve %q: %w", host, err)
	}
	if len(addrs) == 0 {
		return netip.AddrPort{}, fmt.Errorf("resolve %q: no address", host)
	}
	pn, err := net.DefaultResolver.LookupPort(ctx, "tcp", port)
	if err != nil {
		return netip.AddrPort{}, err
	}
	c, err := p.DialFrom(ctx, netip.AddrPortFrom(addrs[0].Unmap(), uint16(pn)))
	if err != nil {
		return netip.AddrPort{}, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := c.Write([]byte(RelayAddrMagic)); err != nil {
		return netip.AddrPort{}, err
	}
	ap, err := ReadRelayAddr(c)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return UnmapAddrPort(ap), nil
}

// tcpChosen is the byte the dialer sends on the punched connection it
// keeps; the acceptor keeps only the connection that carries it.
const tcpChosen = 0x01

// tcpAuth is the handshake on a punched connection: each side shows its
// direction's proof (from the pairing key) and checks the other's; the
// dialer then names the one connection both keep, since each side of a
// punch may see several complete.
func tcpAuth(keys *pairingKeys, role Role) func(net.Conn) error {
	var mu sync.Mutex
	chosen := false
	return func(c net.Conn) error {
		if _, err := c.Write(keys.tcpSend[:]); err != nil {
			return err
		}
		var got [32]byte
		if _, err := io.ReadFull(c, got[:]); err != nil {
			return err
		}
		if subtle.ConstantTimeCompare(got[:], keys.tcpRecv[:]) != 1 {
			return errors.New("transport: punched TCP connection to someone else")
		}
		if role == RoleAcceptor {
			var b [1]byte
			if _, err := io.ReadFull(c, b[:]); err != nil || b[0] != tcpChosen {
				return errors.New("transport: the dialer kept another TCP connection")
			}
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		if chosen {
			return errors.New("transport: another TCP connection was kept")
		}
		if _, err := c.Write([]byte{tcpChosen}); err != nil {
			return err
		}
		chosen = true
		return nil
	}
}

// joinTCP punches a TCP connection to the peer's TCP candidates and, if one
// authenticates, hands it to e as a candidate path.
func (s *Socket) joinTCP(ctx context.Context, e *endpoint, cands []netip.AddrPort) error {
	p, err := s.tcpPortOpen(ctx)
	if err != nil {
		return err
	}
	conn, err := punchTCP(ctx, p, usableCandidates(cands), tcpAuth(&e.pairing, e.role))
	if err != nil {
		e.log.Debug("no TCP path", "err", err)
		return err
	}
	c := &ownedTCP{tcpCarrier: newTCPCarrier(conn), ep: e}
	if !s.addOwnedCarrier(c) { // outside e.mu: see joinRelay
		_ = c.Close()
		return ErrClosed
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	switch e.state {
	case StateConnecting:
		e.tcp = c
		e.attempt.candidates[c.remote] = &candidate{next: now, gap: s.cfg.ProbeInterval, carrier: c}
		e.tickConnectingLocked(now)
		return nil
	case StateEstablished, StateValidatingPath:
		// Punched again after a change (repunchTCPLocked): an upgrade
		// candidate, PINGed through its own carrier.
		old := e.tcp
		e.tcp = c
		if old != nil {
			_ = old.Close() // a conn.Close: it does not block
		}
		e.upgrade[c.remote] = &candidate{next: now, gap: s.cfg.ProbeInterval, carrier: c}
		if until := now.Add(repunchFor); until.After(e.repunchUntil) {
			e.repunchUntil = until
		}
		return nil
	}
	_ = c.Close()
	return ErrClosed
}

// repunchTCPLocked punches a TCP path to the peer's TCP candidates again
// after a change, in the background and for tcpRepunchFor, unless the
// connection is on a healthy direct UDP path or a punch runs already: a
// network that drops UDP may pass TCP, and a TCP path beats the relay.
func (e *endpoint) repunchTCPLocked() {
	p := e.path.Load()
	if e.policy == RelayOnly || len(e.peerTCP) == 0 || e.tcpPunching || p == nil ||
		p.carrier.Kind() == PathDirectUDP && e.suspectSince.IsZero() {
		return
	}
	e.tcpPunching = true
	cands := slices.Clone(e.peerTCP)
	e.s.wg.Add(1)
	go func() {
		defer e.s.wg.Done()
		ctx, cancel := context.WithTimeout(e.s.ctx, tcpRepunchFor)
		defer cancel()
		go func() {
			select {
			case <-e.done:
				cancel()
			case <-ctx.Done():
			}
		}()
		err := e.s.joinTCP(ctx, e, cands)
		e.mu.Lock()
		e.tcpPunching = false
		e.mu.Unlock()
		if err != nil {
			e.log.Debug("no TCP path after the change", "err", err)
		}
	}()
}
