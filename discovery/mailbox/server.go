package mailbox

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ServerConfig configures a Server. Zero values mean the defaults; for the
// limits, a negative value means "no limit".
type ServerConfig struct {
	// Store keeps nameplates and mailboxes; default NewMemStore().
	Store Store
	// Logger receives structured logs (never message bodies); default
	// slog.Default().
	Logger *slog.Logger

	// NameplateTTL is how long an allocated nameplate waits for its second
	// side; default 10 minutes.
	NameplateTTL time.Duration
	// IdleTimeout closes connections that send nothing for this long;
	// default 2 minutes. Clients send pings to stay connected.
	IdleTimeout time.Duration
	// HelloTimeout is how long a new connection has to send hello; default
	// 10 s.
	HelloTimeout time.Duration

	// MaxNameplatesPerIP bounds the open nameplates allocated from one
	// client IP address; default 64.
	MaxNameplatesPerIP int
	// RequestRate and RequestBurst are the token bucket that limits each
	// connection's requests; default 20/s with a burst of 40.
	RequestRate  float64
	RequestBurst int

	// Advertise is this server's own address, HOST:PORT, sent to every
	// client in its welcome as the relay to use; empty when the clients'
	// rendezvous address names this server alone. Servers sharing a Store
	// behind one name must each advertise their own (see protocol.go).
	Advertise string
	// STUNAltPort is the port of the second STUN socket (ServeSTUNPair),
	// told to clients in the welcome; 0 for none.
	STUNAltPort int

	// MaxBody bounds a message body in bytes (decoded); default 4096.
	MaxBody int
	// MaxMessages bounds the messages in one mailbox; default 32.
	MaxMessages int
}

func (cfg ServerConfig) withDefaults() ServerConfig {
	if cfg.Store == nil {
		cfg.Store = NewMemStore()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.NameplateTTL <= 0 {
		cfg.NameplateTTL = DefaultNameplateTTL
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.HelloTimeout <= 0 {
		cfg.HelloTimeout = DefaultHelloTimeout
	}
	if cfg.MaxNameplatesPerIP == 0 {
		cfg.MaxNameplatesPerIP = DefaultMaxNameplatesPerIP
	}
	if cfg.RequestRate == 0 {
		cfg.RequestRate = DefaultRequestRate
	}
	if cfg.RequestBurst <= 0 {
		cfg.RequestBurst = DefaultRequestBurst
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.MaxMessages == 0 {
		cfg.MaxMessages = DefaultMaxMessages
	}
	return cfg
}

// ErrServerClosed is returned by Serve and ServeSTUN when called after
// Shutdown.
var ErrServerClosed = errors.New("mailbox: server closed")

// Server is a mailbox rendezvous server. One Server may serve several
// listeners; all share its Store.
type Server struct {
	cfg   ServerConfig
	store Store
	log   *slog.Logger

	mu        sync.Mutex
	closed    bool
	done      chan struct{} // closed by Shutdown
	listeners map[net.Listener]struct{}
	packets   map[net.PacketConn]struct{}
	conns     map[*conn]struct{}
	handlers  sync.WaitGroup
	janitor   sync.Once

	stunLimit stunLimiter // per-source STUN answer budget, for every ServeSTUN
	stats     serverStats // behind Stats
	handover  atomic.Bool // draining: connections that end leave the store as it is
}

// NewServer returns a Server configured by cfg (see ServerConfig for the
// defaults). It does nothing until Serve or ServeSTUN is called.
func NewServer(cfg ServerConfig) *Server {
	cfg = cfg.withDefaults()
	return &Server{
		cfg:       cfg,
		store:     cfg.Store,
		log:       cfg.Logger,
		done:      make(chan struct{}),
		listeners: make(map[net.Listener]struct{}),
		packets:   make(map[net.PacketConn]struct{}),
		conns:     make(map[*conn]struct{}),
	}
}

// Serve accepts TCP mailbox clients on ln until ctx is done or Shutdown.
// When ctx is done it shuts the whole server down gracefully (as Shutdown,
// giving clients a few seconds) before returning. It closes ln and returns
// nil when stopped by ctx or Shutdown, ErrServerClosed when called after
// Shutdown, and otherwise the error that stopped it.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	defer ln.Close()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	s.startJanitor()

	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return nil
			}
			if ctx.Err() != nil {
				sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
				defer cancel()
				_ = s.Shutdown(sctx)
				return nil
			}
			if !temporaryAcceptError(err) {
				return err
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("mailbox accept failed; retrying", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			case <-s.done:
			}
			continue
		}
		backoff = 0
		s.startConn(nc)
	}
}

// temporaryAcceptError reports whether Accept may succeed if retried, as
// when the process ran out of file descriptors.
func temporaryAcceptError(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ECONNRESET)
}

func (s *Server) startConn(nc net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		nc.Close()
		return
	}
	c := newConn(s, nc)
	s.conns[c] = struct{}{}
	s.handlers.Add(1)
	go c.serve()
}

func (s *Server) connDone(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.handlers.Done()
}

func (s *Server) isClosed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// startJanitor starts the goroutine that expires nameplates; it runs until
// Shutdown.
func (s *Server) startJanitor() {
	s.janitor.Do(func() {
		interval := min(max(s.cfg.NameplateTTL/8, 10*time.Millisecond), 15*time.Second)
		go func() {
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				select {
				case <-s.done:
					return
				case now := <-t.C:
					ctx, cancel := context.WithTimeout(context.Background(), interval)
					expired, err := s.store.Expire(ctx, now)
					cancel()
					if err != nil {
						s.log.Error("mailbox store expiry failed", "err", err)
					}
					for _, np := range expired {
						s.log.Info("nameplate expired", "nameplate", logNameplate(np))
					}
				}
			}
		}()
	})
}

// Shutdown stops the server gracefully: it stops accepting, stops ServeSTUN,
// tells every connected client with an error frame (code "shutting_down")
// and closes the connections once the clients have read it, within a few
// seconds. If ctx ends first, it drops the remaining connections and returns
// ctx.Err(). It may be called more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.stop(ctx, ErrShuttingDown)
}

// Drain is Shutdown for a server that goes away while others stay: the
// error frame's code is "draining" (ErrServerDraining), which tells clients
// to connect again, to whichever server the rendezvous address leads to
// now. The connections it ends leave their claims and nameplates in the
// store, so that with a shared store (Redis) a client that reconnects
// under its side (DialSide) and claims again carries its pairing on there.
func (s *Server) Drain(ctx context.Context) error {
	s.handover.Store(true)
	return s.stop(ctx, ErrServerDraining)
}

// stop is Shutdown and Drain: why is the error frame sent to every client.
// Only the first call's why is sent.
func (s *Server) stop(ctx context.Context, why *Error) error {
	s.beginStop(why)
	return s.awaitConns(ctx)
}

// beginStop stops accepting and STUN, and tells every client why with its
// final frame. Only the first call has an effect on the clients.
func (s *Server) beginStop(why *Error) {
	first := s.stopAccepting()
	s.mu.Lock()
	conns := mapKeys(s.conns)
	s.mu.Unlock()
	if first {
		s.log.Info("mailbox server stopping", "connections", len(conns), "told", why.Code)
	}
	for _, c := range conns {
		go c.finish(errorFrame(nil, why))
	}
}

// stopAccepting marks the server closed and closes its listeners and STUN
// sockets (Serve and ServeSTUN return nil); it reports whether this was the
// first call.
func (s *Server) stopAccepting() (first bool) {
	s.mu.Lock()
	if !s.closed {
		first = true
		s.closed = true
		close(s.done)
	}
	lns := mapKeys(s.listeners)
	pcs := mapKeys(s.packets)
	s.mu.Unlock()
	for _, ln := range lns {
		ln.Close()
	}
	for _, pc := range pcs {
		pc.Close()
	}
	return first
}

// awaitConns waits for every connection to end; if ctx ends first, it drops
// the remaining connections and returns ctx.Err().
func (s *Server) awaitConns(ctx context.Context) error {
	idle := make(chan struct{})
	go func() {
		s.handlers.Wait()
		close(idle)
	}()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		conns := mapKeys(s.conns)
		s.mu.Unlock()
		for _, c := range conns {
			c.nc.Close()
		}
		return ctx.Err()
	}
}

func mapKeys[K comparable](m map[K]struct{}) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Listen opens a TCP listener and a UDP socket on the same port of addr
// (host:port); with port 0 it picks a port that is free for both. Pass the
// results to Serve and ServeSTUN; ln.Addr() tells the port.
func Listen(addr string) (ln net.Listener, pc net.PacketConn, err error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	for attempt := 0; ; attempt++ {
		ln, err = net.Listen("tcp", addr)
		if err != nil {
			return nil, nil, err
		}
		p := ln.Addr().(*net.TCPAddr).Port
		pc, err = net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err == nil {
			return ln, pc, nil
		}
		ln.Close()
		if port != "0" && port != "" || attempt >= 20 {
			return nil, nil, err
		}
	}
}

// ListenAndServe listens on addr for both TCP (mailbox) and UDP (STUN) on
// the same port and serves until ctx is done; then shuts down gracefully
// (stop accepting, tell connected clients with an error frame code
// "shutting_down", close within a few seconds), or drains (WithDrain). With
// WithRelay or WithRelayServer, the TCP port serves relay connections too
// (see Demux); they are closed, and the relay handler has returned, before
// ListenAndServe returns.
func ListenAndServe(ctx context.Context, addr string, cfg ServerConfig, opts ...ListenOption) error {
	ln, pc, err := Listen(addr)
	if err != nil {
		return err
	}
	return NewServer(cfg).ServeAll(ctx, ln, pc, opts...)
}

// ServeAll is ListenAndServe's work on a Server and listeners already open
// (see Listen): the mailbox (and the relay, with its options) on ln, STUN
// on pc, until ctx is done. It closes both.
func (s *Server) ServeAll(ctx context.Context, ln net.Listener, pc net.PacketConn, opts ...ListenOption) error {
	var lo listenOptions
	for _, opt := range opts {
		opt(&lo)
	}
	if lo.stunAlt != nil {
		s.log.Info("mailbox server listening", "tcp", ln.Addr().String(), "udp", pc.LocalAddr().String(), "stun_alt", lo.stunAlt.LocalAddr().String())
	} else {
		s.log.Info("mailbox server listening", "tcp", ln.Addr().String(), "udp", pc.LocalAddr().String())
	}

	// inner ends everything started here; ctx only starts the stop, which
	// may be a drain.
	inner, cancel := context.WithCancel(context.Background())
	defer cancel()
	stunErr := make(chan error, 1)
	go func() {
		var err error
		if lo.stunAlt != nil {
			err = s.ServeSTUNPair(inner, pc, lo.stunAlt)
		} else {
			err = s.ServeSTUN(inner, pc)
		}
		if err != nil {
			cancel()
		}
		stunErr <- err
	}()
	var mailboxLn net.Listener = ln
	var demux *Demux
	demuxErr := make(chan error, 1)
	accepting, stopAccepting := context.WithCancel(inner)
	defer stopAccepting()
	if lo.relay != nil {
		demux = NewDemux(ln, func(c net.Conn) { lo.relay(inner, c) }, s.log)
		mailboxLn = demux.Mailbox()
		go func() {
			err := demux.Serve(accepting)
			if err != nil {
				cancel()
			}
			demuxErr <- err
		}()
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- s.Serve(inner, mailboxLn) }()
	var err error
	select {
	case err = <-serveErr:
	case <-ctx.Done():
		if lo.drain > 0 {
			s.drainAll(&lo, func() {
				// ln is closed here, not only by the Demux once it sees
				// accepting end, so that nothing is accepted once the
				// drain has begun.
				stopAccepting()
				ln.Close()
			})
		}
		cancel()
		err = <-serveErr
	}
	cancel()
	// Stopped before Serve or ServeSTUN started (their goroutines may run
	// late): stopped all the same.
	stoppedEarly := func(err error) error {
		if errors.Is(err, ErrServerClosed) {
			return nil
		}
		return err
	}
	err = stoppedEarly(err)
	sctx, scancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer scancel()
	if serr := s.Shutdown(sctx); err == nil {
		err = serr
	}
	if demux != nil {
		demux.Close()
		// The demultiplexer's error is the cause of the mailbox's, if any.
		if derr := <-demuxErr; derr != nil {
			err = derr
		}
	}
	if serr := stoppedEarly(<-stunErr); err == nil {
		err = serr
	}
	return err
}

// drainAll drains the mailbox and the relay at once: the mailbox stops
// accepting, closePort closes the port, its clients are told to go
// elsewhere (as Drain does), and relay sessions in progress get up to
// lo.drain (or until lo.hurry) to end.
func (s *Server) drainAll(lo *listenOptions, closePort func()) {
	s.mu.Lock()
	clients := len(s.conns)
	s.mu.Unlock()
	s.log.Info("rendezvous draining: no longer accepting", "mailbox_clients", clients, "relay_deadline", lo.drain)
	// In this order: the Demux closing the mailbox's listener is no
	// failure of a Serve already stopped, and no client is told to go
	// before the port is closed.
	s.stopAccepting()
	closePort()
	s.handover.Store(true)
	s.beginStop(ErrServerDraining)
	dctx, dcancel := context.WithTimeout(context.Background(), lo.drain)
	defer dcancel()
	if lo.hurry != nil {
		stop := context.AfterFunc(lo.hurry, dcancel)
		defer stop()
	}
	relayDone := make(chan [2]int, 1)
	go func() {
		var r [2]int
		if lo.drainRelay != nil {
			r[0], r[1] = lo.drainRelay(dctx)
		}
		relayDone <- r
	}()
	sctx, scancel := context.WithTimeout(dctx, shutdownGrace)
	defer scancel()
	_ = s.awaitConns(sctx)
	r := <-relayDone
	s.log.Info("rendezvous drained", "relay_sessions_in_progress", r[0], "relay_sessions_cut", r[1])
}
