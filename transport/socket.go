package transport

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Socket is ferry's magic socket: one per process. It owns the real sockets
// (carriers), reads them, sorts every datagram (QUIC, control, STUN) and
// routes it to the peer endpoint it belongs to. Each peer connection's
// quic.Transport sees only a virtual conn and a fixed virtual peer address,
// while the Socket validates and switches the real path underneath.
type Socket struct {
	cfg    Config
	log    *slog.Logger
	router *router
	pool   pktPool

	newest atomic.Pointer[carrierRef] // the newest carrier: new paths and STUN use it
	stun   atomic.Pointer[func([]byte, netip.AddrPort)]
	gather atomic.Pointer[Gatherer]

	mu       sync.Mutex
	carriers map[Carrier]time.Time // carrier -> when it was seen unused (zero while used)
	closed   bool

	tcpMu sync.Mutex
	tcp   *tcpPort // the TCP punching port, opened on first use

	watch     <-chan struct{} // the kernel's network change notifications; nil: none
	rebindReq chan struct{}
	gatherReq chan struct{}
	released  chan struct{}
	done      chan struct{}
	ctx       context.Context // ends with done, for what the socket's goroutines wait on
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	unknownIn atomic.Uint64 // datagrams no endpoint claimed
}

type carrierRef struct{ c Carrier }

// NewSocket opens the first local socket and starts reading it.
func NewSocket(cfg Config) (*Socket, error) {
	cfg = cfg.withDefaults()
	s := &Socket{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "transport"),
		router:    newRouter(),
		carriers:  make(map[Carrier]time.Time),
		rebindReq: make(chan struct{}, 1),
		gatherReq: make(chan struct{}, 1),
		released:  make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
	c, err := s.bind(cfg.ListenAddr)
	if err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if !cfg.NoNetworkWatch {
		// Subscribed here, on the caller's thread: a netlink socket
		// belongs to the network namespace of the thread that opens it.
		if s.watch, err = watchNetwork(s.done); err != nil {
			s.log.Debug("no network change notifications; polling only", "err", err)
		}
	}
	s.addCarrier(c)
	s.wg.Add(2)
	go s.maintain()
	go s.gatherLoop()
	return s, nil
}

func (s *Socket) bind(addr string) (Carrier, error) {
	if s.cfg.Bind != nil {
		pc, err := s.cfg.Bind()
		if err != nil {
			return nil, fmt.Errorf("transport: bind: %w", err)
		}
		return newUDPCarrier(pc), nil
	}
	udp, err := listenUDP(addr)
	if err != nil {
		return nil, err
	}
	return newUDPCarrier(udp), nil
}

// ownedCarrier is a carrier that reaches one peer only (a relay session, a
// punched TCP connection): what it reads belongs to that peer's endpoint,
// whatever it claims.
type ownedCarrier interface {
	Carrier
	owner() *endpoint
}

// addOwnedCarrier starts reading c. It is never the newest carrier: new
// paths and STUN use local sockets.
func (s *Socket) addOwnedCarrier(c ownedCarrier) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.carriers[c] = time.Time{}
	s.wg.Add(1)
	go s.readLoop(c)
	s.log.Info("peer connection open", "kind", c.Kind().String(), "local", c.LocalAddr())
	return true
}

// addCarrier makes c the newest carrier and starts its reader.
func (s *Socket) addCarrier(c Carrier) {
	s.mu.Lock()
	s.carriers[c] = time.Time{}
	s.mu.Unlock()
	s.newest.Store(&carrierRef{c})
	s.wg.Add(1)
	go s.readLoop(c)
	s.log.Info("local socket open", "local", c.LocalAddr(), "kind", c.Kind().String())
}

func (s *Socket) newestCarrier() Carrier { return s.newest.Load().c }

// rawConn is the newest carrier's real socket, if it is one: quic-go checks
// its capabilities (GSO, DF, buffer sizes) when a connection's transport is
// made. Taken at each Connect, never kept: an older socket may be retired
// and closed after a network change.
func (s *Socket) rawConn() syscall.RawConn {
	uc, ok := s.newestCarrier().(*udpCarrier)
	if !ok || uc.udp == nil {
		return nil
	}
	rc, err := uc.udp.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// LocalAddr is the address of the socket new paths start from.
func (s *Socket) LocalAddr() netip.AddrPort { return s.newestCarrier().LocalAddr() }

// LocalCandidates lists addresses a peer on the same network might reach this
// socket at: the bound address, or every interface address with the bound
// port when bound to the wildcard.
func (s *Socket) LocalCandidates() []netip.AddrPort { return hostCandidates(s.LocalAddr()) }

// hostCandidates is local itself, or every interface address with local's
// port when local is the wildcard address.
func hostCandidates(local netip.AddrPort) []netip.AddrPort {
	if !local.Addr().IsUnspecified() {
		return []netip.AddrPort{local}
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.AddrPort
	for _, a := range addrs {
		pfx, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		ip := pfx.Addr()
		if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsMulticast() {
			continue
		}
		if local.Addr().Is4() && !ip.Is4() {
			continue
		}
		out = append(out, netip.AddrPortFrom(ip, local.Port()))
	}
	return out
}

// readBatchLen is how many datagrams one read takes at most.
const readBatchLen = 32

// readLoop reads c until it is closed and routes every datagram. It owns
// the buffers it reads into; a QUIC packet's buffer is handed to the
// endpoint's queue and replaced.
func (s *Socket) readLoop(c Carrier) {
	defer s.wg.Done()
	ds := make([]Datagram, readBatchLen)
	bufs := make([]*pktBuf, readBatchLen)
	for i := range ds {
		bufs[i] = s.pool.get()
		ds[i].Buf = bufs[i].b[:]
	}
	// spare replaces the buffers handed on, refilled a batch at a time
	// from the pool's free list under one lock (pktPool).
	spare := make([]*pktBuf, 0, readBatchLen)
	defer func() {
		s.pool.putAll(bufs)
		s.pool.putAll(spare)
	}()
	for {
		n, err := c.ReadBatch(ds)
		if oc, ok := c.(ownedCarrier); ok && err != nil {
			// A stream (relay session, TCP) cannot go on after any read error.
			_ = oc.Close()
			if e := oc.owner(); e != nil && !s.isClosed() {
				e.carrierLost(oc)
			}
			return
		}
		if err != nil {
			if isClosedErr(err) || s.isClosed() || s.isRetired(c) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.log.Warn("read failed", "local", c.LocalAddr(), "err", err)
			select {
			case <-s.done:
				return
			case <-time.After(readErrorBackoff):
			}
			continue
		}
		for i := range n {
			d := &ds[i]
			if d.slab != nil {
				p := rxPkt{b: d.view, slab: d.slab}
				d.slab, d.view = nil, nil
				if !s.dispatch(p, d.From, c) {
					p.slab.release(1)
				}
				continue
			}
			if s.dispatch(rxPkt{b: bufs[i].b[:d.N], pb: bufs[i]}, d.From, c) {
				if len(spare) == 0 {
					spare = spare[:cap(spare)]
					s.pool.getAll(spare)
				}
				bufs[i], spare = spare[len(spare)-1], spare[:len(spare)-1]
				ds[i].Buf = bufs[i].b[:]
			}
		}
	}
}

// dispatch routes one datagram and reports whether it took p (and with it
// p's buffer or slab reference). What a relay carrier reads belongs to its
// endpoint alone, whatever it claims.
func (s *Socket) dispatch(p rxPkt, from netip.AddrPort, c Carrier) bool {
	b := p.b
	var owner *endpoint
	if oc, ok := c.(ownedCarrier); ok {
		owner = oc.owner()
	}
	switch Classify(b) {
	case ClassQUIC:
		e := owner
		if e == nil {
			e = s.router.routeQUIC(b, from)
		}
		if e == nil {
			s.unknownIn.Add(1)
			return false
		}
		e.receiveQUIC(p, from, c)
		return true
	case ClassControl:
		p, err := ParseControl(b)
		if err != nil {
			s.unknownIn.Add(1)
			return false
		}
		e := s.router.endpointBySession(p.Session)
		if e == nil || owner != nil && e != owner {
			s.unknownIn.Add(1)
			return false
		}
		e.handleControl(b, p, from, c)
	case ClassSTUN:
		if owner != nil {
			s.unknownIn.Add(1) // STUN is for local sockets
			return false
		}
		if h := s.stun.Load(); h != nil {
			(*h)(append([]byte(nil), b...), from)
		}
	default:
		s.unknownIn.Add(1)
	}
	return false
}

// SetSTUNHandler installs the function that receives STUN messages arriving
// on the shared socket (a copy each; it must not block). Package discovery's
// STUN client uses it so that the reflexive address it learns is the one
// the transport sends from.
func (s *Socket) SetSTUNHandler(h func(msg []byte, from netip.AddrPort)) {
	if h == nil {
		s.stun.Store(nil)
		return
	}
	s.stun.Store(&h)
}

// WriteSTUN sends a STUN message from the newest carrier.
func (s *Socket) WriteSTUN(msg []byte, to netip.AddrPort) error {
	if Classify(msg) != ClassSTUN {
		return errors.New("transport: WriteSTUN: not a STUN message")
	}
	return s.newestCarrier().WriteTo(msg, 0, to)
}

// NetworkChanged tells the socket that the local network changed (an
// interface or address came or went, the machine woke up): it opens a new
// local socket and moves every endpoint there, make-before-break. It returns
// at once; path subscribers hear of each move. The socket also notices
// address changes itself by polling.
func (s *Socket) NetworkChanged() {
	select {
	case s.rebindReq <- struct{}{}:
	default:
	}
}

// listenHostAnyPort is ListenAddr's host with port 0: where later local
// sockets (after a network change, the TCP punching port) are opened.
func (s *Socket) listenHostAnyPort() string {
	host, _, err := net.SplitHostPort(s.cfg.ListenAddr)
	if err != nil {
		host = ""
	}
	return net.JoinHostPort(host, "0")
}

// rebind opens a new carrier and starts moving endpoints to it.
func (s *Socket) rebind() {
	c, err := s.bind(s.listenHostAnyPort())
	if err != nil {
		s.log.Warn("network changed but no new socket could be opened", "err", err)
		return
	}
	old := s.newestCarrier()
	s.addCarrier(c)
	s.log.Info("network changed, moving to a new local socket", "old", old.LocalAddr(), "new", c.LocalAddr())
	now := time.Now()
	var relays []*relayCarrier
	for _, e := range s.router.endpoints() {
		e.mu.Lock()
		if rc := e.localChangedLocked(c, now); rc != nil {
			relays = append(relays, rc)
		}
		e.mu.Unlock()
	}
	for _, rc := range relays {
		_ = rc.Close() // its reader tells the endpoint, which joins again
	}
	s.requestGather()
	s.carrierReleased()
}

// carrierReleased asks the maintenance loop to look for unused carriers.
func (s *Socket) carrierReleased() {
	select {
	case s.released <- struct{}{}:
	default:
	}
}

// maintain is the socket's housekeeping goroutine: rebinds on request or on
// a detected network change, and closes old carriers nobody uses. Changes
// are detected by the kernel's notifications where there are some (netlink
// on Linux, netwatch_linux.go), each settled for netWatchSettle and then
// confirmed by the network's fingerprint, and by polling the fingerprint.
func (s *Socket) maintain() {
	defer s.wg.Done()
	var pollTick <-chan time.Time
	var mon *netMonitor
	if s.cfg.NetworkPollInterval > 0 || !s.cfg.NoNetworkWatch {
		mon = newNetMonitor(s.cfg.interfaceAddrs)
	}
	if s.cfg.NetworkPollInterval > 0 {
		t := time.NewTicker(s.cfg.NetworkPollInterval)
		defer t.Stop()
		pollTick = t.C
	}
	watch := s.watch
	settle := time.NewTimer(0)
	if !settle.Stop() {
		<-settle.C
	}
	defer settle.Stop()
	retire := time.NewTicker(s.cfg.RetireGrace / 4)
	defer retire.Stop()
	wake := newWakeWatch(time.Now())
	for {
		select {
		case <-s.done:
			return
		case <-s.rebindReq:
			s.rebind()
		case _, ok := <-watch:
			if !ok {
				watch = nil
				continue
			}
			settle.Reset(netWatchSettle)
		case <-settle.C:
			if mon.changed() {
				s.log.Info("the network changed")
				s.rebind()
			}
		case <-pollTick:
			if mon.changed() {
				s.log.Info("the network changed")
				s.rebind()
			}
		case <-s.released:
			s.retireUnused(time.Now())
		case <-retire.C:
			now := time.Now() // the tick's time may be from before a suspend
			if wake.woke(now) {
				s.log.Info("the machine woke up")
				s.rebind()
			}
			s.retireUnused(now)
		}
	}
}

// retireUnused closes carriers other than the newest that no endpoint has used for
// RetireGrace.
func (s *Socket) retireUnused(now time.Time) {
	newest := s.newestCarrier()
	eps := s.router.endpoints()
	s.mu.Lock()
	defer s.mu.Unlock()
	for c, since := range s.carriers {
		if c == newest {
			continue
		}
		used := false
		for _, e := range eps {
			if e.usesCarrier(c) {
				used = true
				break
			}
		}
		switch {
		case used:
			s.carriers[c] = time.Time{}
		case since.IsZero():
			s.carriers[c] = now
		case now.Sub(since) >= s.cfg.RetireGrace:
			delete(s.carriers, c)
			_ = c.Close()
			s.log.Info("old local socket closed", "local", c.LocalAddr())
		}
	}
}

func (s *Socket) isRetired(c Carrier) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.carriers[c]
	return !ok
}

func (s *Socket) isClosed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Close closes every connection and carrier and waits for the socket's
// goroutines to exit.
func (s *Socket) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	s.cancel()
	s.mu.Unlock()
	for _, e := range s.router.endpoints() {
		e.close()
	}
	s.mu.Lock()
	for c := range s.carriers {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.tcpMu.Lock()
	if s.tcp != nil {
		_ = s.tcp.Close()
	}
	s.tcpMu.Unlock()
	s.wg.Wait()
	return nil
}

// newTag picks an unused, non-zero router tag.
func (s *Socket) newTag() routerTag {
	for {
		var b [4]byte
		_, _ = rand.Read(b[:])
		t := routerTag(binary.BigEndian.Uint32(b[:]))
		if t != 0 && s.router.endpointByTag(t) == nil {
			return t
		}
	}
}
