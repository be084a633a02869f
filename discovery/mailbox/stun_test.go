package mailbox

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v2"
)

// checkSTUN sends junk and then a Binding request to addr and checks that
// the only answer is a correct Binding success response.
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
	if err := stun.Fingerprint.Check(resp); err != nil {
		t.Fatalf("fingerprint: %v", err)
	}
	local := uc.LocalAddr().(*net.UDPAddr)
	var xor stun.XORMappedAddress
	must(t, xor.GetFrom(resp))
	if !xor.IP.Equal(local.IP) || xor.Port != local.Port {
		t.Fatalf("XOR-MAPPED-ADDRESS %v, want %v", xor, local)
	}
	var mapped stun.MappedAddress
	must(t, mapped.GetFrom(resp))
	if !mapped.IP.Equal(local.IP) || mapped.Port != local.Port {
		t.Fatalf("MAPPED-ADDRESS %v, want %v", mapped, local)
	}
	var sw stun.Software
	must(t, sw.GetFrom(resp))
	if sw.String() != "ferry" {
		t.Fatalf("SOFTWARE %q", sw)
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

func TestSTUNResponseIPv6(t *testing.T) {
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
	from := &net.UDPAddr{IP: net.ParseIP("2001:db8::7"), Port: 4242}
	raw := stunResponse(new(stun.Message), req.Raw, from)
	if raw == nil {
		t.Fatal("no response")
	}
	resp := new(stun.Message)
	must(t, stun.Decode(raw, resp))
	var xor stun.XORMappedAddress
	must(t, xor.GetFrom(resp))
	if !xor.IP.Equal(from.IP) || xor.Port != from.Port {
		t.Fatalf("XOR-MAPPED-ADDRESS %v, want %v", xor, from)
	}
	// An IPv4-mapped IPv6 source (dual-stack socket) is reported as IPv4.
	from = &net.UDPAddr{IP: net.ParseIP("::ffff:192.0.2.9"), Port: 9}
	raw = stunResponse(new(stun.Message), req.Raw, from)
	must(t, stun.Decode(raw, resp))
	must(t, xor.GetFrom(resp))
	if len(xor.IP) != net.IPv4len || !xor.IP.Equal(from.IP) {
		t.Fatalf("XOR-MAPPED-ADDRESS %v", xor)
	}
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
