package transport

import "time"

// Every timing value of the transport, with the reason for it. Config fields
// override the first group (tests shorten them); the rest are fixed.
const (
	// DefaultKeepAlive is the gap between PINGs on the active path. Home
	// routers commonly forget a UDP mapping after 30 s of silence (some
	// after 20 s; RFC 4787 asks for at least 2 min, few comply), so 10 s
	// keeps the mapping open with margin for two lost PINGs.
	DefaultKeepAlive = 10 * time.Second
	// DefaultIdleTimeout closes a connection that hears nothing for this
	// long. It must outlast the worst failover ferry rides out inside one
	// connection (a rebind, a passive migration with retransmissions), and
	// is short enough that a dead peer is noticed within a minute.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultValidationTimeout bounds one path validation: several round
	// trips of even a slow mobile path (300 ms) plus the retransmissions.
	DefaultValidationTimeout = 3 * time.Second
	// DefaultValidationRetransmit is the first PATH_CHALLENGE retransmission
	// gap, doubling after each: a little above a continental round trip, so
	// a lost challenge costs little and a slow path is not flooded.
	DefaultValidationRetransmit = 200 * time.Millisecond
	// DefaultProbeInterval is the first gap between probes to one candidate
	// while connecting, growing by half each round to DefaultMaxProbeInterval:
	// fast enough that two peers behind NATs open each other's mappings
	// within a few round trips, slow enough that a candidate that never
	// answers costs about a packet a second.
	DefaultProbeInterval    = 100 * time.Millisecond
	DefaultMaxProbeInterval = time.Second
	// DefaultPingTimeout forgets an unanswered keepalive or rebind PING: far
	// beyond any round trip, so a late PONG is not mistaken for loss.
	DefaultPingTimeout = 10 * time.Second
	// DefaultHoldDown keeps an address that just failed validation, answered
	// from an inactive path, or was just left, from starting another
	// validation: packets in flight from a path just left must not flap
	// the path back. One second covers a round trip with queueing.
	DefaultHoldDown = time.Second
	// DefaultRebindTimeout bounds moving to a new local socket: a new
	// network (a hotspot, a captive Wi-Fi) can take seconds to pass traffic.
	DefaultRebindTimeout = 10 * time.Second
	// DefaultRetireGrace keeps an unused old socket open for stragglers
	// still addressed to it (about ten round trips).
	DefaultRetireGrace = 2 * time.Second
	// DefaultNetworkPollInterval is how often interface addresses are
	// compared to notice a network change: a user notices a stall of a
	// few seconds, and a poll costs one syscall.
	DefaultNetworkPollInterval = 2 * time.Second
	// DefaultPathSilence is how long the active path may stay silent while
	// this side sends before it is suspect (liveness.go): during a transfer
	// the peer's ACKs arrive every few milliseconds, and an idle
	// connection's keepalive PING is answered within a round trip, so a
	// second of silence is a dead path far more often than a slow one,
	// and noticing it within a second keeps a handover under the 3 s a
	// user forgives.
	DefaultPathSilence = time.Second
)

const (
	// maxTick caps the endpoint timer loop's period: timers are serviced at
	// this granularity, well below the shortest default gap.
	maxTick = 50 * time.Millisecond
	// readErrorBackoff spaces retries of a socket read that failed for
	// a reason other than closing (a transient ENOBUFS, an ICMP error).
	readErrorBackoff = 50 * time.Millisecond
	// quicKeepAliveFactor: quic-go's own keepalive runs at a third of the
	// idle timeout. It only keeps quic-go's idle timer from firing on an
	// idle connection (ferry's PINGs are invisible to quic-go); holding
	// NAT mappings open is the job of ferry's faster PINGs.
	quicKeepAliveFactor = 3
	// cookieEpoch is the clock step of connecting challenges: a challenge is
	// accepted in its epoch and the next, so for 2-4 s, longer than any
	// round trip and short enough that a captured answer soon goes stale.
	cookieEpoch = 2 * time.Second
	// preferDirectFor is how long the dialer keeps a proven relay path back
	// while a direct path may still be proven: both sides start punching
	// together, and a punchable direct path answers within a few round
	// trips; a quarter second then saves moving the connection (and
	// quic-go's stale congestion state) later, and costs that much time to
	// the first byte when no direct path comes.
	preferDirectFor = 250 * time.Millisecond
	// minFallbackDelay is the least time a suspect path gets to recover
	// (a rebind PING answered, a direct candidate answering) before the
	// connection falls back to the relay: a few round trips on a LAN or a
	// continent, less than a user notices.
	minFallbackDelay = 200 * time.Millisecond
	// repunchFor is how long the peer's candidates are probed after a
	// change while the path is direct: both sides' probes must cross
	// within it, and a peer whose network is not usable yet announces
	// again when it is.
	repunchFor = 10 * time.Second
	// tcpRepunchFor bounds punching TCP again after a change: both sides
	// start within a round trip of each other (one on hearing the new
	// candidates, the other on their acknowledgement), and a punch that
	// has not met in this long will not.
	tcpRepunchFor = 10 * time.Second
	// relayKeepAlive is the gap between PINGs on a relay session that does
	// not carry the connection: it stays paired as the fallback, and the
	// relay ends sessions idle for DefaultRelayIdleTimeout.
	relayKeepAlive = 30 * time.Second
	// netWatchSettle is how long the network must be quiet after a kernel
	// notification before its fingerprint is compared: one move is a burst
	// of link, address and route messages, and a rebind per message would
	// open sockets for nothing. It is far below what a user notices.
	netWatchSettle = 20 * time.Millisecond
	// handshakeIdleTimeout bounds the QUIC handshake once a path is up.
	handshakeIdleTimeout = 10 * time.Second
)
