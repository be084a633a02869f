package transport

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The relay server: the other end of relay_proto.go, run by `ferry
// rendezvous` on its mailbox port.
//
// What it owns: matching the two sides of a pairing by their relay token
// (one dialer side and one acceptor side per token), forwarding their
// frames unchanged, and the limits that keep one client or one pairing
// from taking the whole relay. What it learns: the token (random-looking,
// derived from the pairing key; never logged), each side's role and source
// address, and the length and timing of ciphertext datagrams. What is the
// caller's responsibility: accepting connections and telling relay
// connections from mailbox ones (discovery/mailbox/demux.go).
//
// A side's life, all in its own ServeConn call (there are no other
// goroutines per connection):
//
//	hello        read within HelloTimeout; malformed: RelayBadHello
//	register     under mu: RelayDisabled, RelayBusy, RelayTooManyFromAddr,
//	             or a place in the token's session. A hello for a side the
//	             session already holds takes that side over (see below).
//	waiting      RelayWaiting is sent at once. The first side then blocks in
//	             a one-byte read of its own connection whose read deadline is
//	             the pairing timeout; the second side wakes it by moving that
//	             deadline into the past (under mu). A client that leaves ends
//	             the wait at once, so its place is free for a retry. Bytes
//	             before RelayPaired break the protocol and end the session.
//	             No partner in PairTimeout: RelayTimeout.
//	paired       each side is sent RelayPaired by its own goroutine, which
//	             then forwards its client's frames to the partner.
//	end          the first of: a side closing or failing, a malformed frame,
//	             IdleTimeout without a byte either way, MaxSessionBytes,
//	             ctx, Close. Both connections are closed.
//
// A paired session has no way to tell its clients why it ended (the
// protocol has no status after RelayPaired): they see the connection close.
//
// A second hello for a side the token's session already holds, waiting or
// paired, is a takeover: it ends that session like any other end (both
// connections closed, reason "side joined again", its places given back),
// and the newcomer opens a fresh session for the token, normally waiting.
// The partner, whose connection just closed, joins again by itself (the
// client rejoins whenever it loses its session, relay_rejoin.go) and pairs
// with the newcomer. This is for a client whose network changed: its old
// connection is often silently dead (no FIN or RST ever arrives), it cannot
// tell, and refusing the newcomer (RelaySideTaken, which the server no
// longer sends) would keep the pairing off the relay until the dead
// connection's idle or pairing timeout. The limits judge the newcomer as if
// the old session had ended, since its places are given back first; a
// newcomer they refuse leaves the old session unharmed. Only the pairing's
// two sides and the server know the token, and an on-path observer who
// could replay a hello could as well drop the session's packets: a takeover
// gives no one a power over a session that they lack.

// Default relay limits; see RelayConfig. Each bounds what one client, one
// pairing or the whole relay may cost the server.
const (
	// DefaultRelayMaxSessions bounds the sessions (waiting or paired) of one
	// relay. A paired session holds two TCP connections, two goroutines
	// and 4 × relayBufSize of buffers (128 KiB), so 1000 sessions are
	// 2000 descriptors and about 130 MB: a small server's share.
	DefaultRelayMaxSessions = 1000
	// DefaultRelayMaxSessionsPerAddr bounds the sessions one source holds
	// (an IPv4 address, an IPv6 /64: what one host or one NAT can vary).
	// A household or office behind one NAT runs a few transfers at once;
	// 16 leaves room for that while one address can take at most 1.6% of
	// the default relay.
	DefaultRelayMaxSessionsPerAddr = 16
	// DefaultRelayMaxSessionBytes bounds the bytes one session relays (both
	// directions): a whole disk image fits, an endless stream does not.
	DefaultRelayMaxSessionBytes = 64 << 30
	// DefaultRelaySessionRate is one session's token bucket in bytes per
	// second (both directions together): about half a gigabit link, fast
	// for a transfer, while a few pairings cannot starve the rest.
	DefaultRelaySessionRate = 64 << 20
	// DefaultRelayIdleTimeout ends a session that relayed no byte either
	// way for this long. The transport PINGs every DefaultKeepAlive (10 s)
	// and gives a silent connection up after DefaultIdleTimeout (60 s): a
	// session silent for twice that serves no one.
	DefaultRelayIdleTimeout = 2 * time.Minute
	// DefaultRelayPairTimeout is how long a side waits for its partner. Both
	// sides join the relay when they start connecting, and the transfer
	// engine gives connecting up after 30 s: waiting longer holds a place
	// for a partner that no longer comes.
	DefaultRelayPairTimeout = 30 * time.Second
	// DefaultRelayHelloTimeout is how long a new connection has to send its
	// hello (one segment, sent right after connecting), as the mailbox
	// allows for its own hello.
	DefaultRelayHelloTimeout = 10 * time.Second
)

// Relay settings that are not configurable.
const (
	// relayWriteTimeout bounds a status write, so a client that does not
	// read cannot pin its goroutine.
	relayWriteTimeout = 10 * time.Second
	// relayBufSize is each direction's read and write buffer: 23 full
	// frames per system call. BenchmarkRelayServer measured 16, 32 and
	// 64 KiB alike (within noise); this keeps a session's buffers at
	// 128 KiB.
	relayBufSize = 32 << 10
	// relayRateBurst is how much a session may send ahead of its rate, as
	// time at that rate: enough to absorb TCP's bursts without stalling,
	// short enough that the rate holds over any second.
	relayRateBurst = 250 * time.Millisecond
	// relayAccountBatch is how many bytes a forwarder relays between
	// charging the rate bucket and the counters, when frames keep coming
	// (it also charges before every flush): fewer lock and timer
	// operations, and waits long enough for a timer to be accurate.
	relayAccountBatch = 64 << 10
)

// RelayConfig configures a RelayServer. The zero value is ready for
// production: zero fields mean the defaults above; a negative limit means
// "no limit". Durations have no "no limit".
type RelayConfig struct {
	// Disabled refuses every hello with RelayDisabled (`ferry rendezvous
	// --no-relay`).
	Disabled bool
	// Logger receives structured logs (never tokens); default
	// slog.Default().
	Logger *slog.Logger

	// MaxSessions bounds the sessions, waiting or paired; default
	// DefaultRelayMaxSessions. A new token beyond it gets RelayBusy.
	MaxSessions int
	// MaxSessionsPerAddr bounds the sessions in which one source (IPv4
	// address, IPv6 /64) holds a side, a session counting once however
	// many of its sides come from there; default
	// DefaultRelayMaxSessionsPerAddr. Beyond it: RelayTooManyFromAddr.
	MaxSessionsPerAddr int
	// MaxSessionBytes bounds the bytes one session relays, both directions;
	// default DefaultRelayMaxSessionBytes. Reaching it ends the session.
	MaxSessionBytes int64
	// SessionRate is one session's rate in bytes per second, both
	// directions together; default DefaultRelaySessionRate.
	SessionRate int64

	// IdleTimeout ends a session with no byte relayed either way for this
	// long; default DefaultRelayIdleTimeout. A client that stops reading
	// stalls its partner's forwarding for at most as long.
	IdleTimeout time.Duration
	// PairTimeout is how long a side waits for its partner; default
	// DefaultRelayPairTimeout.
	PairTimeout time.Duration
	// HelloTimeout is how long a connection has to send its hello; default
	// DefaultRelayHelloTimeout.
	HelloTimeout time.Duration
}

func (c RelayConfig) withDefaults() RelayConfig {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defInt64 := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt(&c.MaxSessions, DefaultRelayMaxSessions)
	defInt(&c.MaxSessionsPerAddr, DefaultRelayMaxSessionsPerAddr)
	defInt64(&c.MaxSessionBytes, DefaultRelayMaxSessionBytes)
	defInt64(&c.SessionRate, DefaultRelaySessionRate)
	defDur(&c.IdleTimeout, DefaultRelayIdleTimeout)
	defDur(&c.PairTimeout, DefaultRelayPairTimeout)
	defDur(&c.HelloTimeout, DefaultRelayHelloTimeout)
	return c
}

// RelayStats are a RelayServer's counters.
type RelayStats struct {
	// Active is the number of sessions now, waiting or paired.
	Active int
	// Total counts the sessions opened (a first side accepted); Paired
	// counts those whose second side arrived.
	Total, Paired uint64
	// Bytes counts the datagram bytes relayed, both directions, without
	// the frames' length prefixes.
	Bytes uint64
	// Refused counts the refusals by status (RelayTimeout included).
	Refused map[RelayStatus]uint64
}

// RelayServer matches and forwards relay sessions (see the top of this
// file). ServeConn may be called from any number of goroutines.
//
// Locking: mu guards the maps, the counters under it and every session's
// sides and ended flag. Nothing blocks while it is held (SetReadDeadline and
// Close do not block).
type RelayServer struct {
	cfg RelayConfig
	log *slog.Logger

	mu       sync.Mutex
	closed   bool
	draining bool                  // Drain was called: refuse every hello
	drained  chan struct{}         // made by Drain, closed when no session is left
	conns    map[net.Conn]struct{} // every connection in ServeConn
	sessions map[[RelayTokenLen]byte]*relaySession
	perAddr  map[netip.Prefix]int // sessions holding a side from each source
	total    uint64
	paired   uint64
	nextID   uint64
	refused  map[RelayStatus]uint64
	serving  sync.WaitGroup // ServeConn calls

	bytes atomic.Uint64
}

// NewRelayServer returns a relay configured by cfg (see RelayConfig).
func NewRelayServer(cfg RelayConfig) *RelayServer {
	cfg = cfg.withDefaults()
	return &RelayServer{
		cfg:      cfg,
		log:      cfg.Logger,
		conns:    make(map[net.Conn]struct{}),
		sessions: make(map[[RelayTokenLen]byte]*relaySession),
		perAddr:  make(map[netip.Prefix]int),
		refused:  make(map[RelayStatus]uint64),
	}
}

// relaySession is one token's pair of sides.
type relaySession struct {
	id    uint64 // names the session in logs, in place of its token
	token [RelayTokenLen]byte
	start time.Time
	rate  *relayBucket // both directions; nil: no limit

	// Guarded by RelayServer.mu.
	sides [2]*relaySide // by Role
	addrs []netip.Prefix
	ended bool

	done  chan struct{} // closed when the session ends
	bytes atomic.Int64
	last  atomic.Int64 // UnixNano of the last byte read from either side
}

// relaySide is one client's connection in a session.
type relaySide struct {
	conn     net.Conn
	deadline time.Time // of the wait for the partner
	// w buffers what the partner's forwarder writes to conn. It is made by
	// this side's goroutine before ready is closed; from then on only the
	// partner's forwarder writes to conn.
	w     *bufio.Writer
	ready chan struct{} // closed once this client was sent RelayPaired
}

func (ss *relaySession) touch() { ss.last.Store(time.Now().UnixNano()) }

// ServeConn serves one accepted connection that starts with a relay hello
// and returns when its session ended (or it was refused), with c closed.
// ctx ending ends the session.
func (s *RelayServer) ServeConn(ctx context.Context, c net.Conn) {
	if !s.track(c) {
		c.Close()
		return
	}
	defer s.untrack(c)
	// ctx ends the whole session, not just this side: the partner's
	// forwarder may be blocked writing to a client that does not read.
	var joined atomic.Pointer[relaySession]
	stop := context.AfterFunc(ctx, func() {
		c.Close()
		if sess := joined.Load(); sess != nil {
			s.end(sess, "server stopping")
		}
	})
	defer stop()

	token, side, st := s.readHello(c)
	if st == relayAddrQuery {
		s.answerAddr(c)
		return
	}
	if st != RelayWaiting {
		if st != relayGone {
			s.refuse(c, st)
		}
		return
	}
	sess, me, peer, st := s.register(token, side, c)
	if st != RelayWaiting {
		s.refuse(c, st)
		return
	}
	joined.Store(sess)
	if ctx.Err() != nil {
		s.end(sess, "server stopping")
		return
	}
	status := []RelayStatus{RelayWaiting}
	if peer != nil {
		status = append(status, RelayPaired)
	}
	if err := writeRelayStatus(c, status...); err != nil {
		s.end(sess, "status write failed")
		return
	}
	if peer == nil {
		if peer = s.waitForPeer(sess, me, side); peer == nil {
			return
		}
		if err := writeRelayStatus(c, RelayPaired); err != nil {
			s.end(sess, "status write failed")
			return
		}
	}
	me.w = bufio.NewWriterSize(&relayDeadlineWriter{conn: c, timeout: s.cfg.IdleTimeout}, relayBufSize)
	close(me.ready)
	s.end(sess, s.forward(sess, me, peer))
}

// track registers c for Close; it reports false once the server is closed.
func (s *RelayServer) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.serving.Add(1)
	return true
}

func (s *RelayServer) untrack(c net.Conn) {
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.serving.Done()
}

// relayGone is readHello's answer for a connection that sent nothing
// before it closed: there is no one to answer.
const relayGone RelayStatus = 255

// relayAddrQuery is readHello's answer for an address query (RelayAddrMagic).
const relayAddrQuery RelayStatus = 254

// readHello reads the hello. It returns RelayWaiting for a good one, or
// the refusal to send.
// answerAddr answers an address query with the address c comes from.
func (s *RelayServer) answerAddr(c net.Conn) {
	defer c.Close()
	ta, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return
	}
	_ = c.SetWriteDeadline(time.Now().Add(s.cfg.HelloTimeout))
	_, _ = c.Write(AppendRelayAddr(nil, ta.AddrPort()))
}

func (s *RelayServer) readHello(c net.Conn) (token [RelayTokenLen]byte, side Role, st RelayStatus) {
	_ = c.SetReadDeadline(time.Now().Add(s.cfg.HelloTimeout))
	var b [RelayHelloLen]byte
	n, err := io.ReadFull(c, b[:len(RelayMagic)])
	if err == nil && string(b[:n]) == RelayAddrMagic {
		_ = c.SetReadDeadline(time.Time{})
		return token, 0, relayAddrQuery
	}
	if err == nil {
		var k int
		k, err = io.ReadFull(c, b[len(RelayMagic):])
		n += k
	}
	_ = c.SetReadDeadline(time.Time{})
	switch {
	case err != nil && n == 0:
		return token, 0, relayGone
	case err != nil:
		s.log.Debug("relay hello incomplete", "remote", remoteIP(c), "err", err)
		return token, 0, RelayBadHello
	case s.cfg.Disabled:
		return token, 0, RelayDisabled
	}
	token, side, err = ParseRelayHello(b[:])
	if err != nil {
		s.log.Debug("relay hello malformed", "remote", remoteIP(c), "err", err)
		return token, 0, RelayBadHello
	}
	return token, side, RelayWaiting
}

// register gives c the token's place for side, opening the session if it
// is the first side, or taking the side over (see the top of the file) if
// the session already holds it. peer is the partner if it was already
// waiting (it has been woken). Anything but RelayWaiting is a refusal.
func (s *RelayServer) register(token [RelayTokenLen]byte, side Role, c net.Conn) (sess *relaySession, me, peer *relaySide, st RelayStatus) {
	addr := relayAddrKey(c.RemoteAddr())
	s.mu.Lock()
	sess = s.sessions[token]
	var old *relaySession // the session a takeover ends
	if sess != nil && sess.sides[side] != nil {
		old, sess = sess, nil
	}
	// The places old gives back count as free already.
	sessions, fromAddr := len(s.sessions), s.perAddr[addr]
	if old != nil {
		sessions--
		if slices.Contains(old.addrs, addr) {
			fromAddr--
		}
	}
	st = RelayWaiting
	newAddr := sess == nil || !slices.Contains(sess.addrs, addr)
	switch {
	case s.draining:
		// Busy is what a client retries, and by now the rendezvous
		// address leads to another server.
		st = RelayBusy
	case sess == nil && s.cfg.MaxSessions >= 0 && sessions >= s.cfg.MaxSessions:
		st = RelayBusy
	case newAddr && s.cfg.MaxSessionsPerAddr >= 0 && fromAddr >= s.cfg.MaxSessionsPerAddr:
		st = RelayTooManyFromAddr
	}
	if st != RelayWaiting {
		s.mu.Unlock()
		return nil, nil, nil, st
	}
	if old != nil {
		// Ended under mu, before the fresh session takes the token's entry,
		// so nothing can join old any more and old's goroutines, ending it
		// again, find it ended and touch nothing (endLocked).
		s.endLocked(old)
	}
	now := time.Now()
	if sess == nil {
		s.nextID++
		s.total++
		sess = &relaySession{
			id:    s.nextID,
			token: token,
			start: now,
			rate:  newRelayBucket(s.cfg.SessionRate, now),
			done:  make(chan struct{}),
		}
		s.sessions[token] = sess
	}
	if newAddr {
		sess.addrs = append(sess.addrs, addr)
		s.perAddr[addr]++
	}
	me = &relaySide{conn: c, ready: make(chan struct{})}
	sess.sides[side] = me
	if peer = sess.sides[1-side]; peer != nil {
		s.paired++
		// Wake the partner's wait: its read returns at once.
		_ = peer.conn.SetReadDeadline(time.Unix(1, 0))
	} else {
		// Set here, under mu, so that a partner's wake-up cannot come first
		// and be overwritten.
		me.deadline = now.Add(s.cfg.PairTimeout)
		_ = c.SetReadDeadline(me.deadline)
	}
	s.mu.Unlock()
	if old != nil {
		s.closeEnded(old, "side joined again")
	}
	if peer != nil {
		s.log.Info("relay session paired", "session", sess.id, "remote", remoteIP(c), "side", side,
			"waited", now.Sub(sess.start).Round(time.Millisecond))
	} else {
		s.log.Info("relay session waiting", "session", sess.id, "remote", remoteIP(c), "side", side)
	}
	return sess, me, peer, RelayWaiting
}

// waitForPeer waits for the partner of the first side (see the top of the
// file) and returns it, or nil when the session ended instead.
func (s *RelayServer) waitForPeer(sess *relaySession, me *relaySide, side Role) *relaySide {
	var one [1]byte
	for {
		n, err := me.conn.Read(one[:])
		switch {
		case n > 0:
			s.end(sess, "client sent data before it was paired")
			return nil
		case !errors.Is(err, os.ErrDeadlineExceeded):
			s.end(sess, "client left while waiting")
			return nil
		}
		s.mu.Lock()
		peer := sess.sides[1-side]
		switch {
		case sess.ended:
			s.mu.Unlock()
			return nil
		case peer != nil:
			s.mu.Unlock()
			return peer
		case time.Now().Before(me.deadline):
			s.mu.Unlock() // not ours: wait on
			continue
		}
		// Ended under mu, so no partner can join after this; the caller
		// closes the connection once it carried the refusal.
		s.endLocked(sess)
		s.mu.Unlock()
		s.logEnd(sess, "no partner in time")
		s.refuse(me.conn, RelayTimeout)
		return nil
	}
}

// forward relays me's frames to peer until the session ends, and returns
// why it ended ("" when the partner's direction ended it).
func (s *RelayServer) forward(sess *relaySession, me, peer *relaySide) string {
	select {
	case <-peer.ready:
	case <-sess.done:
		return ""
	}
	r := bufio.NewReaderSize(&relayIdleReader{conn: me.conn, sess: sess, idle: s.cfg.IdleTimeout}, relayBufSize)
	sess.touch()
	_ = me.conn.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
	buf := make([]byte, MaxRelayFrame)
	pending := 0 // bytes relayed but not yet charged and counted
	account := func(flush bool) string {
		if pending > 0 {
			s.bytes.Add(uint64(pending))
			if wait := sess.rate.take(pending, time.Now()); wait > 0 {
				if err := peer.w.Flush(); err != nil {
					return "write failed"
				}
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-sess.done:
					t.Stop()
					return ""
				}
			}
			pending = 0
		}
		if flush {
			if err := peer.w.Flush(); err != nil {
				return "write failed"
			}
		}
		return ""
	}
	for {
		n, err := ReadRelayFrame(r, buf)
		if err != nil {
			account(true)
			switch {
			case errors.Is(err, ErrRelayFrame):
				return "malformed frame"
			case errors.Is(err, io.EOF):
				return "client closed"
			case errors.Is(err, io.ErrUnexpectedEOF):
				return "client closed mid-frame"
			case errors.Is(err, os.ErrDeadlineExceeded):
				return "idle"
			}
			return "" // closed under us: whoever closed it gave the reason
		}
		if total := sess.bytes.Add(int64(n)); s.cfg.MaxSessionBytes >= 0 && total > s.cfg.MaxSessionBytes {
			account(true)
			return "byte limit reached"
		}
		if err := WriteRelayFrame(peer.w, buf[:n]); err != nil {
			return "write failed"
		}
		pending += n
		// Flush when the next read may block; otherwise keep filling the
		// writer (it writes itself out when full).
		more := frameBuffered(r)
		if more && pending < relayAccountBatch {
			continue
		}
		if why := account(!more); why != "" {
			return why
		}
		select {
		case <-sess.done:
			return ""
		default:
		}
	}
}

// end ends sess (only the first call has an effect): both connections are
// closed, so both goroutines return.
func (s *RelayServer) end(sess *relaySession, why string) {
	s.mu.Lock()
	first := s.endLocked(sess)
	s.mu.Unlock()
	if first {
		s.closeEnded(sess, why)
	}
}

// closeEnded closes the connections of sess, which endLocked ended, and logs
// why it ended.
func (s *RelayServer) closeEnded(sess *relaySession, why string) {
	// The sides are fixed now: the session left the map under mu.
	for _, sd := range sess.sides {
		if sd != nil {
			sd.conn.Close()
		}
	}
	s.logEnd(sess, why)
}

// endLocked marks sess ended and gives back its places; it reports whether
// this was the first call. It closes nothing.
func (s *RelayServer) endLocked(sess *relaySession) bool {
	if sess.ended {
		return false
	}
	sess.ended = true
	close(sess.done)
	// After a takeover the token's entry is the fresh session's: only
	// sess's own entry is sess's to delete.
	if s.sessions[sess.token] == sess {
		delete(s.sessions, sess.token)
	}
	s.noteDrainedLocked()
	for _, a := range sess.addrs {
		if s.perAddr[a]--; s.perAddr[a] <= 0 {
			delete(s.perAddr, a)
		}
	}
	return true
}

func (s *RelayServer) logEnd(sess *relaySession, why string) {
	if why == "" {
		why = "closed"
	}
	s.log.Info("relay session ended", "session", sess.id, "reason", why,
		"bytes", sess.bytes.Load(), "duration", time.Since(sess.start).Round(time.Millisecond))
}

// refuse sends st and counts it; the caller closes c.
func (s *RelayServer) refuse(c net.Conn, st RelayStatus) {
	s.mu.Lock()
	s.refused[st]++
	s.mu.Unlock()
	level := slog.LevelInfo
	if st == RelayBadHello {
		level = slog.LevelDebug // anyone can send junk to an open port
	}
	s.log.Log(context.Background(), level, "relay refused", "remote", remoteIP(c), "status", st.String())
	_ = writeRelayStatus(c, st)
}

func writeRelayStatus(c net.Conn, st ...RelayStatus) error {
	b := make([]byte, len(st))
	for i, v := range st {
		b[i] = byte(v)
	}
	_ = c.SetWriteDeadline(time.Now().Add(relayWriteTimeout))
	_, err := c.Write(b)
	return err
}

// Stats returns the server's counters.
func (s *RelayServer) Stats() RelayStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := RelayStats{
		Active:  len(s.sessions),
		Total:   s.total,
		Paired:  s.paired,
		Bytes:   s.bytes.Load(),
		Refused: make(map[RelayStatus]uint64, len(s.refused)),
	}
	for k, v := range s.refused {
		st.Refused[k] = v
	}
	return st
}

// Close ends every session, refuses what comes later and returns when
// every ServeConn call has returned.
func (s *RelayServer) Close() error {
	s.mu.Lock()
	s.closed = true
	conns := make([]net.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	s.serving.Wait()
	return nil
}

// relayIdleReader reads a paired client's connection. A read deadline that
// passes is an idle timeout only if no byte came either way for the idle
// timeout; otherwise the deadline moves on and the read goes on, so the
// reader above never sees a timeout that is not one (a partial frame is not
// lost).
type relayIdleReader struct {
	conn net.Conn
	sess *relaySession
	idle time.Duration
}

func (r *relayIdleReader) Read(p []byte) (int, error) {
	for {
		n, err := r.conn.Read(p)
		if n > 0 {
			r.sess.touch()
			return n, err
		}
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		last := time.Unix(0, r.sess.last.Load())
		if time.Since(last) >= r.idle {
			return 0, err
		}
		_ = r.conn.SetReadDeadline(last.Add(r.idle))
	}
}

// relayDeadlineWriter writes to a paired client with a deadline of timeout
// from (about) each write, so a client that stops reading stalls its
// partner's forwarder for at most that long. The deadline is moved only
// when a quarter of it has passed, not for every write.
type relayDeadlineWriter struct {
	conn    net.Conn
	timeout time.Duration
	armed   time.Time
}

func (w *relayDeadlineWriter) Write(p []byte) (int, error) {
	if now := time.Now(); now.Sub(w.armed) > w.timeout/4 {
		_ = w.conn.SetWriteDeadline(now.Add(w.timeout))
		w.armed = now
	}
	return w.conn.Write(p)
}

// relayBucket is a session's token bucket of bytes, shared by its two
// forwarders. A nil *relayBucket allows everything.
type relayBucket struct {
	mu     sync.Mutex
	rate   float64 // bytes per second
	burst  float64
	tokens float64 // may go negative: the debt is waited for
	last   time.Time
}

func newRelayBucket(rate int64, now time.Time) *relayBucket {
	if rate <= 0 {
		return nil
	}
	burst := max(float64(rate)*relayRateBurst.Seconds(), 2*MaxRelayFrame)
	return &relayBucket{rate: float64(rate), burst: burst, tokens: burst, last: now}
}

// take spends n bytes at now and returns how long to wait before relaying
// more.
func (b *relayBucket) take(n int, now time.Time) time.Duration {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.burst, b.tokens+d.Seconds()*b.rate)
		b.last = now
	}
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// SourceKey is what a per-source limit of the rendezvous server counts one
// source: an IPv4 address (IPv4-mapped IPv6 counts as IPv4), or an IPv6
// /64, since a host can pick any address of its /64 and must not get a
// fresh allowance for each. The relay and the STUN responder both use it.
func SourceKey(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap().WithZone("")
	bits := 64
	if ip.Is4() {
		bits = 32
	}
	p, _ := ip.Prefix(bits)
	return p
}

// relayAddrKey is the SourceKey of a connection's remote address.
func relayAddrKey(a net.Addr) netip.Prefix {
	var ip netip.Addr
	if ta, ok := a.(*net.TCPAddr); ok {
		ip = ta.AddrPort().Addr()
	} else if a != nil {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			ip = ap.Addr()
		}
	}
	return SourceKey(ip)
}

// remoteIP is the client's address for logs (no port: it says nothing more).
func remoteIP(c net.Conn) string {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap().String()
	}
	return c.RemoteAddr().String()
}
