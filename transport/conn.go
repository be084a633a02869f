package transport

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
)

// Peer is what the caller knows about the other side, from pairing: the
// shared key, both certificates' fingerprints and the peer's addresses.
type Peer struct {
	// Role decides who runs the QUIC client; the two peers must differ.
	Role Role
	// Key is the shared secret from pairing (at least MinKeyLen bytes). It
	// names the endpoint in control packets and authenticates them.
	Key []byte
	// Certificate is this side's certificate, whose fingerprint the peer pins.
	Certificate *Certificate
	// PeerFingerprint pins the peer's certificate.
	PeerFingerprint Fingerprint
	// Candidates are addresses the peer may be reached at; they are probed
	// at once and the first that answers (authenticated) becomes the path.
	Candidates []netip.AddrPort
	// Relay is a relay server both peers use ("host:port", the rendezvous
	// server), or empty for none. The relayed path is one more candidate:
	// the connection starts on whichever path is proven first and moves
	// from the relay to a direct path when one comes up.
	Relay string
	// Paths restricts the kinds of path used; the zero value allows any.
	Paths PathPolicy
	// TCPCandidates are the peer's TCP punching addresses (its
	// Socket.TCPCandidates): a TCP path is punched to them at once, for
	// networks that block UDP.
	TCPCandidates []netip.AddrPort
	// CandidateTypes says how the peer learned each of its candidates (UDP
	// and TCP); an address missing here is a host address if private,
	// loopback or link-local, and server-reflexive otherwise.
	CandidateTypes map[netip.AddrPort]CandidateType
}

// Conn is an established, end-to-end encrypted connection to one peer. Its
// streams survive either side's address changes.
type Conn struct {
	ep   *endpoint
	qc   *quic.Conn
	tr   *quic.Transport
	once sync.Once
}

// Connect finds a path to the peer among its candidates and runs the QUIC
// handshake over it with pinned certificates. It returns when the connection
// is up, or fails with ctx.
func (s *Socket) Connect(ctx context.Context, p Peer) (*Conn, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	if p.Certificate == nil {
		return nil, errors.New("transport: Connect needs this side's certificate")
	}
	keys, err := derivePairingKeys(p.Key, p.Role)
	if err != nil {
		return nil, err
	}
	if p.Paths == RelayOnly && p.Relay == "" {
		return nil, errors.New("transport: relay-only connection without a relay")
	}
	e := newEndpoint(s, s.newTag(), keys, p.Role, p.Paths, p.Candidates)
	e.candTypes = p.CandidateTypes
	if p.Paths != RelayOnly {
		e.peerTCP = usableCandidates(p.TCPCandidates)
	}
	if !s.router.add(e) {
		return nil, errors.New("transport: a connection with this key is already open")
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		e.run()
	}()
	if len(p.TCPCandidates) > 0 && p.Paths != RelayOnly {
		tctx, stopTCP := context.WithCancel(ctx)
		defer stopTCP() // an established connection keeps its TCP path; a failed Connect drops it
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = s.joinTCP(tctx, e, p.TCPCandidates)
		}()
	}
	relayErr := make(chan error, 1)
	if p.Relay != "" && p.Paths != DirectOnly {
		// The session outlives Connect: an established connection keeps
		// joining it (the fallback of a direct path, liveness.go); the
		// endpoint's end stops it.
		e.relayAddr = p.Relay
		rctx, stopRelay := context.WithCancel(context.Background())
		s.wg.Add(2)
		go func() {
			defer s.wg.Done()
			select {
			case <-e.done:
			case <-ctx.Done():
				if e.stateNow() == StateConnecting {
					break // Connect failed
				}
				<-e.done
			}
			stopRelay()
		}()
		go func() {
			defer s.wg.Done()
			relayErr <- s.joinRelay(rctx, e, p.Relay)
		}()
	}

	if err := waitUp(ctx, e, relayErr, p.Paths == RelayOnly); err != nil {
		e.close()
		return nil, err
	}

	c := &Conn{ep: e}
	pconn := quicPacketConn(e.vc, s.rawConn())
	c.tr = &quic.Transport{
		Conn:                  pconn,
		ConnectionIDGenerator: e.cids,
	}
	var srk quic.StatelessResetKey
	if _, err := rand.Read(srk[:]); err == nil {
		c.tr.StatelessResetKey = &srk
	}
	tlsConf := pinnedTLS(p.Certificate, p.PeerFingerprint, p.Role)
	qconf := s.cfg.quicConfig(p.Role)
	if p.Role == RoleDialer {
		c.qc, err = c.tr.Dial(ctx, virtualPeerAddr, tlsConf, qconf)
	} else {
		c.qc, err = accept(ctx, c.tr, tlsConf, qconf)
	}
	if err != nil {
		_ = c.tr.Close()
		e.close()
		return nil, fmt.Errorf("transport: handshake with peer: %w", err)
	}
	// From now on the vconn hands quic-go's connection no more than its
	// queue holds (backlog.go).
	qc := c.qc
	e.vc.backlog.attach(func() uint64 { return qc.ConnectionStats().BytesReceived })
	if p.Role == RoleAcceptor {
		// From now on quic-go learns of each new path (vconn.newPath).
		e.vc.migrates.Store(true)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		// Either end closes the other: the peer or an idle timeout closes
		// the QUIC connection, Socket.Close closes the endpoint.
		select {
		case <-c.qc.Context().Done():
		case <-e.done:
		}
		_ = c.Close()
	}()
	return c, nil
}

// waitUp waits until e has a path. It fails with ErrNoPath when ctx ends
// first, or at once when the relay refused and it was the only way;
// either error says why the relay did not help.
func waitUp(ctx context.Context, e *endpoint, relayErr <-chan error, relayOnly bool) error {
	var relayFailed error
	for {
		select {
		case <-e.up:
			return nil
		case <-e.done:
			return ErrClosed
		case err := <-relayErr:
			if err == nil {
				continue // the relay session is a candidate now
			}
			if relayOnly {
				return fmt.Errorf("%w: relay: %w", ErrNoPath, err)
			}
			relayFailed = err
		case <-ctx.Done():
			select {
			case relayFailed = <-relayErr:
			default:
			}
			if relayFailed != nil {
				return fmt.Errorf("%w: %w (relay: %w)", ErrNoPath, ctx.Err(), relayFailed)
			}
			return fmt.Errorf("%w: %w", ErrNoPath, ctx.Err())
		}
	}
}

// joinRelay connects e's side of the pairing to the relay and, once the
// peer's side is there too, hands the session to e as a candidate path. A
// session that pairs after e closed is closed.
func (s *Socket) joinRelay(ctx context.Context, e *endpoint, addr string) error {
	rc, err := dialRelay(ctx, addr, e.pairing.relay, e.role)
	if err != nil {
		e.log.Debug("no relay session", "relay", addr, "err", err)
		return err
	}
	rc.ep = e
	// The Socket's lock before the endpoint's, never inside it (retiring
	// carriers takes them in this order).
	if !s.addOwnedCarrier(rc) {
		_ = rc.Close()
		return ErrClosed
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state == StateClosed {
		_ = rc.Close()
		return ErrClosed
	}
	e.relayPairedLocked(rc, time.Now())
	return nil
}

// accept runs the acceptor's side of the handshake. quic-go's listener
// drops a connection whose handshake failed without telling Accept, so a
// dialer presenting the wrong certificate would only make Accept time out:
// the pin check's failure ends the wait with ErrPeerCertificate instead,
// the error the dialer gets for an impostor acceptor.
func accept(ctx context.Context, tr *quic.Transport, tlsConf *tls.Config, qconf *quic.Config) (*quic.Conn, error) {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	verify := tlsConf.VerifyPeerCertificate
	tlsConf.VerifyPeerCertificate = func(raw [][]byte, chains [][]*x509.Certificate) error {
		err := verify(raw, chains)
		if err != nil {
			cancel(err)
		}
		return err
	}
	ln, err := tr.Listen(tlsConf, qconf)
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	qc, err := ln.Accept(actx)
	if err != nil {
		if cause := context.Cause(actx); errors.Is(cause, ErrPeerCertificate) {
			return nil, cause
		}
		return nil, err
	}
	return qc, nil
}

// OpenStream opens a bidirectional stream, waiting for the peer's stream
// limit if needed.
func (c *Conn) OpenStream(ctx context.Context) (*quic.Stream, error) {
	return c.qc.OpenStreamSync(ctx)
}

// AcceptStream waits for the peer's next stream.
func (c *Conn) AcceptStream(ctx context.Context) (*quic.Stream, error) {
	return c.qc.AcceptStream(ctx)
}

// Path describes the active path.
func (c *Conn) Path() PathInfo {
	p := c.ep.path.Load()
	info := p.info
	c.ep.mu.Lock()
	info.RTT = c.ep.rtt
	c.ep.mu.Unlock()
	return info
}

// SubscribePath returns a channel that receives the new PathInfo after every
// path change (the newest is kept if the reader falls behind) and a function
// that ends the subscription. The channel is closed when the connection
// closes.
func (c *Conn) SubscribePath() (<-chan PathInfo, func()) { return c.ep.subscribe() }

// State is the endpoint's state: Established, ValidatingPath or Closed.
func (c *Conn) State() State { return c.ep.stateNow() }

// Migrate validates the peer's address remote through the active local
// socket and moves the path there. It returns nil once the path moved, or an
// error on failure, timeout (Config.ValidationTimeout unless ctx ends
// sooner) or cancellation; the old path stays in use until then.
func (c *Conn) Migrate(ctx context.Context, remote netip.AddrPort) error {
	return c.ep.migrate(ctx, remote)
}

// Context is done when the connection closes.
func (c *Conn) Context() context.Context { return c.qc.Context() }

// CloseWithError closes the connection, telling the peer code and reason.
func (c *Conn) CloseWithError(code uint64, reason string) error {
	var err error
	c.once.Do(func() {
		err = c.qc.CloseWithError(quic.ApplicationErrorCode(code), reason)
		_ = c.tr.Close()
		c.ep.close()
	})
	return err
}

// Close closes the connection with code 0.
func (c *Conn) Close() error { return c.CloseWithError(0, "") }

// Stats are counters of one connection, for diagnostics and tests.
type Stats struct {
	QUICPacketsIn, ControlPacketsIn, QueueDrops, WriteErrors uint64
	ChallengesSent, ValidationsFailed, PathChanges           uint64
	// ControlDropped counts control packets that named this connection but
	// failed authentication, belonged to another attempt, or were replays
	// (our own packets reflected back fail authentication: keys differ by
	// direction).
	ControlDropped uint64
	// LargestQUICPacketOut is the largest QUIC packet quic-go handed to a
	// path, in bytes: above 1280 once path MTU discovery found more room.
	LargestQUICPacketOut uint64
	// QUICPacketsSent, QUICPacketsReceived and QUICPacketsLost are
	// quic-go's own counts: packets sent, packets it processed, packets it
	// declared lost. Where the network loses nothing (loopback), lost ones
	// were dropped on the peer's side: by the kernel, ferry's queue
	// (QueueDrops) or quic-go's (256 packets per connection), which ferry
	// paces its hand-over to (QUICQueueWaits, backlog.go).
	QUICPacketsSent, QUICPacketsReceived, QUICPacketsLost uint64
	// QUICQueueWaits counts the times ferry held packets back because
	// quic-go's receive queue was full, QUICQueueStalls the waits in
	// which quic-go took nothing for 50 ms (ferry then hands packets on
	// regardless; backlog.go).
	QUICQueueWaits, QUICQueueStalls uint64
}

// Stats returns the connection's counters.
func (c *Conn) Stats() Stats {
	k := &c.ep.counters
	q := c.qc.ConnectionStats()
	b := c.ep.vc.backlog
	return Stats{
		QUICPacketsIn: k.quicIn.Load(), ControlPacketsIn: k.controlIn.Load(),
		QueueDrops: k.queueDrops.Load(), WriteErrors: k.writeErrors.Load(),
		ChallengesSent: k.challengesSent.Load(), ValidationsFailed: k.validationsFailed.Load(),
		PathChanges: k.pathChanges.Load(), ControlDropped: k.controlDropped.Load(),
		LargestQUICPacketOut: k.largestOut.Load(),
		QUICPacketsSent:      q.PacketsSent, QUICPacketsReceived: q.PacketsReceived, QUICPacketsLost: q.PacketsLost,
		QUICQueueWaits: b.waits.Load(), QUICQueueStalls: b.stalls.Load(),
	}
}
