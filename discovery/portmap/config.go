package portmap

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"time"
)

// Timeouts. A router that answers nothing must cost almost nothing, and
// the probe runs while a user waits for pairing (which never waits for
// it), so each is a small multiple of what a working router needs.
const (
	// pmpTimeout bounds one PCP or NAT-PMP exchange: a single UDP round
	// trip to an on-link router, about a millisecond, so 250 ms leaves
	// room for two retransmissions (pmpRetransmit) and a busy router.
	pmpTimeout = 250 * time.Millisecond
	// pmpRetransmit is the first retransmission interval of a PCP or
	// NAT-PMP request, doubled after each send (RFC 6886 starts at
	// 250 ms for a 2-minute budget; ours is pmpTimeout).
	pmpRetransmit = 60 * time.Millisecond
	// upnpTimeout bounds UPnP discovery (an SSDP search, then the
	// gateway's device description over HTTP) and, separately, each
	// SOAP action. SSDP devices may wait up to the search's MX, 1 s, at
	// random before answering, and most answer at once.
	upnpTimeout = 1200 * time.Millisecond
	// deleteTimeout bounds the deletion of a mapping when it is
	// released, so that ending a transfer never waits on a router.
	deleteTimeout = 500 * time.Millisecond
)

// Config configures Probe, Map and Keep. The zero value is ready for
// use; the unexported fields let tests run the protocols from inside a
// network namespace.
type Config struct {
	// Logger receives the package's log lines (protocol, gateway,
	// ports, lifetimes; never anything secret); nil means
	// slog.Default().
	Logger *slog.Logger

	gateway     func() (Gateway, error)
	dialUDP     func(local netip.Addr, remote netip.AddrPort) (*net.UDPConn, error)
	listenUDP   func(local netip.Addr) (*net.UDPConn, error)
	dialTCP     func(ctx context.Context, addr string) (net.Conn, error)
	pmpTimeout  time.Duration
	upnpTimeout time.Duration
	// protocols, if set, restricts Probe, Map and Keep to these
	// protocols, tried in this order.
	protocols []Protocol
	defaulted bool // withDefaults has run
}

// enabled reports whether the configuration lets p be used.
func (c Config) enabled(p Protocol) bool {
	return c.protocols == nil || slices.Contains(c.protocols, p)
}

// order is the order in which Map tries the protocols.
func (c Config) order() []Protocol {
	if c.protocols != nil {
		return c.protocols
	}
	return preference
}

func (c Config) withDefaults() Config {
	if c.defaulted {
		return c
	}
	c.defaulted = true
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Logger = c.Logger.With("component", "portmap")
	if c.gateway == nil {
		c.gateway = DefaultGateway
	}
	if c.dialUDP == nil {
		c.dialUDP = func(local netip.Addr, remote netip.AddrPort) (*net.UDPConn, error) {
			return net.DialUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, 0)), net.UDPAddrFromAddrPort(remote))
		}
	}
	if c.listenUDP == nil {
		c.listenUDP = func(local netip.Addr) (*net.UDPConn, error) {
			return net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, 0)))
		}
	}
	if c.dialTCP == nil {
		var d net.Dialer
		c.dialTCP = func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp4", addr)
		}
	}
	if c.pmpTimeout == 0 {
		c.pmpTimeout = pmpTimeout
	}
	if c.upnpTimeout == 0 {
		c.upnpTimeout = upnpTimeout
	}
	return c
}
