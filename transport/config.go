package transport

import (
	"log/slog"
	"time"

	"github.com/quic-go/quic-go"
)

// Config tunes a Socket. The zero value is ready for production use; tests
// shorten the timers.
type Config struct {
	// ListenAddr is the UDP address of the first socket, default ":0"
	// (dual-stack, any port). Later sockets opened after a network change
	// use the same host with port 0.
	ListenAddr string
	// Bind, when set, opens every local socket instead of ListenAddr (tests
	// bind into an in-memory network).
	Bind func() (PacketConn, error)
	// Logger receives structured logs; default slog.Default().
	Logger *slog.Logger

	// KeepAlive is the interval of PINGs on the active path, well inside
	// common NAT UDP mapping timeouts (30 s); default 10 s.
	KeepAlive time.Duration
	// IdleTimeout closes a connection that hears nothing for this long;
	// default 60 s. It must exceed the worst expected failover.
	IdleTimeout time.Duration
	// ValidationTimeout bounds one path validation; default 3 s.
	ValidationTimeout time.Duration
	// ValidationRetransmit is the first PATH_CHALLENGE retransmission gap,
	// doubling after each; default 200 ms. Rebind probes repeat at this gap.
	ValidationRetransmit time.Duration
	// ProbeInterval is the first gap between PINGs to the peer's candidates
	// while connecting, growing by half each round up to MaxProbeInterval;
	// defaults 100 ms and 1 s.
	ProbeInterval, MaxProbeInterval time.Duration
	// PingTimeout forgets unanswered PINGs; default 10 s.
	PingTimeout time.Duration
	// HoldDown keeps an address that just failed validation, answered from
	// an inactive path, or was just left from starting another validation;
	// default 1 s.
	HoldDown time.Duration
	// RebindTimeout bounds moving to a new local socket; default 10 s.
	RebindTimeout time.Duration
	// RetireGrace keeps an unused old socket open for stragglers; default 2 s.
	RetireGrace time.Duration
	// NetworkPollInterval is how often interface addresses are compared to
	// detect network changes; default 2 s, negative disables polling.
	NetworkPollInterval time.Duration
	// PathSilence is how long the active path may stay silent while this
	// side sends before it is suspect (liveness.go); default 1 s.
	PathSilence time.Duration
	// NoNetworkWatch turns off the kernel's network change notifications
	// (netlink on Linux), leaving polling and NetworkChanged (tests that
	// must control when a change is seen).
	NoNetworkWatch bool

	// QUIC, when set, replaces ferry's quic-go settings (tests and benchmarks).
	QUIC *quic.Config

	// interfaceAddrs replaces the interface-address source the network
	// monitor polls (tests).
	interfaceAddrs func() []string

	tick time.Duration
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.ListenAddr == "" {
		c.ListenAddr = ":0"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	def(&c.KeepAlive, DefaultKeepAlive)
	def(&c.IdleTimeout, DefaultIdleTimeout)
	def(&c.ValidationTimeout, DefaultValidationTimeout)
	def(&c.ValidationRetransmit, DefaultValidationRetransmit)
	def(&c.ProbeInterval, DefaultProbeInterval)
	def(&c.MaxProbeInterval, DefaultMaxProbeInterval)
	def(&c.PingTimeout, DefaultPingTimeout)
	def(&c.HoldDown, DefaultHoldDown)
	def(&c.RebindTimeout, DefaultRebindTimeout)
	def(&c.RetireGrace, DefaultRetireGrace)
	def(&c.NetworkPollInterval, DefaultNetworkPollInterval)
	def(&c.PathSilence, DefaultPathSilence)
	c.tick = min(c.ValidationRetransmit/2, c.ProbeInterval/2, c.KeepAlive/2, maxTick)
	c.tick = max(c.tick, time.Millisecond)
	return c
}

// quicConfig returns the quic-go settings for a peer connection on the
// given side: large flow control windows for bulk transfer (the defaults
// are far below a 1 Gbit/s x 100 ms bandwidth-delay product), keepalives at
// the fraction of the idle timeout (timing.go says why), and path MTU
// discovery on the acceptor's side only.
//
// quic-go's path MTU discovery only ever raises the packet size on one
// path, and ferry can move a connection to another path under it. The
// acceptor's quic-go learns of every move (vconn.newPath) and starts
// discovery afresh at 1280 bytes on the new path, so it may discover: on
// a path that carries 1500-byte frames it sends 1452-byte packets, 13 %
// fewer packets for the same data (the acceptor is the sender of a
// transfer, which sends nearly all the bytes). The dialer's quic-go never
// learns of a move, so it keeps 1280-byte packets, which every path
// carries; it sends little but acknowledgements. Probes that a path
// cannot carry are lost (or refused by the kernel, which the endpoint
// counts as loss), and quic-go keeps the last size that got through.
func (c Config) quicConfig(role Role) *quic.Config {
	if c.QUIC != nil {
		q := c.QUIC.Clone()
		if q.KeepAlivePeriod == 0 {
			q.KeepAlivePeriod = c.IdleTimeout / quicKeepAliveFactor
		}
		return q
	}
	return &quic.Config{
		HandshakeIdleTimeout:           handshakeIdleTimeout,
		MaxIdleTimeout:                 c.IdleTimeout,
		KeepAlivePeriod:                c.IdleTimeout / quicKeepAliveFactor,
		InitialStreamReceiveWindow:     8 << 20,
		MaxStreamReceiveWindow:         32 << 20,
		InitialConnectionReceiveWindow: 12 << 20,
		MaxConnectionReceiveWindow:     64 << 20,
		MaxIncomingStreams:             256,
		MaxIncomingUniStreams:          64,
		DisablePathMTUDiscovery:        role != RoleAcceptor,
	}
}
