package mailbox

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"ferry/transport"
)

// startDemux serves a mailbox Server and relay on one fresh 127.0.0.1 port
// through a Demux with the given peek timeout, until the test ends.
func startDemux(t testing.TB, cfg ServerConfig, relay func(net.Conn), peek time.Duration) (addr string, d *Demux) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d = NewDemux(ln, relay, quietLogger())
	d.peekTimeout = peek
	s := NewServer(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	serveErr, demuxErr := make(chan error, 1), make(chan error, 1)
	go func() { serveErr <- s.Serve(ctx, d.Mailbox()) }()
	go func() { demuxErr <- d.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		sctx, scancel := context.WithTimeout(context.Background(), testTimeout)
		defer scancel()
		if err := s.Shutdown(sctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		d.Close()
		for _, c := range []chan error{serveErr, demuxErr} {
			select {
			case err := <-c:
				if err != nil {
					t.Errorf("Serve: %v", err)
				}
			case <-time.After(testTimeout):
				t.Errorf("Serve did not return")
			}
		}
	})
	return ln.Addr().String(), d
}

// relayServer is a transport.RelayServer for one test, as a Demux handler.
func relayServer(t testing.TB, cfg transport.RelayConfig) func(net.Conn) {
	cfg.Logger = quietLogger()
	rs := transport.NewRelayServer(cfg)
	t.Cleanup(func() { rs.Close() })
	return func(c net.Conn) { rs.ServeConn(context.Background(), c) }
}

// relayJoin sends a relay hello for token and side to addr.
func relayJoin(t testing.TB, addr string, token byte, side transport.Role) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var tok [transport.RelayTokenLen]byte
	tok[0] = token
	c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := c.Write(transport.AppendRelayHello(nil, tok, side)); err != nil {
		t.Fatal(err)
	}
	return c, bufio.NewReader(c)
}

func expectRelayStatus(t testing.TB, r *bufio.Reader, want ...transport.RelayStatus) {
	t.Helper()
	for _, w := range want {
		b, err := r.ReadByte()
		if err != nil {
			t.Fatalf("relay status: %v", err)
		}
		if got := transport.RelayStatus(b); got != w {
			t.Fatalf("relay status %q, want %q", got, w)
		}
	}
}

// checkMailbox allocates, claims and exchanges a message through addr.
func checkMailbox(t *testing.T, addr string) {
	t.Helper()
	checkPairing(t, addr, addr)
}

// checkPairing pairs a client of addrA, which allocates and claims, with a
// client of addrB, which claims; each sends the other a message. It
// returns the two clients, still in the mailbox.
func checkPairing(t *testing.T, addrA, addrB string) (a, b *Client) {
	t.Helper()
	ctx := testCtx(t)
	a, b = dial(t, addrA), dial(t, addrB)
	np, err := a.Allocate(ctx)
	must(t, err)
	must(t, a.Claim(ctx, np))
	must(t, b.Claim(ctx, np))
	must(t, a.Add(ctx, "pake", []byte("A")))
	expectMsg(t, b, "pake", "A")
	must(t, b.Add(ctx, "pake", []byte("B")))
	expectMsg(t, a, "pake", "B")
	return a, b
}

// relayPair is a paired relay session's two raw clients.
type relayPair struct {
	a, b   net.Conn
	ar, br *bufio.Reader
}

// pairRelayClients pairs two relay clients of token through addr.
func pairRelayClients(t testing.TB, addr string, token byte) relayPair {
	t.Helper()
	a, ar := relayJoin(t, addr, token, transport.RoleDialer)
	expectRelayStatus(t, ar, transport.RelayWaiting)
	b, br := relayJoin(t, addr, token, transport.RoleAcceptor)
	expectRelayStatus(t, br, transport.RelayWaiting, transport.RelayPaired)
	expectRelayStatus(t, ar, transport.RelayPaired)
	return relayPair{a, b, ar, br}
}

// exchange sends a frame each way.
func (p relayPair) exchange(t testing.TB) {
	t.Helper()
	buf := make([]byte, transport.MaxRelayFrame)
	for _, dir := range []struct {
		from net.Conn
		to   *bufio.Reader
		msg  string
	}{{p.a, p.br, "to the acceptor"}, {p.b, p.ar, "to the dialer"}} {
		must(t, transport.WriteRelayFrame(dir.from, []byte(dir.msg)))
		n, err := transport.ReadRelayFrame(dir.to, buf)
		must(t, err)
		if string(buf[:n]) != dir.msg {
			t.Fatalf("relayed %q, want %q", buf[:n], dir.msg)
		}
	}
}

// checkRelay pairs two relay clients through addr and sends a frame each
// way.
func checkRelay(t *testing.T, addr string, token byte) {
	t.Helper()
	pairRelayClients(t, addr, token).exchange(t)
}

// TestDemuxServesMailboxAndRelay: mailbox clients and relay clients on the
// same port each reach their own server, a mailbox hello that arrives a
// byte at a time included (the bytes read to classify it are not lost).
func TestDemuxServesMailboxAndRelay(t *testing.T) {
	addr, _ := startDemux(t, ServerConfig{}, relayServer(t, transport.RelayConfig{}), peekTimeout)
	checkMailbox(t, addr)
	checkRelay(t, addr, 1)

	r := dialRaw(t, addr)
	hello, err := encodeFrame(&frame{Type: typeHello, Version: new(1), Side: "0123456789abcdef"})
	must(t, err)
	for i := range hello {
		r.sendBytes(hello[i : i+1])
	}
	if f := r.read(); f["type"] != "welcome" {
		t.Fatalf("got %v, want welcome", f)
	}
	// A relay hello that is not one ("FRY" and then not "R") goes to the
	// mailbox, which refuses the frame as it always did.
	r = dialRaw(t, addr)
	r.sendBytes([]byte("FRYX"))
	r.expectError(CodeTooLarge)
}

// TestDemuxRelayDisabled: with the relay turned off (`--no-relay`), a
// relay hello is refused with RelayDisabled and the mailbox still works.
func TestDemuxRelayDisabled(t *testing.T) {
	addr, _ := startDemux(t, ServerConfig{}, relayServer(t, transport.RelayConfig{Disabled: true}), peekTimeout)
	_, r := relayJoin(t, addr, 1, transport.RoleDialer)
	expectRelayStatus(t, r, transport.RelayDisabled)
	checkMailbox(t, addr)
}

// TestDemuxSilentConnectionDoesNotBlock: connections that send nothing, or
// part of the relay magic, do not hold up the others. The peek timeout is
// longer than the test's, so a blocked accept loop would fail it.
func TestDemuxSilentConnectionDoesNotBlock(t *testing.T) {
	addr, _ := startDemux(t, ServerConfig{}, relayServer(t, transport.RelayConfig{}), time.Hour)
	dialRaw(t, addr)
	dialRaw(t, addr).sendBytes([]byte("FR"))
	checkMailbox(t, addr)
	checkRelay(t, addr, 2)
}

// TestDemuxSilentConnectionGetsHelloTimeout: a client that sends nothing
// (or a partial frame header) is handed to the mailbox, whose hello timeout
// closes it as it does without the relay.
func TestDemuxSilentConnectionGetsHelloTimeout(t *testing.T) {
	addr, _ := startDemux(t, ServerConfig{HelloTimeout: 150 * time.Millisecond}, relayServer(t, transport.RelayConfig{}), 50*time.Millisecond)
	for _, send := range [][]byte{nil, {0, 0}} {
		r := dialRaw(t, addr)
		if send != nil {
			r.sendBytes(send)
		}
		r.expectError(CodeTimeout)
		r.expectEOF()
	}
}

// TestDemuxCloseEndsConnections: Close ends relayed connections and
// connections still being classified, waits for the handlers, and leaves
// no goroutine behind.
func TestDemuxCloseEndsConnections(t *testing.T) {
	before := runtime.NumGoroutine()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	relayed := make(chan struct{}, 1)
	d := NewDemux(ln, func(c net.Conn) {
		relayed <- struct{}{}
		io.Copy(io.Discard, c) // until Close closes it
	}, quietLogger())
	d.peekTimeout = time.Hour
	served := make(chan error, 1)
	go func() { served <- d.Serve(context.Background()) }()

	silent := dialRaw(t, ln.Addr().String())
	rc, _ := relayJoin(t, ln.Addr().String(), 3, transport.RoleDialer)
	<-relayed
	d.Close()
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v", err)
	}
	for _, c := range []net.Conn{silent, rc} {
		c.SetReadDeadline(time.Now().Add(testTimeout))
		if _, err := io.ReadAll(c); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("connection not closed")
		}
		c.Close()
	}
	if _, err := d.Mailbox().Accept(); err == nil {
		t.Fatal("Accept on the mailbox listener after Close")
	}
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

// TestListenAndServeWithRelay: ListenAndServe with WithRelay serves the
// mailbox, the relay and STUN on one port, and on stopping closes relay
// sessions and returns cleanly.
func TestListenAndServeWithRelay(t *testing.T) {
	ln, pc, err := Listen("127.0.0.1:0")
	must(t, err)
	addr := ln.Addr().String()
	ln.Close()
	pc.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	relay := relayServer(t, transport.RelayConfig{})
	go func() {
		done <- ListenAndServe(ctx, addr, ServerConfig{Logger: quietLogger()}, WithRelay(relay))
	}()
	waitFor(t, "server up", func() bool {
		c, err := Dial(testCtx(t), addr)
		if err == nil {
			c.shutdown()
		}
		return err == nil
	})
	checkMailbox(t, addr)
	checkRelay(t, addr, 4)
	checkSTUN(t, addr)
	waiting, wr := relayJoin(t, addr, 5, transport.RoleAcceptor)
	expectRelayStatus(t, wr, transport.RelayWaiting)

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ListenAndServe = %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("ListenAndServe did not return")
	}
	if _, err := io.ReadAll(wr); err != nil {
		t.Fatalf("waiting relay client: %v", err)
	}
	waiting.Close()
}
