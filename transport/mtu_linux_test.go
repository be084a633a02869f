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
