package vnet

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
)

// NATKind selects a NAT's mapping and filtering behaviour (RFC 4787 terms).
type NATKind int

const (
	// PortRestrictedCone uses endpoint-independent mapping and
	// address-and-port-dependent filtering: one public port per private
	// address, accepting packets only from ip:ports the host has sent to.
	PortRestrictedCone NATKind = iota
	// FullCone uses endpoint-independent mapping and no filtering: once a
	// mapping exists, anyone may send to it.
	FullCone
	// Symmetric uses a new public port per (private address, destination)
	// pair and address-and-port-dependent filtering.
	Symmetric
)

// String returns the name of the kind.
func (k NATKind) String() string {
	switch k {
	case PortRestrictedCone:
		return "PortRestrictedCone"
	case FullCone:
		return "FullCone"
	case Symmetric:
		return "Symmetric"
	}
	return fmt.Sprintf("NATKind(%d)", int(k))
}

// NATOptions configures a NAT.
type NATOptions struct {
	// Kind is the mapping and filtering behaviour.
	Kind NATKind
	// MappingTimeout is the idle time after which a mapping expires. Only
	// outbound packets refresh a mapping. Zero means mappings never expire.
	MappingTimeout time.Duration
}

// firstNATPort is the first public port a NAT hands out.
const firstNATPort = 20000

// NAT is a NAT box on a [Network] with one public IP and any number of hosts
// behind it. Create one with [Network.NewNAT]. All methods are safe for
// concurrent use.
type NAT struct {
	n       *Network
	public  netip.Addr
	kind    NATKind
	timeout time.Duration

	// Guarded by n.mu.
	hosts     map[netip.AddrPort]*Conn // hosts by private address
	hostIPs   map[netip.Addr]int       // number of hosts per private IP: the LAN
	byKey     map[mappingKey]*mapping
	byPort    map[uint16]*mapping
	nextPort  int    // next public port; ports are never reused
	ephemeral uint16 // next private port tried by Listen with port 0
}

// mappingKey identifies a mapping: the private address, plus the
// destination for Symmetric NATs (zero otherwise).
type mappingKey struct {
	private, dst netip.AddrPort
}

type mapping struct {
	key     mappingKey
	port    uint16
	lastOut time.Duration               // time of the last outbound packet
	peers   map[netip.AddrPort]struct{} // destinations contacted; nil for FullCone
}

// NewNAT creates a NAT box with the given public IP. It panics if the IP is
// invalid, unspecified, or already used by another NAT or a public host,
// since that is a mistake in the test. After [Network.Close] it returns a
// NAT whose Listen fails.
func (n *Network) NewNAT(public netip.Addr, opts NATOptions) *NAT {
	public = normAddr(public)
	if err := checkHostAddr(public); err != nil {
		panic(err)
	}
	if opts.Kind < PortRestrictedCone || opts.Kind > Symmetric {
		panic(fmt.Sprintf("vnet: invalid NAT kind %v", opts.Kind))
	}
	nat := &NAT{
		n:        n,
		public:   public,
		kind:     opts.Kind,
		timeout:  opts.MappingTimeout,
		hosts:    make(map[netip.AddrPort]*Conn),
		hostIPs:  make(map[netip.Addr]int),
		byKey:    make(map[mappingKey]*mapping),
		byPort:   make(map[uint16]*mapping),
		nextPort: firstNATPort,
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nats[public] != nil {
		panic(fmt.Sprintf("vnet: a NAT with public IP %v already exists", public))
	}
	if n.directIPs[public] > 0 {
		panic(fmt.Sprintf("vnet: public IP %v of the new NAT is used by a host", public))
	}
	if !n.closed {
		n.nats[public] = nat
	}
	return nat
}

// Public returns the NAT's public IP.
func (nat *NAT) Public() netip.Addr { return nat.public }

// Kind returns the NAT's kind.
func (nat *NAT) Kind() NATKind { return nat.kind }

// Listen opens a Conn for a host behind this NAT at a private address, e.g.
// 10.0.0.2:5000. Port 0 picks a free port. The IP must be concrete and differ
// from the NAT's public IP. Outbound packets are translated to the NAT's
// public IP and a mapped port; inbound packets to a mapped port are
// translated back if the mapping is alive and the filter allows the source.
// Hosts behind the same NAT reach each other directly at their private
// addresses (a LAN); hairpinning through the public address is not modelled
// specially.
func (nat *NAT) Listen(private netip.AddrPort) (*Conn, error) {
	private = normAddrPort(private)
	if err := checkHostAddr(private.Addr()); err != nil {
		return nil, listenError(private, err)
	}
	if private.Addr() == nat.public {
		return nil, listenError(private, os.NewSyscallError("bind", syscall.EADDRNOTAVAIL))
	}
	n := nat.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, listenError(private, net.ErrClosed)
	}
	if private.Port() == 0 {
		port, ok := allocPort(&nat.ephemeral, func(p uint16) bool {
			return nat.hosts[netip.AddrPortFrom(private.Addr(), p)] != nil
		})
		if !ok {
			return nil, listenError(private, os.NewSyscallError("bind", syscall.EADDRINUSE))
		}
		private = netip.AddrPortFrom(private.Addr(), port)
	} else if nat.hosts[private] != nil {
		return nil, listenError(private, os.NewSyscallError("bind", syscall.EADDRINUSE))
	}
	c := newConn(n, nat, private)
	nat.hosts[private] = c
	nat.hostIPs[private.Addr()]++
	return c, nil
}

// Inject sends a copy of b as if a host on this NAT's LAN at the private
// address src (which need not exist) had sent it to dst: to a LAN host
// directly, otherwise through the NAT (creating or refreshing a mapping for
// src) onto the internet.
func (nat *NAT) Inject(src, dst netip.AddrPort, b []byte) {
	nat.n.transmit(nil, nat, normAddrPort(src), normAddrPort(dst), clone(b))
}

// Rebind forgets every mapping, so the next outbound packet of each host
// gets a new public port, never used before by this NAT. Packets in flight
// to old ports are dropped on arrival.
func (nat *NAT) Rebind() {
	nat.n.mu.Lock()
	defer nat.n.mu.Unlock()
	clear(nat.byKey)
	clear(nat.byPort)
}

// Mapping returns the public address currently mapped for the private
// address towards dst, and whether such a live mapping exists. dst is
// ignored unless the NAT is Symmetric.
func (nat *NAT) Mapping(private, dst netip.AddrPort) (netip.AddrPort, bool) {
	nat.n.mu.Lock()
	defer nat.n.mu.Unlock()
	m := nat.byKey[nat.key(normAddrPort(private), normAddrPort(dst))]
	if m == nil || nat.expiredLocked(m, nat.n.now()) {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(nat.public, m.port), true
}

// Mappings returns the number of live mappings.
func (nat *NAT) Mappings() int {
	nat.n.mu.Lock()
	defer nat.n.mu.Unlock()
	now := nat.n.now()
	k := 0
	for _, m := range nat.byPort {
		if !nat.expiredLocked(m, now) {
			k++
		}
	}
	return k
}

func (nat *NAT) key(private, dst netip.AddrPort) mappingKey {
	if nat.kind != Symmetric {
		dst = netip.AddrPort{}
	}
	return mappingKey{private: private, dst: dst}
}

func (nat *NAT) expiredLocked(m *mapping, now time.Duration) bool {
	return nat.timeout > 0 && now-m.lastOut >= nat.timeout
}

func (nat *NAT) removeLocked(m *mapping) {
	delete(nat.byKey, m.key)
	delete(nat.byPort, m.port)
}

// onLANLocked reports whether ip is the private IP of a host behind nat.
func (nat *NAT) onLANLocked(ip netip.Addr) bool { return nat.hostIPs[ip] > 0 }

// outboundLocked returns the public source address for a packet from
// private to dst, creating or refreshing the mapping.
func (nat *NAT) outboundLocked(private, dst netip.AddrPort, now time.Duration) (netip.AddrPort, bool) {
	key := nat.key(private, dst)
	m := nat.byKey[key]
	if m != nil && nat.expiredLocked(m, now) {
		nat.removeLocked(m)
		m = nil
	}
	if m == nil {
		if nat.nextPort > 65535 {
			return netip.AddrPort{}, false
		}
		m = &mapping{key: key, port: uint16(nat.nextPort)}
		nat.nextPort++
		if nat.kind != FullCone {
			m.peers = make(map[netip.AddrPort]struct{})
		}
		nat.byKey[key] = m
		nat.byPort[m.port] = m
	}
	m.lastOut = now
	if m.peers != nil {
		if _, ok := m.peers[dst]; !ok {
			m.peers[dst] = struct{}{}
		}
	}
	return netip.AddrPortFrom(nat.public, m.port), true
}

// inboundLocked translates a packet from src to the public port back to the
// private host. On failure it returns the reason, and the host the packet
// was meant for if known.
func (nat *NAT) inboundLocked(src netip.AddrPort, port uint16, now time.Duration) (*Conn, string) {
	m := nat.byPort[port]
	if m == nil {
		return nil, ReasonNoMapping
	}
	if nat.expiredLocked(m, now) {
		nat.removeLocked(m)
		return nil, ReasonMappingExpired
	}
	target := nat.hosts[m.key.private]
	if m.peers != nil {
		if _, ok := m.peers[src]; !ok {
			return target, ReasonFiltered
		}
	}
	if target == nil {
		return nil, ReasonNoListener
	}
	return target, ""
}

// unregisterLocked removes a closed host.
func (nat *NAT) unregisterLocked(c *Conn) {
	if nat.hosts[c.local] != c {
		return
	}
	delete(nat.hosts, c.local)
	if nat.hostIPs[c.local.Addr()]--; nat.hostIPs[c.local.Addr()] <= 0 {
		delete(nat.hostIPs, c.local.Addr())
	}
}
