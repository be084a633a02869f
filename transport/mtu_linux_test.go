//go:build linux

package transport

import (
	"net/netip"
	"testing"
)

// TestAcceptorDiscoversPathMTU: over loopback, which carries 1500-byte
// frames and more, the acceptor (a transfer's sender) grows its packets
// past 1280 bytes with quic-go's path MTU discovery; the dialer, whose
// quic-go never learns of a change of path, keeps 1280-byte packets.
func TestAcceptorDiscoversPathMTU(t *testing.T) {
	a, b := newLoopbackSocket(t), newLoopbackSocket(t)
	dialer, acceptor := connectPair(t, a, b, []netip.AddrPort{a.LocalAddr()}, []netip.AddrPort{b.LocalAddr()})
	waitFor(t, "the acceptor to send packets over 1280 bytes", func() bool {
		roundTrip(t, acceptor, dialer, 1<<20)
		return acceptor.Stats().LargestQUICPacketOut > 1280
	})
	if got := acceptor.Stats().LargestQUICPacketOut; got > 1452 {
		t.Errorf("acceptor sent a %d-byte packet, beyond quic-go's 1452", got)
	}
	roundTrip(t, dialer, acceptor, 1<<20)
	if got := dialer.Stats().LargestQUICPacketOut; got > 1280 {
		t.Errorf("the dialer sent a %d-byte packet; it must keep to 1280", got)
	}
}

// TestQUICCountersInStats: a connection's Stats carry quic-go's own
// counts: both sides count at least the packets 1 MiB needs. (They are
// QUIC packets, not datagrams: during the handshake one datagram carries
// several, so they are not bounded by QUICPacketsIn.)
func TestQUICCountersInStats(t *testing.T) {
	a, b := newLoopbackSocket(t), newLoopbackSocket(t)
	dialer, acceptor := connectPair(t, a, b, []netip.AddrPort{a.LocalAddr()}, []netip.AddrPort{b.LocalAddr()})
	const n = 1 << 20
	roundTrip(t, acceptor, dialer, n)
	sent, got := acceptor.Stats(), dialer.Stats()
	least := uint64(n / 1452)
	if sent.QUICPacketsSent < least {
		t.Errorf("the sender counted %d QUIC packets sent for %d bytes, want at least %d", sent.QUICPacketsSent, n, least)
	}
	if got.QUICPacketsReceived < least {
		t.Errorf("the receiver counted %d QUIC packets received for %d bytes, want at least %d", got.QUICPacketsReceived, n, least)
	}
	if sent.QUICPacketsLost > sent.QUICPacketsSent {
		t.Errorf("%d of %d packets lost", sent.QUICPacketsLost, sent.QUICPacketsSent)
	}
}
