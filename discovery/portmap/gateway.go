package portmap

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// Gateway is the router this package may talk to: the IPv4 default
// gateway, with the local address and interface the host uses to reach it.
type Gateway struct {
	// IP is the gateway's address.
	IP netip.Addr
	// Local is this host's address towards the gateway, on the same
	// link: the internal address a mapping forwards to.
	Local netip.Addr
	// Interface is the name of the interface that carries the default
	// route.
	Interface string
}

// ErrNoGateway means there is no default gateway this package may ask:
// none at all, one that is not on-link, a host on a public or carrier
// network, or an OS where the lookup is not implemented. Callers treat it
// as "no port mapping" (None).
var ErrNoGateway = errors.New("portmap: no private on-link default gateway")

// DefaultGateway returns the IPv4 default gateway and the local address
// used towards it, or an error wrapping ErrNoGateway unless the gateway is
// on-link and both addresses are private (see isPrivate).
//
// Only IPv4 is looked at: NAT-PMP and UPnP IGD's WANIPConnection map IPv4
// ports, and an IPv6 host needs a firewall pinhole rather than a mapping,
// which is not this package's business yet.
func DefaultGateway() (Gateway, error) {
	gw, ifname, err := defaultRoute()
	if err != nil {
		return Gateway{}, fmt.Errorf("%w: %v", ErrNoGateway, err)
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return Gateway{}, fmt.Errorf("%w: %v", ErrNoGateway, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return Gateway{}, fmt.Errorf("%w: %v", ErrNoGateway, err)
	}
	var prefixes []netip.Prefix
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if p, ok := prefixFromIPNet(n); ok {
				prefixes = append(prefixes, p)
			}
		}
	}
	local, err := LocalAddrTowards(gw)
	if err != nil {
		return Gateway{}, fmt.Errorf("%w: %v", ErrNoGateway, err)
	}
	g := Gateway{IP: gw, Local: local, Interface: ifname}
	if err := checkGateway(g, prefixes); err != nil {
		return Gateway{}, err
	}
	return g, nil
}

// checkGateway applies the policy of DefaultGateway to g, given the
// prefixes configured on its interface: the gateway and the local address
// must be private IPv4 addresses in one of those prefixes (the gateway is
// on-link, and the local address is really on the default route's
// interface).
func checkGateway(g Gateway, prefixes []netip.Prefix) error {
	if !g.IP.Is4() || !g.Local.Is4() {
		return fmt.Errorf("%w: gateway %v, local address %v: not IPv4", ErrNoGateway, g.IP, g.Local)
	}
	if !isPrivate(g.Local) || !isPrivate(g.IP) {
		return fmt.Errorf("%w: gateway %v, local address %v: not a private network", ErrNoGateway, g.IP, g.Local)
	}
	for _, p := range prefixes {
		if p.Contains(g.IP) && p.Contains(g.Local) && p.Addr() == g.Local {
			return nil
		}
	}
	return fmt.Errorf("%w: gateway %v is not on-link with %v on %s", ErrNoGateway, g.IP, g.Local, g.Interface)
}

// privateNets are the networks where a port mapping request may be sent:
// RFC 1918's. Carrier-grade NAT's shared space 100.64.0.0/10 (RFC 6598)
// is left out on purpose: a host numbered there sits on a carrier's
// network or an overlay VPN (Tailscale numbers its nodes there), whose
// next hop is not a router the user owns and runs for them, so this
// package does not ask it to open ports. Link-local and loopback are no
// networks with a NAT router either.
var privateNets = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
}

// isPrivate reports whether a is an RFC 1918 IPv4 address.
func isPrivate(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range privateNets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// LocalAddrTowards returns the source address the kernel picks for
// packets to dst, unmapped. Connecting a UDP socket sends nothing.
func LocalAddrTowards(dst netip.Addr) (netip.Addr, error) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, pmpPort)))
	if err != nil {
		return netip.Addr{}, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}

func prefixFromIPNet(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	ones, bits := n.Mask.Size()
	if bits == 128 && a.Is4() {
		ones -= 96
	}
	if bits == 0 {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, ones), true
}
