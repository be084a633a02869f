package mailbox

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/pion/stun/v2"
)

// checkSTUN sends junk and then a Binding request to addr and checks that
// the only answer is a correct Binding success response, as small as STUN
// allows.
func checkSTUN(t *testing.T, addr string) {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp", addr)
	must(t, err)
	uc, err := net.DialUDP("udp", nil, raddr)
	must(t, err)
	defer uc.Close()

	// Junk first: plain bytes, a truncated header, a Binding success
	// response and a non-Binding request must all be ignored.
	junk := [][]byte{
		[]byte("hello, is this STUN?"),
		stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw[:12],
		stun.MustBuild(stun.TransactionID, stun.BindingSuccess).Raw,
		stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest)).Raw,
		{},
	}
	for _, j := range junk {
		if _, err := uc.Write(j); err != nil {
			t.Fatal(err)
		}
	}

	// A request shaped like ferry's client's (with FINGERPRINT, 28 bytes).
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	if _, err := uc.Write(req.Raw); err != nil {
		t.Fatal(err)
	}
	uc.SetReadDeadline(time.Now().Add(testTimeout))
	buf := make([]byte, 1500)
	n, err := uc.Read(buf)
	if err != nil {
		t.Fatalf("no STUN response: %v", err)
	}
	resp := new(stun.Message)
	if err := stun.Decode(buf[:n], resp); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if resp.Type != stun.BindingSuccess || resp.TransactionID != req.TransactionID {
		t.Fatalf("got %v, want Binding success for our transaction (was junk answered?)", resp)
	}
	local := uc.LocalAddr().(*net.UDPAddr)
	checkXOROnly(t, resp, local.AddrPort())
}

// checkXOROnly checks that resp carries XOR-MAPPED-ADDRESS naming want and
// no other attribute, in the fewest bytes STUN allows.
func checkXOROnly(t *testing.T, resp *stun.Message, want netip.AddrPort) {
	t.Helper()
	var xor stun.XORMappedAddress
	must(t, xor.GetFrom(resp))
	got, _ := netip.AddrFromSlice(xor.IP)
	if got.Unmap() != want.Addr().Unmap() || xor.Port != int(want.Port()) {
		t.Fatalf("XOR-MAPPED-ADDRESS %v, want %v", xor, want)
	}
	if len(resp.Attributes) != 1 {
		t.Fatalf("answer carries %v, want XOR-MAPPED-ADDRESS only", resp.Attributes)
	}
	size := 20 + 4 + 8 // header; attribute header; family, port, IPv4 address
	if want.Addr().Unmap().Is6() {
		size += 12
	}
	if len(resp.Raw) != size {
		t.Fatalf("answer is %d bytes, want %d", len(resp.Raw), size)
	}
}

func TestServeSTUN(t *testing.T) {
	s := NewServer(ServerConfig{Logger: quietLogger()})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ServeSTUN(ctx, pc) }()
	checkSTUN(t, pc.LocalAddr().String())
	checkSTUN(t, pc.LocalAddr().String()) // a second client, a fresh port
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ServeSTUN = %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("ServeSTUN did not return")
	}
}

// serveSTUNOn runs a fresh Server's ServeSTUN on host (an IP literal) until
// the test ends and returns the address it listens on; it skips the test
// when host cannot be bound (no IPv6 on the machine).
func serveSTUNOn(t *testing.T, host string) *net.UDPAddr {
	t.Helper()
	pc, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Skipf("no UDP on %s: %v", host, err)
	}
	s := NewServer(ServerConfig{Logger: quietLogger()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ServeSTUN(ctx, pc) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeSTUN = %v", err)
		}
	})
	return pc.LocalAddr().(*net.UDPAddr)
}

// TestSTUNOrdinaryClientsAnswered: four clients behind one address (the
// same IP, each its own port), each sending a whole query's worth of
// ferry-shaped requests (every retransmit), all get every answer.
func TestSTUNOrdinaryClientsAnswered(t *testing.T) {
	server := serveSTUNOn(t, "127.0.0.1")
	buf := make([]byte, 1500)
	for c := range 4 {
		uc, err := net.DialUDP("udp", nil, server)
		must(t, err)
		defer uc.Close()
		for i := range 4 {
			req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
			if _, err := uc.Write(req.Raw); err != nil {
				t.Fatal(err)
			}
			uc.SetReadDeadline(time.Now().Add(testTimeout))
			n, err := uc.Read(buf)
			if err != nil {
				t.Fatalf("client %d, request %d: no answer: %v", c, i, err)
			}
			resp := new(stun.Message)
			must(t, stun.Decode(buf[:n], resp))
			if resp.Type != stun.BindingSuccess || resp.TransactionID != req.TransactionID {
				t.Fatalf("client %d, request %d: got %v", c, i, resp)
			}
			checkXOROnly(t, resp, uc.LocalAddr().(*net.UDPAddr).AddrPort())
		}
	}
}

// TestSTUNFloodGetsBackLessThanItSent floods the server from one address
// with the smallest Binding requests (20 bytes, the worst ratio) and counts
// every byte that comes back: fewer than were sent, so the server is no
// amplifier even for a spoofer who owns the victim's address.
func TestSTUNFloodGetsBackLessThanItSent(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			server := serveSTUNOn(t, host)
			uc, err := net.DialUDP("udp", nil, server)
			must(t, err)
			defer uc.Close()
			const flood = 500
			sent := 0
			for range flood {
				req := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
				n, err := uc.Write(req.Raw)
				if err != nil {
					t.Fatal(err)
				}
				sent += n
			}
			// Collect every answer: read until none has come for a second.
			buf := make([]byte, 1500)
			received, answers := 0, 0
			for {
				uc.SetReadDeadline(time.Now().Add(time.Second))
				n, err := uc.Read(buf)
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				resp := new(stun.Message)
				if err := stun.Decode(buf[:n], resp); err != nil || resp.Type != stun.BindingSuccess {
					t.Fatalf("not a Binding success: %x", buf[:n])
				}
				received += n
				answers++
			}
			t.Logf("flood from %s: sent %d requests, %d bytes; got back %d answers, %d bytes", uc.LocalAddr(), flood, sent, answers, received)
			if answers == 0 {
				t.Fatal("not even the flood's first requests were answered")
			}
			if received >= sent {
				t.Fatalf("got back %d bytes for %d sent: the server amplifies", received, sent)
			}
		})
	}
}

func TestBindingSuccessIPv6(t *testing.T) {
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
	resp := new(stun.Message)
	from := netip.MustParseAddrPort("[2001:db8::7]:4242")
	must(t, buildBindingSuccess(resp, req.TransactionID, from))
	must(t, stun.Decode(resp.Raw, resp))
	checkXOROnly(t, resp, from)
	// An IPv4-mapped IPv6 source (dual-stack socket) is reported as IPv4.
	from = netip.MustParseAddrPort("[::ffff:192.0.2.9]:9")
	must(t, buildBindingSuccess(resp, req.TransactionID, from))
	must(t, stun.Decode(resp.Raw, resp))
	var xor stun.XORMappedAddress
	must(t, xor.GetFrom(resp))
	if len(xor.IP) != net.IPv4len || !xor.IP.Equal(net.IPv4(192, 0, 2, 9)) || xor.Port != 9 {
		t.Fatalf("XOR-MAPPED-ADDRESS %v", xor)
	}
	checkXOROnly(t, resp, from)
}

func TestServeSTUNAfterShutdown(t *testing.T) {
	s := NewServer(ServerConfig{Logger: quietLogger()})
	must(t, s.Shutdown(context.Background()))
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	must(t, err)
	if err := s.ServeSTUN(context.Background(), pc); err != ErrServerClosed {
		t.Fatalf("ServeSTUN = %v", err)
	}
}
