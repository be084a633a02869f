package discovery

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"ferry/discovery/mailbox"
	"ferry/transport"
)

// startFullRendezvous runs what `ferry rendezvous` runs, on loopback: the
// mailbox and the relay's address query on one TCP port, STUN on the same
// UDP port and, with alt, on a second one the welcome announces.
func startFullRendezvous(t *testing.T, alt bool) string {
	t.Helper()
	ln, pc, err := mailbox.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := mailbox.ServerConfig{Logger: quietLogger()}
	var altPC net.PacketConn
	if alt {
		if altPC, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		cfg.STUNAltPort = altPC.LocalAddr().(*net.UDPAddr).Port
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := mailbox.NewServer(cfg)
	relay := transport.NewRelayServer(transport.RelayConfig{Logger: quietLogger()})
	demux := mailbox.NewDemux(ln, func(c net.Conn) { relay.ServeConn(ctx, c) }, quietLogger())
	done := make(chan struct{}, 3)
	go func() { demux.Serve(ctx); done <- struct{}{} }()
	go func() { srv.Serve(ctx, demux.Mailbox()); done <- struct{}{} }()
	go func() {
		if alt {
			srv.ServeSTUNPair(ctx, pc, altPC)
		} else {
			srv.ServeSTUN(ctx, pc)
		}
		done <- struct{}{}
	}()
	t.Cleanup(func() {
		cancel()
		demux.Close()
		relay.Close()
		<-done
		<-done
		<-done
	})
	return ln.Addr().String()
}

// TestNetcheckLoopback: on loopback there is no NAT, so every check
// passes and the verdict says the address is public; the port mapping
// hook's answer is reported and the relay's round trip measured.
func TestNetcheckLoopback(t *testing.T) {
	addr := startFullRendezvous(t, true)
	mapped := netip.MustParseAddrPort("198.51.100.1:40000")
	var askedPort uint16
	r, err := Netcheck(context.Background(), NetcheckConfig{
		Rendezvous: addr,
		Logger:     quietLogger(),
		PortMap: func(_ context.Context, port uint16) (string, netip.AddrPort, error) {
			askedPort = port
			return PortMapNATPMP, mapped, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r)
	if !r.UDP || !r.TCP || len(r.Reflexive) != 1 || r.Reflexive[0].Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("UDP %v TCP %v reflexive %v", r.UDP, r.TCP, r.Reflexive)
	}
	if !r.Public() || r.Mapping != MappingIndependent || r.Filtering != FilteringIndependent {
		t.Fatalf("public %v, mapping %q, filtering %q: loopback has no NAT", r.Public(), r.Mapping, r.Filtering)
	}
	if !r.TCPPortPreserved || r.TCPReflexive.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("TCP reflexive %v, preserved %v", r.TCPReflexive, r.TCPPortPreserved)
	}
	if r.PortMap != PortMapNATPMP || r.PortMapAddress != mapped || askedPort != r.Reflexive[0].Port() {
		t.Fatalf("port map %q %v for port %d (UDP socket %v)", r.PortMap, r.PortMapAddress, askedPort, r.Reflexive[0])
	}
	if r.RelayRTT <= 0 {
		t.Fatalf("relay RTT %v", r.RelayRTT)
	}
	if r.Verdict == "" {
		t.Fatal("no verdict")
	}
}

// TestNetcheckWithoutSecondPort: a server without a second STUN port
// leaves the mapping unknown rather than guessing.
func TestNetcheckWithoutSecondPort(t *testing.T) {
	addr := startFullRendezvous(t, false)
	r, err := Netcheck(context.Background(), NetcheckConfig{Rendezvous: addr, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if !r.UDP || !r.TCP {
		t.Fatalf("UDP %v TCP %v", r.UDP, r.TCP)
	}
	if r.Filtering != FilteringUnknown || r.PortMap != PortMapNone {
		t.Fatalf("filtering %q, port map %q", r.Filtering, r.PortMap)
	}
	// On loopback the address is public, which says the mapping anyway.
	if r.Mapping != MappingIndependent {
		t.Fatalf("mapping %q", r.Mapping)
	}
}

// TestNetcheckServerDown: nothing answers; the report says so in words
// and the check ends within its timeout.
func TestNetcheckServerDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r, err := Netcheck(context.Background(), NetcheckConfig{Rendezvous: addr, Logger: quietLogger(), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if r.UDP || r.TCP || r.Mapping != MappingUnknown || r.RelayRTT != 0 {
		t.Fatalf("%+v", r)
	}
	if want := "The rendezvous server cannot be reached: transfers work on the local network only."; r.Verdict != want {
		t.Fatalf("verdict %q", r.Verdict)
	}
}
