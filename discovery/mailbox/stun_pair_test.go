package mailbox

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v2"
)

// changeRequestAttr is a CHANGE-REQUEST attribute with flags.
func changeRequestAttr(flags byte) stun.Setter {
	return stun.RawAttribute{Type: stun.AttrChangeRequest, Value: []byte{0, 0, 0, flags}}
}

// TestServeSTUNPair: each port answers a plain request itself, and a
// change-port request from the other port; a request to change the IP
// address, or with a malformed CHANGE-REQUEST, is not answered.
func TestServeSTUNPair(t *testing.T) {
	s := NewServer(ServerConfig{Logger: quietLogger()})
	a, err := net.ListenPacket("udp", "127.0.0.1:0")
	must(t, err)
	b, err := net.ListenPacket("udp", "127.0.0.1:0")
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ServeSTUNPair(ctx, a, b) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeSTUNPair: %v", err)
		}
	})
	portA := a.LocalAddr().(*net.UDPAddr).AddrPort()
	portB := b.LocalAddr().(*net.UDPAddr).AddrPort()

	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	must(t, err)
	defer uc.Close()
	local := uc.LocalAddr().(*net.UDPAddr).AddrPort()

	// ask sends a request with setters to to and returns where its answer
	// came from. Requests that must go unanswered are followed by a plain
	// one: the first answer to arrive must be the plain one's.
	ask := func(to netip.AddrPort, setters ...stun.Setter) netip.AddrPort {
		t.Helper()
		req := stun.MustBuild(append([]stun.Setter{stun.TransactionID, stun.BindingRequest}, setters...)...)
		if _, err := uc.WriteToUDPAddrPort(req.Raw, to); err != nil {
			t.Fatal(err)
		}
		uc.SetReadDeadline(time.Now().Add(testTimeout))
		buf := make([]byte, 1500)
		n, from, err := uc.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		resp := new(stun.Message)
		must(t, stun.Decode(buf[:n], resp))
		if resp.TransactionID != req.TransactionID {
			t.Fatal("answered another request than the last one sent")
		}
		checkXOROnly(t, resp, local)
		return from
	}
	if got := ask(portA); got != portA {
		t.Fatalf("plain request to %v answered from %v", portA, got)
	}
	if got := ask(portB); got != portB {
		t.Fatalf("plain request to %v answered from %v", portB, got)
	}
	if got := ask(portA, changeRequestAttr(changePortFlag)); got != portB {
		t.Fatalf("change-port request to %v answered from %v, want %v", portA, got, portB)
	}
	if got := ask(portB, changeRequestAttr(changePortFlag)); got != portA {
		t.Fatalf("change-port request to %v answered from %v, want %v", portB, got, portA)
	}
	for _, bad := range []stun.Setter{
		changeRequestAttr(changeIPFlag),
		changeRequestAttr(changeIPFlag | changePortFlag),
		stun.RawAttribute{Type: stun.AttrChangeRequest, Value: []byte{changePortFlag}},
	} {
		req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, bad)
		if _, err := uc.WriteToUDPAddrPort(req.Raw, portA); err != nil {
			t.Fatal(err)
		}
		if got := ask(portA); got != portA { // the plain follow-up
			t.Fatalf("follow-up answered from %v", got)
		}
	}
}

// A lone ServeSTUN has no other port: a change-port request goes
// unanswered rather than answered from the same port, which would tell
// the client its NAT lets in what it does not.
func TestServeSTUNIgnoresChangePortAlone(t *testing.T) {
	addr := serveSTUNOn(t, "127.0.0.1")
	uc, err := net.DialUDP("udp", nil, addr)
	must(t, err)
	defer uc.Close()
	change := stun.MustBuild(stun.TransactionID, stun.BindingRequest, changeRequestAttr(changePortFlag))
	plain := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
	for _, m := range []*stun.Message{change, plain} {
		if _, err := uc.Write(m.Raw); err != nil {
			t.Fatal(err)
		}
	}
	uc.SetReadDeadline(time.Now().Add(testTimeout))
	buf := make([]byte, 1500)
	n, err := uc.Read(buf)
	must(t, err)
	resp := new(stun.Message)
	must(t, stun.Decode(buf[:n], resp))
	if resp.TransactionID != plain.TransactionID {
		t.Fatal("the change-port request was answered from the only port")
	}
}

// FuzzSTUNRequest: whatever a client sends, reading it as a Binding
// request and its CHANGE-REQUEST never panics, and only a well-formed
// attribute with the port flag alone asks to change the port.
func FuzzSTUNRequest(f *testing.F) {
	f.Add(stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw)
	f.Add(stun.MustBuild(stun.TransactionID, stun.BindingRequest, changeRequestAttr(changePortFlag)).Raw)
	f.Add(stun.MustBuild(stun.TransactionID, stun.BindingRequest, changeRequestAttr(changeIPFlag), stun.Fingerprint).Raw)
	f.Add([]byte("junk"))
	f.Fuzz(func(t *testing.T, b []byte) {
		req := new(stun.Message)
		if !parseBindingRequest(req, b) {
			return
		}
		got := changeRequested(req)
		if v, err := req.Get(stun.AttrChangeRequest); got == changePort && (err != nil || len(v) != 4 || v[3]&changeIPFlag != 0 || v[3]&changePortFlag == 0) {
			t.Fatalf("change-port for attribute %x (%v)", v, err)
		}
	})
}
