package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"ferry/discovery/mailbox"
	"ferry/discovery/portmap"
	"ferry/transport"
)

// Mapping is how a NAT maps a socket's outgoing packets (RFC 4787), as
// ferry netcheck reports it. The values are a public JSON contract.
type Mapping string

// Mapping behaviours.
const (
	// MappingIndependent: one public address and port for every
	// destination (cone NATs, or no NAT): punching works with most peers.
	MappingIndependent Mapping = "endpoint-independent"
	// MappingDependent: a new public port per destination (symmetric
	// NATs): the port a server saw is not the one a peer will see.
	MappingDependent Mapping = "endpoint-dependent"
	// MappingUnknown: it could not be told (no UDP, or the server has no
	// second STUN port).
	MappingUnknown Mapping = "unknown"
)

// Filtering is what a NAT lets in (RFC 4787). The values are a public
// JSON contract.
type Filtering string

// Filtering behaviours.
const (
	FilteringIndependent    Filtering = "endpoint-independent"
	FilteringAddress        Filtering = "address-dependent"
	FilteringAddressAndPort Filtering = "address-and-port-dependent"
	FilteringUnknown        Filtering = "unknown"
)

// Port mapping protocols a router may answer, for NetReport.PortMap. The
// values are a public JSON contract.
const (
	PortMapNone   = "none"
	PortMapNATPMP = "nat-pmp"
	PortMapPCP    = "pcp"
	PortMapUPnP   = "upnp"
)

// NetcheckConfig says what Netcheck checks against.
type NetcheckConfig struct {
	// Rendezvous is the rendezvous server, HOST:PORT; empty checks only
	// the router's port mapping.
	Rendezvous string
	// PortMap, if set, asks the router for a short-lived mapping of the
	// check's UDP port, deletes it, and says which protocol answered (one
	// of the PortMap constants) and the public address it gave. Nil
	// reports PortMapNone.
	PortMap func(ctx context.Context, localPort uint16) (protocol string, public netip.AddrPort, err error)
	// Timeout bounds the whole check; default 4 s.
	Timeout time.Duration
	// Logger receives debug logs; default slog.Default().
	Logger *slog.Logger
}

// NetReport is what Netcheck found. Its JSON form (ui/cli) is a public
// contract.
type NetReport struct {
	// Rendezvous is the server checked against; empty for none.
	Rendezvous string
	// UDP: the server's STUN answered.
	UDP bool
	// Reflexive are the public addresses the server's STUN ports saw
	// (two for a NAT that maps per destination).
	Reflexive []netip.AddrPort
	// Local is the UDP socket's own address towards the server.
	Local     netip.AddrPort
	Mapping   Mapping
	Filtering Filtering
	// TCP: the server answered over TCP; TCPReflexive is the address it
	// saw, TCPPortPreserved whether that kept the local port.
	TCP              bool
	TCPReflexive     netip.AddrPort
	TCPPortPreserved bool
	// PortMap is the protocol the router answered (PortMap constants) and
	// PortMapAddress the public address of the mapping it gave.
	PortMap        string
	PortMapAddress netip.AddrPort
	// RelayRTT is the round trip of a TCP handshake with the server,
	// whose port also relays; zero when it was not reached.
	RelayRTT time.Duration
	// Verdict says in one sentence what follows for transfers.
	Verdict string
}

// Public reports whether the UDP socket is not behind a NAT: the server
// saw its own address.
func (r *NetReport) Public() bool {
	return r.UDP && r.Local.IsValid() && len(r.Reflexive) > 0 && r.Reflexive[0] == r.Local
}

// Timings of a check.
const (
	defaultNetcheckTimeout = 4 * time.Second
	// changePortWait is how long a change-port answer is waited for once
	// the ordinary answer came: it takes the same round trip.
	changePortWait = time.Second
)

// Netcheck checks what the network allows: UDP to the rendezvous server's
// STUN and the NAT's mapping and filtering behaviour (with the server's
// second STUN port), TCP to the server and the public address it sees,
// the router's port mapping, and the round trip to the relay. Each part
// that fails is reported as such; an error is returned only if the check
// could not start.
func Netcheck(ctx context.Context, cfg NetcheckConfig) (*NetReport, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultNetcheckTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	r := &NetReport{Rendezvous: cfg.Rendezvous, Mapping: MappingUnknown, Filtering: FilteringUnknown, PortMap: PortMapNone}

	uc, err := net.ListenUDP("udp", nil)
	if err != nil {
		return nil, fmt.Errorf("discovery: netcheck socket: %w", err)
	}
	sock := newUDPSTUNSocket(uc)
	defer sock.close()
	localPort := uint16(uc.LocalAddr().(*net.UDPAddr).Port)

	var wg sync.WaitGroup
	if cfg.PortMap != nil {
		wg.Go(func() {
			proto, public, err := cfg.PortMap(ctx, localPort)
			if err != nil {
				cfg.Logger.Debug("netcheck: no port mapping", "err", err)
				return
			}
			r.PortMap, r.PortMapAddress = proto, public
		})
	}
	if cfg.Rendezvous != "" {
		checkServer(ctx, cfg, r, sock, localPort)
	}
	wg.Wait()
	r.Verdict = verdict(r)
	return r, nil
}

// checkServer runs the checks against the rendezvous server: TCP (which
// also brings the second STUN port from the mailbox welcome) while the
// first STUN query runs, then the second port's.
func checkServer(ctx context.Context, cfg NetcheckConfig, r *NetReport, sock *udpSTUNSocket, localPort uint16) {
	server, err := resolveServer(ctx, cfg.Rendezvous)
	if err != nil {
		cfg.Logger.Debug("netcheck: resolve", "err", err)
		return
	}
	c := NewSTUNClient(sock)
	defer c.Close()
	var alt uint16
	var wg sync.WaitGroup
	wg.Go(func() {
		tctx, cancel := context.WithTimeout(ctx, cfg.Timeout/2)
		defer cancel()
		alt = checkTCP(tctx, cfg, r, server)
	})
	qctx, qcancel := context.WithTimeout(ctx, cfg.Timeout/2)
	first, err := c.Query(qctx, server)
	qcancel()
	wg.Wait()
	if err != nil {
		cfg.Logger.Debug("netcheck: STUN", "err", err)
		return
	}
	r.UDP = true
	r.Reflexive = []netip.AddrPort{first}
	if local, err := portmap.LocalAddrTowards(server.Addr()); err == nil {
		r.Local = netip.AddrPortFrom(local, localPort)
	}
	if alt == 0 && !r.TCP {
		// No welcome to tell: try the documented default, the port
		// above; only an answer from there counts.
		alt = server.Port() + 1
	}
	if alt != 0 {
		checkBehaviour(ctx, cfg, r, c, server, netip.AddrPortFrom(server.Addr(), alt))
	}
	if r.Public() {
		r.Mapping = MappingIndependent
	}
}

// resolveServer returns the first address of hostport, IPv4 first.
func resolveServer(ctx context.Context, hostport string) (netip.AddrPort, error) {
	addrs, err := resolveAddrPorts(ctx, hostport)
	if err != nil {
		return netip.AddrPort{}, err
	}
	slices.SortStableFunc(addrs, func(a, b netip.AddrPort) int {
		if a.Addr().Is4() == b.Addr().Is4() {
			return 0
		}
		if a.Addr().Is4() {
			return -1
		}
		return 1
	})
	return addrs[0], nil
}

// checkTCP asks the server over TCP which address it sees (the relay's
// address query), times the handshake, and reads the server's second
// STUN port from its mailbox welcome, which it returns.
func checkTCP(ctx context.Context, cfg NetcheckConfig, r *NetReport, server netip.AddrPort) (alt uint16) {
	var d net.Dialer
	start := time.Now()
	c, err := d.DialContext(ctx, "tcp", server.String())
	if err != nil {
		cfg.Logger.Debug("netcheck: TCP", "err", err)
		return 0
	}
	r.RelayRTT = time.Since(start)
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := c.Write([]byte(transport.RelayAddrMagic)); err != nil {
		return 0
	}
	seen, err := transport.ReadRelayAddr(c)
	if err != nil {
		cfg.Logger.Debug("netcheck: TCP address query", "err", err)
		return 0
	}
	r.TCP = true
	r.TCPReflexive = transport.UnmapAddrPort(seen)
	if la, ok := c.LocalAddr().(*net.TCPAddr); ok {
		r.TCPPortPreserved = uint16(la.Port) == r.TCPReflexive.Port()
	}
	mb, err := mailbox.Dial(ctx, server.String())
	if err != nil {
		cfg.Logger.Debug("netcheck: mailbox", "err", err)
		return 0
	}
	defer mb.Close(ctx, mailbox.Lonely)
	return mb.STUNAltPort()
}

// checkBehaviour asks the server's second STUN port, alt, from the same
// socket (mapping) and, from a fresh socket that has sent nothing to alt,
// asks the first port to answer from alt (filtering).
func checkBehaviour(ctx context.Context, cfg NetcheckConfig, r *NetReport, c *STUNClient, server, alt netip.AddrPort) {
	first := r.Reflexive[0]
	var wg sync.WaitGroup
	var second netip.AddrPort
	filtered, tested := false, false
	wg.Go(func() {
		var err error
		if second, err = c.Query(ctx, alt); err != nil {
			cfg.Logger.Debug("netcheck: second STUN port", "err", err)
		}
	})
	wg.Go(func() {
		uc, err := net.ListenUDP("udp", nil)
		if err != nil {
			return
		}
		sock := newUDPSTUNSocket(uc)
		defer sock.close()
		fc := NewSTUNClient(sock)
		defer fc.Close()
		wctx, cancel := context.WithTimeout(ctx, changePortWait)
		defer cancel()
		_, err = fc.QueryChangePort(wctx, server, alt)
		filtered, tested = err != nil, ctx.Err() == nil
	})
	wg.Wait()
	if !second.IsValid() {
		// The second port never answered: the server may have none, so
		// a missing change-port answer tells nothing either.
		return
	}
	if second == first {
		r.Mapping = MappingIndependent
	} else {
		r.Mapping = MappingDependent
		r.Reflexive = append(r.Reflexive, second)
	}
	switch {
	case !tested:
	case filtered:
		r.Filtering = FilteringAddressAndPort
	case first == r.Local:
		// No NAT: nothing filters.
		r.Filtering = FilteringIndependent
	}
	// Otherwise a packet came in through a port never sent to: the NAT
	// filters by address at most, which one server address cannot tell
	// apart from no filtering; it stays unknown.
}

// verdict says in one sentence what r means for transfers.
func verdict(r *NetReport) string {
	mapped := r.PortMap != PortMapNone && r.PortMapAddress.IsValid()
	switch {
	case r.Rendezvous == "" && mapped:
		return "No rendezvous server to check against; your router maps ports, so peers elsewhere could reach you directly through a server."
	case r.Rendezvous == "":
		return "No rendezvous server to check against: transfers pair on the local network only."
	case !r.UDP && !r.TCP:
		return "The rendezvous server cannot be reached: transfers work on the local network only."
	case !r.UDP:
		return "UDP is blocked: TCP or the relay will be used."
	case r.Public():
		return "Your address is public: direct connections are likely with every peer."
	case mapped:
		return "Direct connections are likely with most peers: your router maps a port for ferry."
	case r.Mapping == MappingIndependent:
		return "Direct connections are likely with most peers."
	case r.Mapping == MappingDependent:
		return "Direct only with peers on easy NATs; others are relayed through your server."
	}
	return "UDP works, but how your NAT maps could not be told: direct connections are likely with peers on easy NATs, others are relayed."
}

// udpSTUNSocket is a plain UDP socket as a STUNSocket, for checks that
// need no transport.
type udpSTUNSocket struct {
	uc   *net.UDPConn
	mu   sync.Mutex
	h    func(msg []byte, from netip.AddrPort)
	done chan struct{}
}

func newUDPSTUNSocket(uc *net.UDPConn) *udpSTUNSocket {
	s := &udpSTUNSocket{uc: uc, done: make(chan struct{})}
	go s.read()
	return s
}

func (s *udpSTUNSocket) read() {
	defer close(s.done)
	buf := make([]byte, 1500)
	for {
		n, from, err := s.uc.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		s.mu.Lock()
		h := s.h
		s.mu.Unlock()
		if h != nil {
			h(buf[:n], transport.UnmapAddrPort(from))
		}
	}
}

// WriteSTUN implements STUNSocket.
func (s *udpSTUNSocket) WriteSTUN(msg []byte, to netip.AddrPort) error {
	_, err := s.uc.WriteToUDPAddrPort(msg, to)
	return err
}

// SetSTUNHandler implements STUNSocket.
func (s *udpSTUNSocket) SetSTUNHandler(h func(msg []byte, from netip.AddrPort)) {
	s.mu.Lock()
	s.h = h
	s.mu.Unlock()
}

func (s *udpSTUNSocket) close() {
	s.uc.Close()
	<-s.done
}

// portMapCheckLifetime is the lifetime of netcheck's trial mapping, which
// is deleted at once anyway.
const portMapCheckLifetime = time.Minute

// PortMapCheck is a NetcheckConfig.PortMap that asks the default gateway,
// only on a private network (discovery/portmap): which protocol answers,
// and the public address of a trial mapping of localPort, deleted before
// it returns. A router that answers but refuses the mapping is reported
// with no address.
func PortMapCheck(ctx context.Context, localPort uint16) (string, netip.AddrPort, error) {
	cfg := portmap.Config{}
	r, err := portmap.Probe(ctx, cfg)
	if err != nil {
		return PortMapNone, netip.AddrPort{}, err
	}
	if r.Protocol == portmap.None {
		return PortMapNone, netip.AddrPort{}, nil
	}
	m, err := portmap.Map(ctx, cfg, "udp", localPort, portMapCheckLifetime)
	if err != nil {
		return string(r.Protocol), netip.AddrPort{}, nil
	}
	// Deleting is bounded by the package; it must happen even when ctx
	// has ended.
	_ = m.Delete(context.WithoutCancel(ctx))
	return string(m.Protocol), m.External, nil
}
