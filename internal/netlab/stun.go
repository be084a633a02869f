package netlab

import (
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/pion/stun/v2"
)

// StartFullSTUN serves STUN in the lab's internet on both server
// addresses (ServerIP, AltServerIP), ports 3478 and 3479 of each, and
// answers RFC 5780 CHANGE-REQUESTs from the other address and/or port. A
// router's port mapping daemon (miniupnpd) checks with it that nothing
// upstream filters before it maps anything; ferry's rendezvous server has
// one address and cannot answer a change of address. It returns the
// primary address, ServerIP:3478; everything stops when tb ends.
func (l *Lab) StartFullSTUN(tb testing.TB) netip.AddrPort {
	tb.Helper()
	ips := [2]netip.Addr{l.ServerIP(), l.AltServerIP()}
	ports := [2]uint16{3478, 3479}
	var socks [2][2]*net.UDPConn
	for i, ip := range ips {
		for j, port := range ports {
			err := l.Internet.Do(func() (err error) {
				socks[i][j], err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, port)))
				return err
			})
			if err != nil {
				tb.Fatalf("STUN on %v:%d: %v", ip, port, err)
			}
		}
	}
	var wg sync.WaitGroup
	tb.Cleanup(func() {
		for _, row := range socks {
			for _, c := range row {
				c.Close()
			}
		}
		wg.Wait()
	})
	for i := range 2 {
		for j := range 2 {
			wg.Go(func() { serveFullSTUN(socks, i, j) })
		}
	}
	return netip.AddrPortFrom(ips[0], ports[0])
}

// serveFullSTUN answers Binding requests arriving on socks[i][j], from
// the socket the CHANGE-REQUEST asks for, until the socket is closed.
func serveFullSTUN(socks [2][2]*net.UDPConn, i, j int) {
	buf := make([]byte, 1500)
	for {
		n, from, err := socks[i][j].ReadFromUDP(buf)
		if err != nil {
			return
		}
		req := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
		if req.Decode() != nil || req.Type != stun.BindingRequest {
			continue
		}
		oi, oj := i, j
		if v, err := req.Get(stun.AttrChangeRequest); err == nil && len(v) == 4 {
			if v[3]&0x04 != 0 {
				oi ^= 1
			}
			if v[3]&0x02 != 0 {
				oj ^= 1
			}
		}
		resp, err := stun.Build(stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess,
			&stun.XORMappedAddress{IP: from.IP, Port: from.Port})
		if err != nil {
			continue
		}
		_, _ = socks[oi][oj].WriteToUDP(resp.Raw, from)
	}
}
