package transport

import (
	"net"
	"net/netip"
	"testing"

	"ferry/internal/vnet"
)

// TestAcceptorQUICMigratesWithFerryPath checks that the acceptor's quic-go,
// the sender of a transfer, learns of each path ferry moves to: it must
// validate the peer's new virtual address and switch to it, which is when
// it starts its congestion control and RTT estimate afresh (see
// vconn.newPath). The dialer's quic-go keeps its one address. Both for a
// dialer that moves to another network (the acceptor's path follows it)
// and for an acceptor that moves itself.
func TestAcceptorQUICMigratesWithFerryPath(t *testing.T) {
	for _, moverRole := range []Role{RoleDialer, RoleAcceptor} {
		t.Run(moverRole.String()+" moves", func(t *testing.T) {
			n := newNet(t)
			wifi := n.NewNAT(netip.MustParseAddr("198.18.1.1"), vnet.NATOptions{Kind: vnet.PortRestrictedCone})
			lte := n.NewNAT(netip.MustParseAddr("198.18.2.1"), vnet.NATOptions{Kind: vnet.PortRestrictedCone})
			laptop := vnetSocket(t, fastConfig(),
				behind(wifi, netip.MustParseAddrPort("10.0.0.2:5000")),
				behind(lte, netip.MustParseAddrPort("10.1.0.7:6000")))
			server := vnetSocket(t, fastConfig(), listenAt(n, publicA))
			var dialer, acceptor *Conn
			if moverRole == RoleDialer {
				dialer, acceptor = connectPair(t, laptop, server, nil, []netip.AddrPort{publicA})
			} else {
				dialer, acceptor = connectPair(t, server, laptop, []netip.AddrPort{publicA}, nil)
			}
			if got := acceptor.qc.RemoteAddr(); !sameUDPAddr(got, virtualPeerAddr) {
				t.Fatalf("before any move the acceptor's quic-go sees %v, want %v", got, virtualPeerAddr)
			}
			sub, stop := acceptor.SubscribePath()
			defer stop()
			before := acceptor.Path()
			streamInHalves(t, acceptor, dialer, 4<<20, func() {
				n.SetHostLink(wifi.Public(), vnet.Link{Down: true})
				laptop.NetworkChanged()
				waitPath(t, sub, func(p PathInfo) bool { return p.Seq > before.Seq })
			})
			epoch := acceptor.ep.vc.epoch.Load()
			if epoch == 0 {
				t.Fatal("the acceptor's path changed, but its quic-go was shown no new path")
			}
			want := virtualPeerAddrFor(epoch)
			waitFor(t, "the acceptor's quic-go to switch to the new path", func() bool {
				roundTrip(t, dialer, acceptor, 1<<10)
				return sameUDPAddr(acceptor.qc.RemoteAddr(), want)
			})
			if got := dialer.qc.RemoteAddr(); !sameUDPAddr(got, virtualPeerAddr) {
				t.Fatalf("the dialer's quic-go sees %v, want its one address %v", got, virtualPeerAddr)
			}
			roundTrip(t, acceptor, dialer, 256<<10)
		})
	}
}

func sameUDPAddr(a net.Addr, b *net.UDPAddr) bool {
	u, ok := a.(*net.UDPAddr)
	return ok && u.IP.Equal(b.IP) && u.Port == b.Port
}
