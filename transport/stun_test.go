package transport

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
)

// TestSTUNSharesTheSocket: STUN messages reach the installed handler and
// leave from the socket the transport uses, so a reflexive address learned
// through them is the transport's own.
func TestSTUNSharesTheSocket(t *testing.T) {
	n := newNet(t)
	s := vnetSocket(t, fastConfig(), listenAt(n, publicA))
	server, err := n.Listen(publicB)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan netip.AddrPort, 1)
	s.SetSTUNHandler(func(msg []byte, from netip.AddrPort) {
		if len(msg) == stunHeaderLen {
			got <- from
		}
	})
	req := make([]byte, stunHeaderLen)
	req[1] = 0x01
	binary.BigEndian.PutUint32(req[4:], stunMagicCookie)
	if err := s.WriteSTUN(req, publicB); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	k, from, err := server.ReadFromUDPAddrPort(buf)
	if err != nil || from != publicA || k != stunHeaderLen {
		t.Fatalf("server got %d bytes from %v (%v), want the request from %v", k, from, err, publicA)
	}
	resp := append([]byte(nil), req...)
	resp[0] = 0x01
	server.WriteToUDPAddrPort(resp, from)
	select {
	case f := <-got:
		if f != publicB {
			t.Fatalf("handler saw the response from %v", f)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("STUN response never reached the handler")
	}
	if err := s.WriteSTUN([]byte("not stun at all, definitely"), publicB); err == nil {
		t.Fatal("WriteSTUN sent a non-STUN message")
	}
}
