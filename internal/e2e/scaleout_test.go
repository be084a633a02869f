package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"ferry/internal/redistest"
)

// TestRendezvousScaleOut runs two real `ferry rendezvous` processes that
// share one real redis-server, each advertising its own address, as
// several servers behind one DNS name would. A sender on the first and a
// receiver on the second pair exactly as on one server, and their relayed
// transfer (--relay-only) meets on the sender's server, named in its
// offer, since a relay session cannot span two servers.
func TestRendezvousScaleOut(t *testing.T) {
	redis := redistest.Start(t)
	var servers [2]string
	for i := range servers {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freeLoopbackPort(t)))
		startRendezvousProcess(t, "--listen", addr, "--advertise", addr, "--redis", "redis://"+redis+"/0")
		servers[i] = addr
	}

	dir := t.TempDir()
	src := filepath.Join(dir, "payload.bin")
	writeRandom(t, src, 3<<20)
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	send := startFerry(t, servers[0], "send", "--relay-only", src)
	c := send.waitEvent(t, "the code", func(e jsonEvent) bool { return e.Event == "code" })
	recv := startFerry(t, servers[1], "receive", "--relay-only", "--yes", "--out", out, c.Code)
	if code := recv.wait(t); code != 0 {
		t.Fatalf("receive exited %d; stderr:\n%s", code, recv.stderr.String())
	}
	if code := send.wait(t); code != 0 {
		t.Fatalf("send exited %d; stderr:\n%s", code, send.stderr.String())
	}
	if err := sameFile(src, filepath.Join(out, "payload.bin")); err != nil {
		t.Fatal(err)
	}
	for _, p := range bothSides(send, recv) {
		ev, ok := p.find("connected")
		if !ok {
			t.Fatalf("the %s reported no connection", p.name)
		}
		if ev.Path != "relay" || ev.Peer != servers[0] {
			t.Errorf("the %s connected on %q via %q, want the relay of the sender's server %s", p.name, ev.Path, ev.Peer, servers[0])
		}
		if pe, moved := p.find("path"); moved {
			t.Errorf("the %s's path changed (%+v) in a relay-only transfer", p.name, pe)
		}
	}
}

// freeLoopbackPort returns a port that was free on 127.0.0.1 for TCP and
// UDP a moment ago, for a server that must be told its address before it
// starts.
func freeLoopbackPort(t testing.TB) int {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		ln.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("no port free for both TCP and UDP on 127.0.0.1")
	return 0
}
