package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"ferry/internal/redistest"
)

// TestRendezvousScaleOut runs two real `ferry rendezvous` processes that
// share one real redis-server, each advertising its own address, as
// several servers behind one DNS name would. A sender on the first and a
// receiver on the second pair exactly as on one server, and their relayed
// transfer (--relay-only) meets on the sender's server, named in its
// offer, since a relay session cannot span two servers.
func TestRendezvousScaleOut(t *testing.T) {
	servers, _, _ := startScaleOut(t, redistest.Start(t), 2)

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

// startScaleOut starts n `ferry rendezvous` processes sharing the Redis at
// redisAddr, each advertising its own address, with extra flags, and
// returns their addresses, processes and logs.
func startScaleOut(tb testing.TB, redisAddr string, n int, extra ...string) (addrs []string, cmds []*exec.Cmd, logs []*safeBuffer) {
	tb.Helper()
	for range n {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freeLoopbackPort(tb)))
		args := append([]string{"--listen", addr, "--advertise", addr, "--stun-alt-port", "-1", "--redis", "redis://" + redisAddr + "/0"}, extra...)
		_, cmd, log := startRendezvousProcess(tb, args...)
		addrs, cmds, logs = append(addrs, addr), append(cmds, cmd), append(logs, log)
	}
	return addrs, cmds, logs
}

// sendAndReceive runs a sender on one server and a receiver on another and
// checks the file arrives; between runs after the code is known and
// before the receiver starts.
func sendAndReceive(t *testing.T, sendVia, recvVia string, between func()) {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "payload.bin")
	writeRandom(t, src, 1<<20)
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	send := startFerry(t, sendVia, "send", src)
	c := send.waitEvent(t, "the code", func(e jsonEvent) bool { return e.Event == "code" })
	if between != nil {
		between()
	}
	recv := startFerry(t, recvVia, "receive", "--yes", "--out", out, c.Code)
	if code := recv.wait(t); code != 0 {
		t.Fatalf("receive exited %d; stderr:\n%s\nevents: %+v", code, recv.stderr.String(), recv.events)
	}
	if code := send.wait(t); code != 0 {
		t.Fatalf("send exited %d; stderr:\n%s", code, send.stderr.String())
	}
	if err := sameFile(src, filepath.Join(out, "payload.bin")); err != nil {
		t.Fatal(err)
	}
}

// TestRendezvousRedisRestartMidPairing: Redis (with its append-only file,
// as a deployment that must survive a restart runs it) goes away while a
// sender waits on one server and a receiver starts on the other. The
// servers refuse with "unavailable" meanwhile, the clients try again, and
// once Redis is back the pairing and the transfer complete, with nobody
// restarting anything.
func TestRendezvousRedisRestartMidPairing(t *testing.T) {
	rs := redistest.StartPersistentServer(t)
	servers, _, logs := startScaleOut(t, rs.Addr(), 2)
	sendAndReceive(t, servers[0], servers[1], func() {
		rs.Stop()
		go func() {
			// Back once the receiver's claim was refused for it.
			waitLog(t, logs[1], "mailbox store unavailable")
			rs.Restart()
		}()
	})
}

// TestRendezvousInstanceKilledMidPairing: the server a sender waits on is
// killed. The sender fails with the retryable kind "unavailable"; run
// again, it pairs through the other server, with a receiver there.
func TestRendezvousInstanceKilledMidPairing(t *testing.T) {
	rs := redistest.StartServer(t)
	servers, cmds, _ := startScaleOut(t, rs.Addr(), 2)
	src := filepath.Join(t.TempDir(), "payload.bin")
	writeRandom(t, src, 1<<10)
	send := startFerry(t, servers[0], "send", src)
	send.waitEvent(t, "the code", func(e jsonEvent) bool { return e.Event == "code" })
	if err := cmds[0].Process.Kill(); err != nil {
		t.Fatal(err)
	}
	ev := send.waitEvent(t, "the error", func(e jsonEvent) bool { return e.Event == "error" })
	if code := send.wait(t); code != exitFailure || ev.Kind != "unavailable" {
		t.Fatalf("sender exited %d with %q (%s), want %d and unavailable", code, ev.Kind, ev.Message, exitFailure)
	}
	sendAndReceive(t, servers[1], servers[1], nil)
}

// waitLog waits until a server's log contains s.
func waitLog(t *testing.T, log *safeBuffer, s string) {
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(log.String(), s) {
		if time.Now().After(deadline) {
			t.Errorf("no %q in the server's log:\n%s", s, lastLines(log.String(), 20))
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
