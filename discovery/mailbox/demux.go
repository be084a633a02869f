package mailbox

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"ferry/transport"
)

// peekTimeout bounds the wait for a new connection's first bytes, which
// tell a relay client from a mailbox one. Both send right after
// connecting, so the bytes come within a round trip, or a few seconds when
// the first segment is lost (TCP retransmits after 1 s, then 2 s more). A
// client still silent is handed to the mailbox, whose hello timeout closes
// it as before.
const peekTimeout = 5 * time.Second

// Demux shares one TCP listener between the mailbox and the relay. Each
// accepted connection is classified by its first bytes in a goroutine of
// its own, so a slow or silent client never holds up the others:
//
//	transport.RelayMagic ("FRYR")            the relay handler
//	transport.RelayAddrMagic ("FRYA")        the relay handler (address query)
//	anything else, or nothing in peekTimeout  the mailbox, through Mailbox()
//
// No mailbox client is taken for a relay one: a mailbox frame starts with
// its length, whose first byte is 0 for every frame the mailbox accepts.
// The bytes read to classify a connection are read again, first, by
// whichever handler gets it.
//
// Ownership: the Demux owns a connection while it is classified and while
// the relay handler runs (the handler runs in the classifying goroutine);
// the mailbox Server owns it once Accept on Mailbox() returned it.
type Demux struct {
	ln          net.Listener
	relay       func(net.Conn)
	log         *slog.Logger
	mbox        *connListener
	peekTimeout time.Duration // peekTimeout; shorter in tests

	mu      sync.Mutex
	closed  bool
	conns   map[net.Conn]struct{} // being classified or relayed
	handles sync.WaitGroup        // their goroutines
}

// NewDemux returns a Demux of ln that hands relay connections to relay,
// which must return once the connection is closed (Close closes it). log
// may be nil (slog.Default()). Nothing happens until Serve.
func NewDemux(ln net.Listener, relay func(net.Conn), log *slog.Logger) *Demux {
	if log == nil {
		log = slog.Default()
	}
	return &Demux{
		ln:          ln,
		relay:       relay,
		log:         log,
		mbox:        newConnListener(ln.Addr()),
		peekTimeout: peekTimeout,
		conns:       make(map[net.Conn]struct{}),
	}
}

// Mailbox returns the listener of the mailbox's connections, for
// Server.Serve. Closing it makes Demux close mailbox connections instead
// of handing them over.
func (d *Demux) Mailbox() net.Listener { return d.mbox }

// Serve accepts on the listener until ctx is done or Close. It closes the
// listener and the Mailbox() listener, and returns nil when stopped by ctx
// or Close, and otherwise the error that stopped it. Connections already
// accepted go on until Close.
func (d *Demux) Serve(ctx context.Context) error {
	defer d.mbox.Close()
	defer d.ln.Close()
	stop := context.AfterFunc(ctx, func() { d.ln.Close() })
	defer stop()
	var backoff time.Duration
	for {
		c, err := d.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || d.isClosed() {
				return nil
			}
			if !temporaryAcceptError(err) {
				return err
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			d.log.Warn("rendezvous accept failed; retrying", "err", err, "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
			continue
		}
		backoff = 0
		if !d.track(c) {
			c.Close()
			return nil
		}
		go d.handle(c)
	}
}

// Close stops Serve, closes the Mailbox() listener and every connection
// still being classified or relayed, and returns when their goroutines
// (and so the relay handler calls) have returned.
func (d *Demux) Close() error {
	d.mu.Lock()
	d.closed = true
	conns := mapKeys(d.conns)
	d.mu.Unlock()
	d.ln.Close()
	d.mbox.Close()
	for _, c := range conns {
		c.Close()
	}
	d.handles.Wait()
	return nil
}

func (d *Demux) isClosed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closed
}

func (d *Demux) track(c net.Conn) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	d.conns[c] = struct{}{}
	d.handles.Add(1)
	return true
}

func (d *Demux) untrack(c net.Conn) {
	d.mu.Lock()
	delete(d.conns, c)
	d.mu.Unlock()
}

// handle classifies c and hands it on.
func (d *Demux) handle(c net.Conn) {
	defer d.handles.Done()
	head, relay := d.peek(c)
	var nc net.Conn = c
	if len(head) > 0 {
		nc = &prefixConn{Conn: c, prefix: head}
	}
	if relay {
		d.relay(nc)
		d.untrack(c)
		c.Close()
		return
	}
	d.untrack(c)
	if !d.mbox.deliver(nc) {
		c.Close()
	}
}

// peek reads c's first bytes, until they are the relay magic, or cannot
// become it, or peekTimeout passes, or the read fails (the mailbox then
// sees the same end). It returns what it read.
func (d *Demux) peek(c net.Conn) (head []byte, relay bool) {
	const magicLen = len(transport.RelayMagic)
	_ = c.SetReadDeadline(time.Now().Add(d.peekTimeout))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, magicLen)
	got := 0
	for got < magicLen {
		n, err := c.Read(buf[got:])
		got += n
		if !strings.HasPrefix(transport.RelayMagic, string(buf[:min(got, magicLen-1)])) || err != nil {
			return buf[:got], false
		}
	}
	return buf, transport.IsRelayMagic(buf)
}

// prefixConn is a connection whose first bytes were already read: Read
// returns them first. Its reader is a single goroutine, as for any
// net.Conn a handler reads.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite half-closes, as the mailbox does after its last frame.
func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// connListener is a net.Listener whose connections are handed to it by
// deliver.
type connListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

// deliver hands c to Accept; it reports false if the listener is closed.
func (l *connListener) deliver(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.addr, Err: net.ErrClosed}
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }

// ListenOption adds to what ListenAndServe and Server.ServeAll serve.
type ListenOption func(*listenOptions)

type listenOptions struct {
	stunAlt    net.PacketConn
	relay      func(ctx context.Context, c net.Conn)
	drainRelay func(ctx context.Context) (inProgress, cut int)
	drain      time.Duration
	hurry      context.Context
}

// WithSTUNAlt makes ServeAll answer STUN on pc as well as on its own UDP
// socket, as a pair (Server.ServeSTUNPair): pc should be the port above,
// on the same address, and ServerConfig.STUNAltPort its port, so that
// clients learn of it.
func WithSTUNAlt(pc net.PacketConn) ListenOption {
	return func(o *listenOptions) { o.stunAlt = pc }
}

// WithRelay makes ListenAndServe serve the relay on its TCP port too: a
// connection that starts with transport.RelayMagic goes to relay (see
// Demux), which must return once the connection is closed. Without it the
// port serves the mailbox alone, as before.
func WithRelay(relay func(net.Conn)) ListenOption {
	return func(o *listenOptions) {
		o.relay = func(_ context.Context, c net.Conn) { relay(c) }
		o.drainRelay = nil
	}
}

// WithRelayServer is WithRelay for r: relay connections go to r.ServeConn,
// and a drain (WithDrain) drains r too.
func WithRelayServer(r *transport.RelayServer) ListenOption {
	return func(o *listenOptions) {
		o.relay = r.ServeConn
		o.drainRelay = r.Drain
	}
}

// WithDrain makes the end of ctx a drain rather than a shutdown, for a
// server that goes away while others stay: the port stops accepting (new
// connections are refused), mailbox clients are told "draining"
// (ErrServerDraining: connect again, elsewhere), and relay sessions in
// progress (WithRelayServer) may go on for up to timeout before they are
// closed. hurry, if not nil, cuts the drain short when it is done (a
// second signal).
func WithDrain(timeout time.Duration, hurry context.Context) ListenOption {
	return func(o *listenOptions) { o.drain, o.hurry = timeout, hurry }
}
