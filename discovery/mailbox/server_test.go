package mailbox

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"ferry/internal/fdlimit"
)

func TestRawProtocolExchange(t *testing.T) {
	ts := startServer(t, ServerConfig{})
	a, b := dialRaw(t, ts.addr), dialRaw(t, ts.addr)
	a.hello()
	b.send(obj{"type": "hello", "version": 1, "side": "fedcba9876543210", "future": "ignored"})
	b.read()

	a.send(obj{"type": "allocate", "id": 7})
	if f := a.read(); f["type"] != "allocated" || f["id"] != 7.0 || f["nameplate"] != "1" {
		t.Fatalf("allocate: %v", f)
	}
	a.send(obj{"type": "claim", "id": 8, "nameplate": "1"})
	if f := a.read(); f["type"] != "claimed" || f["id"] != 8.0 {
		t.Fatalf("claim: %v", f)
	}
	body := base64.StdEncoding.EncodeToString([]byte("hi"))
	a.send(obj{"type": "add", "id": 9, "phase": "pake", "body": body})
	// "added" and the echo of the message may come in either order.
	var sawAdded, sawEcho bool
	for range 2 {
		f := a.read()
		switch f["type"] {
		case "added":
			sawAdded = f["id"] == 9.0
		case "message":
			sawEcho = f["side"] == "0123456789abcdef" && f["phase"] == "pake" && f["body"] == body && f["id"] == nil
		}
	}
	if !sawAdded || !sawEcho {
		t.Fatalf("added %v, echo %v", sawAdded, sawEcho)
	}
	b.send(obj{"type": "claim", "id": 1, "nameplate": "1"})
	if f := b.read(); f["type"] != "claimed" {
		t.Fatalf("claim: %v", f)
	}
	if f := b.read(); f["type"] != "message" || f["side"] != "0123456789abcdef" || f["body"] != body {
		t.Fatalf("late claimer got %v", f)
	}
	b.send(obj{"type": "ping", "id": 2})
	if f := b.read(); f["type"] != "pong" || f["id"] != 2.0 {
		t.Fatalf("ping: %v", f)
	}
	b.send(obj{"type": "release", "id": 3})
	if f := b.read(); f["type"] != "released" || f["id"] != 3.0 {
		t.Fatalf("release: %v", f)
	}
	b.send(obj{"type": "close", "id": 4, "mood": "happy"})
	if f := b.read(); f["type"] != "closed" || f["id"] != 4.0 {
		t.Fatalf("close: %v", f)
	}
	b.expectEOF()
}

func TestUnsupportedVersion(t *testing.T) {
	ts := startServer(t, ServerConfig{})
	for _, v := range []int{0, 2, 99} {
		r := dialRaw(t, ts.addr)
		r.send(obj{"type": "hello", "version": v, "side": "0123456789abcdef"})
		f := r.expectError(CodeUnsupportedVersion)
		if f["message"] != "this server speaks mailbox protocol version 1; upgrade ferry" {
			t.Fatalf("message %q", f["message"])
		}
		r.expectEOF()
	}
}

func TestBadHello(t *testing.T) {
	ts := startServer(t, ServerConfig{})
	for _, hello := range []any{
		obj{"type": "allocate", "id": 1},
		obj{"type": "hello", "side": "0123456789abcdef"},
		obj{"type": "hello", "version": 1},
		obj{"type": "hello", "version": 1, "side": "0123456789ABCDEF"},
		obj{"type": "hello", "version": 1, "side": "short"},
		"hello",
	} {
		r := dialRaw(t, ts.addr)
		r.send(hello)
		r.expectError(CodeBadRequest)
		r.expectEOF()
	}
}

func TestProtocolErrorsCloseConnection(t *testing.T) {
	ts := startServer(t, ServerConfig{MaxBody: 100})
	big := base64.StdEncoding.EncodeToString(make([]byte, 101))
	cases := []struct {
		name    string
		payload string
		code    string
		id      any
	}{
		{"not json", `{not json`, CodeBadRequest, nil},
		{"array", `[1,2]`, CodeBadRequest, nil},
		{"null", `null`, CodeBadRequest, nil},
		{"string", `"allocate"`, CodeBadRequest, nil},
		{"trailing garbage", `{"type":"ping","id":1} x`, CodeBadRequest, nil},
		{"no id", `{"type":"ping"}`, CodeBadRequest, nil},
		{"negative id", `{"type":"ping","id":-1}`, CodeBadRequest, nil},
		{"no type", `{"id":5}`, CodeBadRequest, 5.0},
		{"unknown type", `{"type":"frobnicate","id":6}`, CodeBadRequest, 6.0},
		{"claim without nameplate", `{"type":"claim","id":1}`, CodeBadRequest, 1.0},
		{"claim long nameplate", `{"type":"claim","id":1,"nameplate":"` + strings.Repeat("9", 65) + `"}`, CodeBadRequest, 1.0},
		{"add without phase", `{"type":"add","id":1,"body":""}`, CodeBadRequest, 1.0},
		{"add bad phase", `{"type":"add","id":1,"phase":"Pake","body":""}`, CodeBadRequest, 1.0},
		{"add long phase", `{"type":"add","id":1,"phase":"` + strings.Repeat("p", 33) + `","body":""}`, CodeBadRequest, 1.0},
		{"add without body", `{"type":"add","id":1,"phase":"pake"}`, CodeBadRequest, 1.0},
		{"add bad base64", `{"type":"add","id":1,"phase":"pake","body":"***"}`, CodeBadRequest, 1.0},
		{"add oversized body", `{"type":"add","id":2,"phase":"pake","body":"` + big + `"}`, CodeTooLarge, 2.0},
		{"close without mood", `{"type":"close","id":1}`, CodeBadRequest, 1.0},
		{"close bad mood", `{"type":"close","id":1,"mood":"grumpy"}`, CodeBadRequest, 1.0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, ts.addr)
			r.hello()
			r.sendPayload([]byte(tc.payload))
			f := r.expectError(tc.code)
			if f["id"] != tc.id {
				t.Fatalf("error id %v, want %v", f["id"], tc.id)
			}
			r.expectEOF()
		})
	}
}

func TestOversizedFrame(t *testing.T) {
	ts := startServer(t, ServerConfig{})
	for _, afterHello := range []bool{false, true} {
		r := dialRaw(t, ts.addr)
		if afterHello {
			r.hello()
		}
		// Announce 65537 bytes (and send some): refused before reading them.
		r.sendBytes(append(binary.BigEndian.AppendUint32(nil, MaxFrameSize+1), make([]byte, 1000)...))
		r.expectError(CodeTooLarge)
		r.expectEOF()

		r = dialRaw(t, ts.addr)
		if afterHello {
			r.hello()
		}
		r.sendBytes(binary.BigEndian.AppendUint32(nil, 0xFFFFFFFF))
		r.expectError(CodeTooLarge)
		r.expectEOF()

		r = dialRaw(t, ts.addr)
		if afterHello {
			r.hello()
		}
		r.sendBytes([]byte{0, 0, 0, 0})
		r.expectError(CodeBadRequest)
		r.expectEOF()
	}

	// The largest legal frame is accepted (here: a ping padded with an
	// ignored member).
	r := dialRaw(t, ts.addr)
	r.hello()
	prefix, suffix := `{"type":"ping","id":1,"pad":"`, `"}`
	r.sendPayload([]byte(prefix + strings.Repeat("x", MaxFrameSize-len(prefix)-len(suffix)) + suffix))
	if f := r.read(); f["type"] != "pong" {
		t.Fatalf("got %v", f)
	}
}

func TestHelloTimeoutAndHalfOpen(t *testing.T) {
	ts := startServer(t, ServerConfig{HelloTimeout: 150 * time.Millisecond, IdleTimeout: 150 * time.Millisecond})
	cases := []struct {
		name  string
		hello bool
		send  []byte
	}{
		{"silent", false, nil},
		{"half header", false, []byte{0, 0}},
		{"half frame", false, []byte{0, 0, 0, 100, '{', '"'}},
		{"idle after hello", true, nil},
		{"half frame after hello", true, []byte{0, 0, 0, 100, '{', '"'}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, ts.addr)
			if tc.hello {
				r.hello()
			}
			if tc.send != nil {
				r.sendBytes(tc.send)
			}
			start := time.Now()
			r.expectError(CodeTimeout)
			r.expectEOF()
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("closed after %v", d)
			}
		})
	}
	waitFor(t, "connections gone", func() bool { return ts.s.connCount() == 0 })
}

func TestPingsKeepConnectionOpen(t *testing.T) {
	ts := startServer(t, ServerConfig{IdleTimeout: 300 * time.Millisecond})
	r := dialRaw(t, ts.addr)
	r.hello()
	for i := range 12 { // 12 × 50 ms: twice the idle timeout
		time.Sleep(50 * time.Millisecond)
		r.send(obj{"type": "ping", "id": i})
		if f := r.read(); f["type"] != "pong" {
			t.Fatalf("got %v", f)
		}
	}
}

func TestRateLimit(t *testing.T) {
	ts := startServer(t, ServerConfig{RequestRate: 1, RequestBurst: 5})
	r := dialRaw(t, ts.addr)
	r.hello()
	const n = 20
	var frames []byte
	for i := range n {
		js := fmt.Sprintf(`{"type":"ping","id":%d}`, i)
		frames = binary.BigEndian.AppendUint32(frames, uint32(len(js)))
		frames = append(frames, js...)
	}
	r.sendBytes(frames)
	pongs, limited := 0, 0
	for i := range n {
		f := r.read()
		if f["id"] != float64(i) {
			t.Fatalf("response %d has id %v", i, f["id"])
		}
		switch {
		case f["type"] == "pong":
			pongs++
		case f["type"] == "error" && f["code"] == CodeRateLimited:
			limited++
		default:
			t.Fatalf("got %v", f)
		}
	}
	if pongs < 5 || pongs > 6 || limited != n-pongs {
		t.Fatalf("%d pongs, %d rate limited; want 5 or 6 pongs", pongs, limited)
	}

	// The Go client sees ErrRateLimited; the connection stays usable.
	c := dial(t, ts.addr)
	ctx := testCtx(t)
	var err error
	for range 10 {
		if _, err = c.Allocate(ctx); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrRateLimited) {
		t.Fatalf("got %v, want rate_limited", err)
	}
}

func TestNameplateLimitPerIP(t *testing.T) {
	ts := startServer(t, ServerConfig{MaxNameplatesPerIP: 3})
	ctx := testCtx(t)
	a, b := dial(t, ts.addr), dial(t, ts.addr)
	for range 3 {
		_, err := a.Allocate(ctx)
		must(t, err)
	}
	if _, err := a.Allocate(ctx); !errors.Is(err, ErrTooManyNameplates) {
		t.Fatalf("4th allocate = %v", err)
	}
	if _, err := b.Allocate(ctx); !errors.Is(err, ErrTooManyNameplates) {
		t.Fatalf("allocate from the same IP = %v", err)
	}
	// A's unclaimed nameplates go when A does.
	must(t, a.Close(ctx, Lonely))
	waitFor(t, "nameplates released", func() bool { n, _ := ts.lens(); return n == 0 })
	if _, err := b.Allocate(ctx); err != nil {
		t.Fatalf("allocate after release: %v", err)
	}
}

func TestMailboxFull(t *testing.T) {
	ts := startServer(t, ServerConfig{MaxMessages: 3})
	ctx := testCtx(t)
	a := dial(t, ts.addr)
	np, err := a.Allocate(ctx)
	must(t, err)
	must(t, a.Claim(ctx, np))
	for range 3 {
		must(t, a.Add(ctx, "p", nil))
	}
	if err := a.Add(ctx, "p", nil); !errors.Is(err, ErrMailboxFull) {
		t.Fatalf("4th add = %v", err)
	}
}

func TestGracefulShutdown(t *testing.T) {
	ts := startServer(t, ServerConfig{})
	ctx := testCtx(t)
	a, b := dial(t, ts.addr), dial(t, ts.addr)
	np, err := a.Allocate(ctx)
	must(t, err)
	must(t, a.Claim(ctx, np))
	r := dialRaw(t, ts.addr)
	r.hello()
	silent := dialRaw(t, ts.addr) // never says hello
	waitFor(t, "all connections accepted", func() bool { return ts.s.connCount() == 4 })

	recvErr := make(chan error, 1)
	go func() {
		_, err := a.Receive(ctx, "pake")
		recvErr <- err
	}()

	start := time.Now()
	sctx, cancel := context.WithTimeout(ctx, 8*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := ts.s.Shutdown(sctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}()
	r.expectError(CodeShuttingDown)
	r.expectEOF()
	silent.expectError(CodeShuttingDown)
	silent.expectEOF()
	if err := <-recvErr; !errors.Is(err, ErrShuttingDown) || !errors.Is(err, ErrClosed) {
		t.Fatalf("Receive during shutdown = %v", err)
	}
	if _, err := b.Receive(ctx, "pake"); !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("idle client during shutdown: %v", err)
	}
	if _, err := b.Allocate(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Allocate after shutdown = %v", err)
	}
	wg.Wait()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
	if n := ts.s.connCount(); n != 0 {
		t.Fatalf("%d connections left", n)
	}
	if _, err := Dial(ctx, ts.addr); err == nil {
		t.Fatal("Dial after shutdown succeeded")
	}
	if err := ts.s.Serve(ctx, mustListen(t)); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Shutdown = %v", err)
	}
}

func TestShutdownForcesStuckClients(t *testing.T) {
	ts := startServer(t, ServerConfig{})
	r := dialRaw(t, ts.addr)
	r.hello()
	// r never reads nor closes; its linger ends the connection anyway.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := ts.s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want deadline exceeded", err)
	}
	waitFor(t, "connections gone", func() bool { return ts.s.connCount() == 0 })
}

func TestListenAndServe(t *testing.T) {
	ln, pc, err := Listen("127.0.0.1:0")
	must(t, err)
	addr := ln.Addr().String()
	if pc.LocalAddr().String() != addr {
		t.Fatalf("tcp %s, udp %s", addr, pc.LocalAddr())
	}
	ln.Close()
	pc.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ListenAndServe(ctx, addr, ServerConfig{Logger: quietLogger()}) }()
	var c *Client
	waitFor(t, "server up", func() bool {
		c, err = Dial(testCtx(t), addr)
		return err == nil
	})
	defer c.shutdown()
	if _, err := c.Allocate(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	checkSTUN(t, addr)

	cancel()
	_, err = c.Receive(testCtx(t), "pake")
	if !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("Receive = %v, want shutting_down", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ListenAndServe = %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("ListenAndServe did not return")
	}
}

func TestManyIdleConnections(t *testing.T) {
	const idle = 3000
	fdlimit.Raise(t, 2*idle+500)
	ts := startServer(t, ServerConfig{})
	conns := make([]net.Conn, 0, idle)
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	hello, _ := encodeFrame(&frame{Type: typeHello, Version: new(1), Side: "0123456789abcdef"})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range idle {
		nc, err := net.DialTimeout("tcp", ts.addr, testTimeout)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, nc)
		if i%2 == 0 { // half say hello, half stay silent
			if _, err := nc.Write(hello); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 0; i < idle; i += 2 {
		conns[i].SetReadDeadline(time.Now().Add(testTimeout))
		if _, err := readFrame(conns[i]); err != nil {
			t.Fatalf("welcome %d: %v", i, err)
		}
	}
	waitFor(t, "all connections accepted", func() bool { return ts.s.connCount() == idle })
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("%d idle connections: %.1f KiB heap, %.1f KiB stack each (server and test client sides)",
		idle, float64(after.HeapInuse-before.HeapInuse)/idle/1024, float64(after.StackInuse-before.StackInuse)/idle/1024)

	ctx := testCtx(t)
	a, b := dial(t, ts.addr), dial(t, ts.addr)
	np, err := a.Allocate(ctx)
	must(t, err)
	must(t, a.Claim(ctx, np))
	must(t, b.Claim(ctx, np))
	must(t, a.Add(ctx, "pake", []byte("A")))
	must(t, b.Add(ctx, "pake", []byte("B")))
	expectMsg(t, a, "pake", "B")
	expectMsg(t, b, "pake", "A")
	must(t, a.Close(ctx, Happy))
	must(t, b.Close(ctx, Happy))
}

func mustListen(t testing.TB) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	return ln
}

// panickyStore panics on Allocate, standing in for a buggy Store.
type panickyStore struct{ *MemStore }

func (panickyStore) Allocate(context.Context, AllocateRequest) (string, error) { panic("boom") }

// failingStore fails every Claim with a non-protocol error.
type failingStore struct{ *MemStore }

func (failingStore) Claim(context.Context, string, string) (string, error) {
	return "", errors.New("database on fire")
}

func TestStoreFailuresStayContained(t *testing.T) {
	ts := startServer(t, ServerConfig{Store: panickyStore{NewMemStore()}})
	ctx := testCtx(t)
	a := dial(t, ts.addr)
	_, err := a.Allocate(ctx)
	wantCode(t, err, CodeInternal)
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("Allocate = %v, want the connection closed", err)
	}
	b := dial(t, ts.addr) // the server lives on
	if _, err := b.Allocate(ctx); err == nil {
		t.Fatal("Allocate succeeded")
	}

	ts = startServer(t, ServerConfig{Store: failingStore{NewMemStore()}})
	c := dial(t, ts.addr)
	err = c.Claim(ctx, "1")
	wantCode(t, err, CodeInternal)
	if err := c.Release(ctx); !errors.Is(err, ErrNotClaimed) { // still connected
		t.Fatalf("Release = %v", err)
	}
}
