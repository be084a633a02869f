package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// TCP hole punching by simultaneous open, for networks that block UDP
// (shared/seeds/001, shared/notes/nat-lab.md). Each side binds one local
// TCP port (tcpPort) with SO_REUSEADDR and SO_REUSEPORT, uses it for its
// connection to the rendezvous server (which reports the public address it
// saw), listens on it, and connects from it to the peer's public and
// private endpoints at the same time (punchTCP). Whichever SYN reaches a
// NAT first opens it for the other's; depending on the operating system
// the connection then completes as a simultaneous open (both connects
// succeed) or as an accept on the side whose listener took the SYN, so
// both are waited for. The first connection that authenticates wins; a
// tcpCarrier then carries the same datagrams a UDP path carries, framed.

// Timing and limits of a TCP punch, with the reason for each value.
const (
	// tcpPunchAttemptTimeout bounds one connect attempt to one remote. It
	// must exceed a round trip plus the handshake: the SYN that opens our
	// NAT for the peer may be the peer's, arriving up to a round trip after
	// ours left, and our socket must still be waiting in SYN-SENT then and
	// through the rest of the handshake; an attempt abandoned earlier
	// starts over on a new socket. In the NAT lab, with an 80 ms round
	// trip, 0.5 s failed 10 times out of 10 and 1.5 s succeeded 10 out of
	// 10 (shared/notes/nat-lab.md). (Each new attempt is a new socket, with
	// a new initial sequence number: see tcpPunch.dialLoop for what that
	// can cost behind a Linux NAT.)
	tcpPunchAttemptTimeout = 1500 * time.Millisecond
	// tcpPunchRetryInterval paces the attempts to one remote: a new one
	// starts no sooner than this after the previous one started. A refusal
	// or a reset comes back within a round trip and means nothing listens
	// there yet (the peer has not opened its port) or a host that is not
	// the peer answered; a retry every 100 ms is a trickle of 10 SYNs a
	// second to such a remote, and costs at most 100 ms once the peer's
	// port opens. (The lab's plain-socket punch uses the same pace.)
	tcpPunchRetryInterval = 100 * time.Millisecond
	// tcpPunchAuthTimeout is the deadline set on a connection while the
	// caller's auth runs on it. Authentication is a handshake of a few
	// round trips; 5 s leaves room for a slow path (round trips near a
	// second) while a connection that never answers (a stranger at one
	// of the peer's private addresses, a scanner that found our port)
	// gives back its slot.
	tcpPunchAuthTimeout = 5 * time.Second
	// tcpPunchMaxPending bounds the accepted connections being
	// authenticated at once; more are closed as they arrive. The peer
	// opens at most one connection per address it knows for us (a few),
	// while anyone who finds the listening port during the punch could
	// otherwise make us hold a socket and a goroutine per connection for
	// tcpPunchAuthTimeout each.
	tcpPunchMaxPending = 8
)

// aLongTimeAgo is a deadline in the past: setting it on the listener makes
// a blocked Accept return at once.
var aLongTimeAgo = time.Unix(1, 0)

// errPunchBusy: punchTCP was called on a port another punch is using.
var errPunchBusy = errors.New("transport: a TCP punch is already running on this port")

// tcpPort is one local TCP port, bound with SO_REUSEADDR and SO_REUSEPORT
// (reuseControl, per system), that listens and dials out from the same
// local address: the connection to the rendezvous server, the listener
// and every punching connect share it, so the NAT maps them all to one
// public port, the one the server reports.
//
// On Linux a tcpPort remembers the network namespace it was opened in and
// opens every outgoing socket there, whichever goroutine dials (see
// tcpNetns in tcppunch_linux.go); elsewhere there are no namespaces.
//
// Linux (tcppunch_linux.go) and the BSDs and macOS (tcppunch_bsd.go) set
// both options. Where SO_REUSEPORT does not exist (Windows, Solaris:
// tcppunch_other.go) the port is bound with SO_REUSEADDR alone. Windows lets sockets share a
// port with it; a system that does not turns DialFrom's bind into "address
// in use" while the port listens, and the port then only accepts, which
// still connects when the peer's SYN reaches us through our NAT (a cone
// NAT that admits it, or no NAT).
type tcpPort struct {
	ln     *net.TCPListener
	addr   netip.AddrPort
	ns     *tcpNetns // nil where namespaces do not exist or cannot be named
	closed atomic.Bool
	busy   atomic.Bool // a punchTCP is running on the port
}

// newTCPPort binds laddr ("0.0.0.0:0" for any IPv4 address and a port the
// kernel picks, "[::]:0" or ":0" for both families where the system
// allows) with SO_REUSEADDR and SO_REUSEPORT and listens on it.
func newTCPPort(ctx context.Context, laddr string) (*tcpPort, error) {
	// An IPv4 address means an IPv4 socket: Go would otherwise make
	// "0.0.0.0" a dual-stack IPv6 socket bound to [::].
	network := "tcp"
	if host, _, err := net.SplitHostPort(laddr); err == nil {
		if ip, err := netip.ParseAddr(host); err == nil && ip.Is4() {
			network = "tcp4"
		}
	}
	p := &tcpPort{}
	ns, err := openPinned(func() error {
		lc := net.ListenConfig{Control: reuseControl}
		ln, err := lc.Listen(ctx, network, laddr)
		if err != nil {
			return err
		}
		p.ln = ln.(*net.TCPListener)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("transport: TCP port %s: %w", laddr, err)
	}
	p.ns = ns
	p.addr = UnmapAddrPort(p.ln.Addr().(*net.TCPAddr).AddrPort())
	return p, nil
}

// Addr is the port's local address (the wildcard address if it was bound
// to one).
func (p *tcpPort) Addr() netip.AddrPort { return p.addr }

// DialFrom connects from the port's local address to raddr, within ctx
// (which should carry the attempt's timeout), in the port's namespace.
func (p *tcpPort) DialFrom(ctx context.Context, raddr netip.AddrPort) (net.Conn, error) {
	if p.closed.Load() {
		return nil, fmt.Errorf("transport: dial %v from a closed TCP port: %w", raddr, net.ErrClosed)
	}
	network := "tcp"
	if p.addr.Addr().Is4() {
		network = "tcp4"
	}
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(p.addr), Control: reuseControl}
	return p.ns.dial(func() (net.Conn, error) { return d.DialContext(ctx, network, raddr.String()) })
}

// Close stops listening. Connections made from or to the port stay open.
// Close a port only after the punches using it have returned.
func (p *tcpPort) Close() error {
	p.closed.Store(true)
	err := p.ln.Close()
	p.ns.close()
	return err
}

// usable reports whether the port can reach remote: a unicast address
// with a port, of a family the port's socket can dial, and not the port
// itself.
func (p *tcpPort) usable(remote netip.AddrPort) bool {
	if !UsableCandidate(remote) || remote == p.addr {
		return false
	}
	a := remote.Addr()
	local := p.addr.Addr()
	switch {
	case local.Is4():
		return a.Is4()
	case local.IsUnspecified(): // [::]: dual-stack, both families
		return true
	default:
		return a.Is6()
	}
}

// tcpPunchHooks observe a punch; tests set them, production passes nil.
// They are called from the punch's goroutines.
type tcpPunchHooks struct {
	// dialFailed is called after each failed connect attempt.
	dialFailed func(remote netip.AddrPort, err error)
	// won is called with how the winning connection came: "dialed" or
	// "accepted".
	won func(how string, c net.Conn)
}

// punchTCP opens a TCP connection to a peer by hole punching: from port,
// it connects to every remote at once (the peer's public and private
// endpoints), each attempt bounded by tcpPunchAttemptTimeout and a remote
// that refuses, resets or times out tried again, at most every
// tcpPunchRetryInterval; meanwhile it accepts on the port's listener. auth
// runs on every connection that completes, dialed or accepted, with a
// deadline of tcpPunchAuthTimeout on the connection (auth may set its own):
// the first connection for which it returns nil is returned, with its
// deadline cleared; every other one is closed. A connection whose auth
// fails is closed and its remote tried again. Without a winner, punchTCP
// returns when ctx ends, with an error naming the last failure.
//
// auth is the caller's handshake: it must refuse a connection to the wrong
// party and a connection to ourselves (a port can reach itself: keys bound
// to the direction defeat that), and, when several connections may
// authenticate, make both sides keep the same one, since each side takes
// the first that completes on its side: one side (the controlling one)
// accepts only the first connection that passes and tells the other on it,
// and the other side waits for that word.
//
// A known limit, behind Linux NATs: a peer whose SYN arrives just as one
// of our attempts gives way to the next can leave that remote unusable
// for about a minute (tcpPunch.dialLoop).
//
// Every goroutine punchTCP starts has ended when it returns. One punch at
// a time may use a port. Its sockets are all in the port's network
// namespace (tcpPort), so punchTCP may be called from any goroutine.
func punchTCP(ctx context.Context, port *tcpPort, remotes []netip.AddrPort, auth func(net.Conn) error) (net.Conn, error) {
	return punchTCPWith(ctx, port, remotes, auth, nil)
}

// punchTCPWith is punchTCP with hooks (nil: none).
func punchTCPWith(parent context.Context, port *tcpPort, remotes []netip.AddrPort, auth func(net.Conn) error, hooks *tcpPunchHooks) (net.Conn, error) {
	if !port.busy.CompareAndSwap(false, true) {
		return nil, errPunchBusy
	}
	defer port.busy.Store(false)
	if hooks == nil {
		hooks = &tcpPunchHooks{}
	}
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	p := &tcpPunch{
		ctx:     ctx,
		cancel:  cancel,
		port:    port,
		auth:    auth,
		hooks:   hooks,
		pending: make(map[net.Conn]struct{}),
		won:     make(chan struct{}),
	}
	if err := port.ln.SetDeadline(time.Time{}); err != nil { // a closed port
		return nil, fmt.Errorf("transport: TCP punch: %w", err)
	}
	var targets []netip.AddrPort
	for _, r := range remotes {
		r = UnmapAddrPort(r)
		if port.usable(r) && !slices.Contains(targets, r) {
			targets = append(targets, r)
		}
	}
	p.wg.Add(1 + len(targets))
	go p.acceptLoop()
	for _, r := range targets {
		go p.dialLoop(r)
	}
	select {
	case <-p.won:
	case <-ctx.Done():
	}
	p.stop()
	p.wg.Wait()
	_ = port.ln.SetDeadline(time.Time{})
	if p.winner != nil { // no goroutine is left to write it
		return p.winner, nil
	}
	err := context.Cause(ctx)
	if p.lastErr != nil {
		return nil, fmt.Errorf("transport: no TCP connection to %v (last failure: %v): %w", targets, p.lastErr, err)
	}
	return nil, fmt.Errorf("transport: no TCP connection to %v: %w", targets, err)
}

// tcpPunch is one run of punchTCP. Its goroutines are the acceptor, one
// dialer per remote and one authenticator per accepted connection; all
// are counted in wg, and all end once ctx is cancelled and stop has run.
type tcpPunch struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	port   *tcpPort
	auth   func(net.Conn) error
	hooks  *tcpPunchHooks
	wg     sync.WaitGroup

	mu       sync.Mutex
	pending  map[net.Conn]struct{} // connections being authenticated
	accepted int                   // accepted connections among them
	stopped  bool                  // stop ran: nothing new is admitted
	winner   net.Conn
	won      chan struct{} // closed when winner is set
	lastErr  error
}

// stop ends the punch: no goroutine admits a connection after it, the
// acceptor and the dialers' waits return (ctx), and every connection
// still being authenticated is closed under its auth.
func (p *tcpPunch) stop() {
	p.cancel(nil)
	_ = p.port.ln.SetDeadline(aLongTimeAgo)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	for c := range p.pending {
		c.Close()
	}
	clear(p.pending)
}

// fail records err as the punch's latest failure.
func (p *tcpPunch) fail(err error) {
	p.mu.Lock()
	p.lastErr = err
	p.mu.Unlock()
}

// dialLoop connects to remote until the punch ends. An attempt that timed
// out is followed at once by the next, because the switch is the one
// fragile moment of a punch behind a Linux (conntrack) NAT, as measured in
// the lab: each attempt is a new socket with a new initial sequence
// number, and if the peer's SYN crosses our NAT after our old attempt's
// SYN and before the new one's, the NAT goes on tracking the old number
// (the peer's SYN moved its entry into the simultaneous-open state, where
// a new SYN no longer resets it) and drops our answer as out of window,
// whether it comes from the new connect or from our listener. The
// half-open connection left behind then holds the address pair for about
// a minute (its SYN-ACK retries), and every connect to the remote fails
// with "cannot assign requested address" meanwhile. Keeping the switch to
// the microseconds of a new connect makes that improbable; connects that
// outlive the attempt timeout (the kernel's own SYN retries keep the
// number) would rule it out.
func (p *tcpPunch) dialLoop(remote netip.AddrPort) {
	defer p.wg.Done()
	for p.ctx.Err() == nil {
		start := time.Now()
		actx, cancel := context.WithTimeout(p.ctx, tcpPunchAttemptTimeout)
		c, err := p.port.DialFrom(actx, remote)
		cancel()
		if err == nil {
			if p.authenticate(c, "dialed", false) {
				return
			}
		} else if p.ctx.Err() == nil {
			if errors.Is(err, net.ErrClosed) && p.port.closed.Load() {
				p.cancel(fmt.Errorf("transport: TCP port closed during the punch: %w", net.ErrClosed))
				return
			}
			p.fail(fmt.Errorf("%v: %w", remote, err))
			if h := p.hooks.dialFailed; h != nil {
				h(remote, err)
			}
		}
		d := time.Until(start.Add(tcpPunchRetryInterval))
		if d <= 0 {
			continue
		}
		wait := time.NewTimer(d)
		select {
		case <-wait.C:
		case <-p.ctx.Done():
			wait.Stop()
		}
	}
}

// acceptLoop accepts on the port until the punch ends, authenticating each
// connection on a goroutine of its own, so that a silent one delays no
// other.
func (p *tcpPunch) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.port.ln.Accept()
		if p.ctx.Err() != nil { // stop set the listener's deadline
			if c != nil {
				c.Close()
			}
			return
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				p.cancel(fmt.Errorf("transport: TCP port closed during the punch: %w", net.ErrClosed))
				return
			}
			// Out of descriptors, an aborted connection: pause, go on.
			p.fail(fmt.Errorf("accept: %w", err))
			wait := time.NewTimer(tcpPunchRetryInterval)
			select {
			case <-wait.C:
			case <-p.ctx.Done():
				wait.Stop()
			}
			continue
		}
		p.mu.Lock()
		full := p.accepted >= tcpPunchMaxPending
		if !full {
			p.accepted++
		}
		p.mu.Unlock()
		if full {
			c.Close()
			continue
		}
		p.wg.Add(1) // this goroutine is counted: wg cannot be at zero
		go func() {
			defer p.wg.Done()
			p.authenticate(c, "accepted", true)
		}()
	}
}

// authenticate runs auth on c and takes it as the winner if it passes
// first; otherwise c is closed. It reports whether the punch is over (won
// by c or another, or stopped).
func (p *tcpPunch) authenticate(c net.Conn, how string, accepted bool) (over bool) {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		c.Close()
		return true
	}
	p.pending[c] = struct{}{}
	p.mu.Unlock()

	_ = c.SetDeadline(time.Now().Add(tcpPunchAuthTimeout))
	err := p.auth(c)
	if err == nil {
		err = c.SetDeadline(time.Time{})
	}

	p.mu.Lock()
	delete(p.pending, c)
	if accepted {
		p.accepted--
	}
	won := err == nil && !p.stopped && p.winner == nil
	if won {
		p.winner = c
		close(p.won)
	} else if err != nil && !p.stopped {
		p.lastErr = fmt.Errorf("auth on the %s connection with %v: %w", how, c.RemoteAddr(), err)
	}
	over = p.stopped || p.winner != nil
	p.mu.Unlock()
	if !won {
		c.Close()
	} else if h := p.hooks.won; h != nil {
		h(how, c)
	}
	return over
}
