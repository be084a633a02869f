package vnet

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

func TestPortRestrictedCone(t *testing.T) {
	n := newNet(t, Options{})
	log := newTapLog(t, n)
	nat := n.NewNAT(ip("192.0.2.1"), NATOptions{Kind: PortRestrictedCone})
	client := natListen(t, nat, "10.0.0.2:5000")
	server := listen(t, n, "198.18.0.1:443")
	otherPort := listen(t, n, "198.18.0.1:444")
	otherIP := listen(t, n, "198.18.0.2:443")

	// Unsolicited inbound is dropped.
	send(t, server, ap("192.0.2.1:20000"), "unsolicited")
	if p := log.last(); p.Reason != ReasonNoMapping {
		t.Fatalf("unsolicited: %+v", p)
	}

	send(t, client, server.LocalAddrPort(), "hello")
	msg, pub := recv(t, server)
	if msg != "hello" || pub.Addr() != nat.Public() || pub.Port() != firstNATPort {
		t.Fatalf("server got %q from %v", msg, pub)
	}
	if m, ok := nat.Mapping(client.LocalAddrPort(), otherIP.LocalAddrPort()); !ok || m != pub {
		t.Fatalf("Mapping = %v %v, want %v", m, ok, pub)
	}

	// The reply is translated back; the host sees the server's address.
	send(t, server, pub, "reply")
	if msg, from := recv(t, client); msg != "reply" || from != server.LocalAddrPort() {
		t.Fatalf("client got %q from %v", msg, from)
	}

	// Another port of the same IP, and another IP, are filtered.
	send(t, otherPort, pub, "other port")
	if p := log.last(); p.Reason != ReasonFiltered {
		t.Fatalf("other port: %+v", p)
	}
	send(t, otherIP, pub, "other ip")
	if p := log.last(); p.Reason != ReasonFiltered {
		t.Fatalf("other IP: %+v", p)
	}
	expectEmpty(t, client)
	if s := client.Stats(); s.DroppedFiltered != 2 {
		t.Fatalf("client stats %+v", s)
	}

	// After the host contacts the other IP, it passes, through the same mapping.
	send(t, client, otherIP.LocalAddrPort(), "hi")
	if _, from := recv(t, otherIP); from != pub {
		t.Fatalf("endpoint-independent mapping changed: %v != %v", from, pub)
	}
	send(t, otherIP, pub, "now allowed")
	if msg, _ := recv(t, client); msg != "now allowed" {
		t.Fatalf("got %q", msg)
	}
}

func TestFullCone(t *testing.T) {
	n := newNet(t, Options{})
	nat := n.NewNAT(ip("192.0.2.1"), NATOptions{Kind: FullCone})
	client := natListen(t, nat, "10.0.0.2:5000")
	server := listen(t, n, "198.18.0.1:443")
	stranger := listen(t, n, "198.18.0.99:9999")

	send(t, stranger, ap("192.0.2.1:20000"), "too early")
	expectEmpty(t, client)

	send(t, client, server.LocalAddrPort(), "hello")
	_, pub := recv(t, server)
	send(t, stranger, pub, "anyone")
	if msg, from := recv(t, client); msg != "anyone" || from != stranger.LocalAddrPort() {
		t.Fatalf("client got %q from %v", msg, from)
	}
}

func TestSymmetric(t *testing.T) {
	n := newNet(t, Options{})
	log := newTapLog(t, n)
	nat := n.NewNAT(ip("192.0.2.1"), NATOptions{Kind: Symmetric})
	client := natListen(t, nat, "10.0.0.2:5000")
	a := listen(t, n, "198.18.0.1:443")
	b := listen(t, n, "198.18.0.1:444")

	send(t, client, a.LocalAddrPort(), "to a")
	_, pubA := recv(t, a)
	send(t, client, b.LocalAddrPort(), "to b")
	_, pubB := recv(t, b)
	if pubA == pubB || pubA.Addr() != nat.Public() || pubB.Addr() != nat.Public() {
		t.Fatalf("symmetric NAT mapped %v and %v", pubA, pubB)
	}
	// The same destination keeps its port.
	send(t, client, a.LocalAddrPort(), "to a again")
	if _, p := recv(t, a); p != pubA {
		t.Fatalf("second packet to a from %v, want %v", p, pubA)
	}
	for dst, want := range map[*Conn]netip.AddrPort{a: pubA, b: pubB} {
		if m, ok := nat.Mapping(client.LocalAddrPort(), dst.LocalAddrPort()); !ok || m != want {
			t.Fatalf("Mapping towards %v = %v %v, want %v", dst.LocalAddr(), m, ok, want)
		}
	}
	if _, ok := nat.Mapping(client.LocalAddrPort(), ap("198.18.0.1:445")); ok {
		t.Fatal("mapping towards an uncontacted destination")
	}
	if k := nat.Mappings(); k != 2 {
		t.Fatalf("Mappings = %d", k)
	}

	// Each mapping accepts only its own destination.
	send(t, a, pubB, "a via b's mapping")
	if p := log.last(); p.Reason != ReasonFiltered {
		t.Fatalf("cross-mapping: %+v", p)
	}
	send(t, a, pubA, "ok")
	if msg, _ := recv(t, client); msg != "ok" {
		t.Fatalf("got %q", msg)
	}
}

func TestRebind(t *testing.T) {
	n := newNet(t, Options{})
	log := newTapLog(t, n)
	nat := n.NewNAT(ip("192.0.2.1"), NATOptions{})
	client := natListen(t, nat, "10.0.0.2:5000")
	server := listen(t, n, "198.18.0.1:443")

	send(t, client, server.LocalAddrPort(), "before")
	_, old := recv(t, server)
	nat.Rebind()
	if _, ok := nat.Mapping(client.LocalAddrPort(), server.LocalAddrPort()); ok {
		t.Fatal("mapping survived Rebind")
	}
	send(t, server, old, "to old port")
	if p := log.last(); p.Reason != ReasonNoMapping {
		t.Fatalf("to old port: %+v", p)
	}

	send(t, client, server.LocalAddrPort(), "after")
	_, cur := recv(t, server)
	if cur == old || cur.Addr() != old.Addr() {
		t.Fatalf("after Rebind the server sees %v, before %v", cur, old)
	}
	send(t, server, cur, "to new port")
	if msg, _ := recv(t, client); msg != "to new port" {
		t.Fatalf("got %q", msg)
	}
	// Ports are never reused, even after several rebinds.
	seen := map[uint16]bool{old.Port(): true, cur.Port(): true}
	for range 5 {
		nat.Rebind()
		send(t, client, server.LocalAddrPort(), "x")
		_, p := recv(t, server)
		if seen[p.Port()] {
			t.Fatalf("port %d reused", p.Port())
		}
		seen[p.Port()] = true
	}
}

func TestMappingExpiry(t *testing.T) {
	n := newNet(t, Options{})
	log := newTapLog(t, n)
	const timeout = 30 * time.Millisecond
	nat := n.NewNAT(ip("192.0.2.1"), NATOptions{MappingTimeout: timeout})
	client := natListen(t, nat, "10.0.0.2:5000")
	server := listen(t, n, "198.18.0.1:443")

	send(t, client, server.LocalAddrPort(), "hello")
	_, old := recv(t, server)
	send(t, server, old, "reply")
	recv(t, client)

	// Inbound packets do not refresh the mapping; it expires.
	stopInbound := make(chan struct{})
	inboundDone := make(chan struct{})
	go func() {
		defer close(inboundDone)
		for {
			select {
			case <-stopInbound:
				return
			case <-time.After(time.Millisecond):
				server.WriteToUDPAddrPort([]byte("keep?"), old)
			}
		}
	}()
	waitFor(t, 5*time.Second, "mapping to expire", func() bool {
		_, ok := nat.Mapping(client.LocalAddrPort(), server.LocalAddrPort())
		return !ok
	})
	close(stopInbound)
	<-inboundDone
	send(t, server, old, "late reply")
	if p := log.last(); p.Reason != ReasonNoMapping && p.Reason != ReasonMappingExpired {
		t.Fatalf("reply to expired mapping: %+v", p)
	}

	// The next outbound packet gets a new port.
	send(t, client, server.LocalAddrPort(), "again")
	for {
		msg, from := recv(t, server)
		if msg == "again" {
			if from == old {
				t.Fatal("expired mapping's port reused")
			}
			break
		}
	}
}

// TestMappingTimeoutExact runs in a synctest bubble, so the timeout is
// checked exactly: outbound packets refresh a mapping, inbound ones do not.
func TestMappingTimeoutExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNet(t, Options{})
		const timeout = 30 * time.Second
		nat := n.NewNAT(ip("192.0.2.1"), NATOptions{MappingTimeout: timeout})
		client := natListen(t, nat, "10.0.0.2:5000")
		server := listen(t, n, "198.18.0.1:443")
		alive := func() bool {
			_, ok := nat.Mapping(client.LocalAddrPort(), server.LocalAddrPort())
			return ok
		}

		send(t, client, server.LocalAddrPort(), "first")
		_, first := recv(t, server)
		for range 10 { // outbound keepalives every timeout/2
			time.Sleep(timeout / 2)
			send(t, client, server.LocalAddrPort(), "keepalive")
			if _, from := recv(t, server); from != first {
				t.Fatalf("mapping changed to %v although refreshed", from)
			}
		}
		time.Sleep(timeout / 2)
		send(t, server, first, "inbound does not refresh")
		recv(t, client)
		time.Sleep(timeout/2 - time.Nanosecond)
		if !alive() {
			t.Fatal("mapping expired early")
		}
		time.Sleep(time.Nanosecond)
		if alive() {
			t.Fatal("mapping alive after the timeout")
		}
	})
}

func TestLAN(t *testing.T) {
	n := newNet(t, Options{})
	log := newTapLog(t, n)
	nat1 := n.NewNAT(ip("192.0.2.1"), NATOptions{Kind: Symmetric})
	nat2 := n.NewNAT(ip("192.0.2.2"), NATOptions{})
	a := natListen(t, nat1, "10.0.0.2:5000")
	b := natListen(t, nat1, "10.0.0.3:5000")
	c := natListen(t, nat2, "10.0.1.2:5000")

	send(t, a, b.LocalAddrPort(), "lan")
	if msg, from := recv(t, b); msg != "lan" || from != a.LocalAddrPort() {
		t.Fatalf("got %q from %v", msg, from)
	}
	if p := log.last(); p.Src != a.LocalAddrPort() || p.Dst != b.LocalAddrPort() {
		t.Fatalf("LAN packet on the wire: %+v", p)
	}
	if k := nat1.Mappings(); k != 0 {
		t.Fatalf("LAN traffic created %d mappings", k)
	}
	send(t, a, ap("10.0.0.3:6000"), "no one")
	if p := log.last(); p.Reason != ReasonNoListener {
		t.Fatalf("LAN to unused port: %+v", p)
	}

	// Another NAT's private address is unroutable.
	send(t, a, c.LocalAddrPort(), "other lan")
	if p := log.last(); p.Reason != ReasonUnroutable || p.Src.Addr() != nat1.Public() {
		t.Fatalf("to another NAT's private address: %+v", p)
	}
	expectEmpty(t, c)

	// NAT.Inject spoofs on the LAN.
	nat1.Inject(ap("10.0.0.99:1"), b.LocalAddrPort(), []byte("lan spoof"))
	if msg, from := recv(t, b); msg != "lan spoof" || from != ap("10.0.0.99:1") {
		t.Fatalf("got %q from %v", msg, from)
	}
}

func TestNATListenErrors(t *testing.T) {
	n := newNet(t, Options{})
	nat := n.NewNAT(ip("192.0.2.1"), NATOptions{})
	natListen(t, nat, "10.0.0.2:5000")
	if _, err := nat.Listen(ap("10.0.0.2:5000")); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := nat.Listen(ap("192.0.2.1:5000")); err == nil {
		t.Fatal("Listen on the NAT's public IP succeeded")
	}
	if _, err := n.Listen(ap("192.0.2.1:5000")); err == nil {
		t.Fatal("direct Listen on a NAT's public IP succeeded")
	}
	// The same private address may exist behind another NAT.
	natListen(t, n.NewNAT(ip("192.0.2.2"), NATOptions{}), "10.0.0.2:5000")
	c := natListen(t, nat, "10.0.0.2:0")
	if c.LocalAddrPort().Port() == 0 || c.NAT() != nat {
		t.Fatalf("port 0 gave %v", c.LocalAddr())
	}
	defer func() {
		if recover() == nil {
			t.Fatal("duplicate NAT did not panic")
		}
	}()
	n.NewNAT(ip("192.0.2.1"), NATOptions{})
}
