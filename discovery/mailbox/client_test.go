package mailbox

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestHappyPath(t *testing.T) {
	var logs syncBuffer
	ts := startServer(t, ServerConfig{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ctx := testCtx(t)

	a := dial(t, ts.addr)
	np, err := a.Allocate(ctx)
	if err != nil || np != "1" {
		t.Fatalf("Allocate = %q, %v; want 1", np, err)
	}
	if n, _ := ts.lens(); n != 1 {
		t.Fatalf("%d nameplates after allocate, want 1", n)
	}
	must(t, a.Claim(ctx, np))
	must(t, a.Add(ctx, "pake", []byte("secret-A-pake")))
	must(t, a.Add(ctx, "offer", []byte("secret-A-offer")))

	// B claims late and still gets A's earlier messages, in any phase order.
	b := dial(t, ts.addr)
	if a.Side() == b.Side() || !validSide(a.Side()) {
		t.Fatalf("sides %q and %q", a.Side(), b.Side())
	}
	must(t, b.Claim(ctx, np))
	expectMsg(t, b, "offer", "secret-A-offer")
	expectMsg(t, b, "pake", "secret-A-pake")

	must(t, b.Add(ctx, "pake", []byte("secret-B-pake")))
	must(t, b.Add(ctx, "offer", []byte("secret-B-offer")))
	expectMsg(t, a, "pake", "secret-B-pake") // A's own pake is skipped
	expectMsg(t, a, "offer", "secret-B-offer")

	// Nothing else is waiting for A.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = a.Receive(short, "pake")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Receive with nothing pending = %v", err)
	}

	// Releasing frees the nameplate; the mailbox lives on until close.
	must(t, a.Release(ctx))
	must(t, a.Release(ctx)) // idempotent
	must(t, b.Release(ctx))
	if n, m := ts.lens(); n != 0 || m != 1 {
		t.Fatalf("after release: %d nameplates, %d mailboxes; want 0, 1", n, m)
	}
	must(t, a.Add(ctx, "late", []byte("after-release")))
	expectMsg(t, b, "late", "after-release")

	must(t, a.Close(ctx, Happy))
	must(t, b.Close(ctx, Happy))
	waitFor(t, "mailbox freed", func() bool { n, m := ts.lens(); return n == 0 && m == 0 })
	if _, err := a.Allocate(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Allocate after Close = %v, want ErrClosed", err)
	}

	c := dial(t, ts.addr)
	if np2, err := c.Allocate(ctx); err != nil || np2 != "1" {
		t.Fatalf("reallocate = %q, %v; want 1", np2, err)
	}

	for _, secret := range []string{"secret", "c2VjcmV0"} { // raw and base64 prefix
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("log contains message body %q:\n%s", secret, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "nameplate=1") {
		t.Fatalf("log does not mention the nameplate:\n%s", logs.String())
	}
}

func TestClientStateErrors(t *testing.T) {
	ts := startServer(t, ServerConfig{})
	ctx := testCtx(t)
	a := dial(t, ts.addr)
	if err := a.Add(ctx, "pake", []byte("x")); !errors.Is(err, ErrNotClaimed) {
		t.Fatalf("Add before claim = %v", err)
	}
	if err := a.Release(ctx); !errors.Is(err, ErrNotClaimed) {
		t.Fatalf("Release before claim = %v", err)
	}
	np, err := a.Allocate(ctx)
	must(t, err)
	must(t, a.Claim(ctx, np))
	np2, err := a.Allocate(ctx)
	must(t, err)
	if err := a.Claim(ctx, np2); !errors.Is(err, ErrAlreadyClaimed) {
		t.Fatalf("second claim = %v", err)
	}
	if err := a.Add(ctx, "BAD PHASE", nil); err == nil {
		t.Fatal("Add accepted a bad phase")
	}
	if err := a.Add(ctx, "pake", make([]byte, DefaultMaxBody+1)); err == nil {
		t.Fatal("Add accepted an oversized body")
	}
	// The connection survived the refused requests.
	must(t, a.Add(ctx, "empty", nil))
	must(t, a.Close(ctx, Lonely))
	waitFor(t, "store empty", func() bool { n, m := ts.lens(); return n == 0 && m == 0 })
}

func TestCrowded(t *testing.T) {
	ts := startServer(t, ServerConfig{})
	ctx := testCtx(t)
	a, b, c := dial(t, ts.addr), dial(t, ts.addr), dial(t, ts.addr)
	np, err := a.Allocate(ctx)
	must(t, err)
	must(t, a.Claim(ctx, np))
	must(t, b.Claim(ctx, np))
	err = c.Claim(ctx, np)
	if !errors.Is(err, ErrCrowded) {
		t.Fatalf("third claim = %v, want crowded", err)
	}
	// A released side does not make room for a third one.
	must(t, a.Release(ctx))
	if err := c.Claim(ctx, np); !errors.Is(err, ErrCrowded) {
		t.Fatalf("claim after release = %v, want crowded", err)
	}
}

func TestNoSuchNameplate(t *testing.T) {
	ts := startServer(t, ServerConfig{})
	ctx := testCtx(t)
	a := dial(t, ts.addr)
	for _, np := range []string{"42", "1", "not-a-number"} {
		err := a.Claim(ctx, np)
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeNoSuchNameplate ||
			e.Message != "no transfer is waiting under this code; check the code or ask the sender for a new one" {
			t.Fatalf("Claim(%q) = %#v", np, err)
		}
	}
	// Refused claims do not use up the connection's claim.
	np, err := a.Allocate(ctx)
	must(t, err)
	must(t, a.Claim(ctx, np))
}

func TestScaryCloseBurnsNameplate(t *testing.T) {
	ts := startServer(t, ServerConfig{})
	ctx := testCtx(t)
	a, b := dial(t, ts.addr), dial(t, ts.addr)
	np, err := a.Allocate(ctx)
	must(t, err)
	must(t, a.Claim(ctx, np))
	must(t, a.Add(ctx, "pake", []byte("a")))
	must(t, b.Claim(ctx, np))
	expectMsg(t, b, "pake", "a")
	must(t, b.Close(ctx, Scary))
	// Burned at once: by the time "closed" arrived the nameplate is gone.
	if n, m := ts.lens(); n != 0 || m != 1 {
		t.Fatalf("after scary close: %d nameplates, %d mailboxes; want 0, 1", n, m)
	}
	c := dial(t, ts.addr)
	if err := c.Claim(ctx, np); !errors.Is(err, ErrNoSuchNameplate) {
		t.Fatalf("claim of burned nameplate = %v", err)
	}
	must(t, a.Close(ctx, Lonely))
	waitFor(t, "store empty", func() bool { n, m := ts.lens(); return n == 0 && m == 0 })
}

func TestDisconnectFreesNameplate(t *testing.T) {
	ts := startServer(t, ServerConfig{})
	ctx := testCtx(t)
	a := dial(t, ts.addr)
	np, err := a.Allocate(ctx)
	must(t, err)
	must(t, a.Claim(ctx, np))
	_, _ = a.Allocate(ctx) // allocated, never claimed
	a.shutdown()           // drop the connection without closing
	waitFor(t, "store empty", func() bool { n, m := ts.lens(); return n == 0 && m == 0 })
}

func TestExpiry(t *testing.T) {
	ts := startServer(t, ServerConfig{NameplateTTL: 100 * time.Millisecond})
	ctx := testCtx(t)

	// A claimed and waits; nobody comes: A is told, the nameplate is gone.
	a := dial(t, ts.addr)
	np, err := a.Allocate(ctx)
	must(t, err)
	must(t, a.Claim(ctx, np))
	_, err = a.Receive(ctx, "pake")
	if !errors.Is(err, ErrExpired) || !errors.Is(err, ErrClosed) {
		t.Fatalf("Receive on expired nameplate = %v", err)
	}
	b := dial(t, ts.addr)
	if err := b.Claim(ctx, np); !errors.Is(err, ErrNoSuchNameplate) {
		t.Fatalf("claim of expired nameplate = %v", err)
	}

	// Allocated and never claimed: it expires while its allocator is
	// still connected.
	c := dial(t, ts.addr)
	np2, err := c.Allocate(ctx)
	must(t, err)
	waitFor(t, "nameplate expiry", func() bool { n, _ := ts.lens(); return n == 0 })
	if err := b.Claim(ctx, np2); !errors.Is(err, ErrNoSuchNameplate) {
		t.Fatalf("claim of expired nameplate = %v", err)
	}
	must(t, c.Close(ctx, Lonely))
}

func TestClientKeepalive(t *testing.T) {
	ts := startServer(t, ServerConfig{IdleTimeout: 300 * time.Millisecond})
	a, err := dialWithKeepalive(testCtx(t), ts.addr, 20*time.Millisecond)
	must(t, err)
	defer a.Close(testCtx(t), Happy)
	time.Sleep(900 * time.Millisecond) // three idle timeouts, bridged by pings
	if _, err := a.Allocate(testCtx(t)); err != nil {
		t.Fatalf("Allocate after idling: %v", err)
	}
}

func TestClientIdleTimeout(t *testing.T) {
	ts := startServer(t, ServerConfig{IdleTimeout: 100 * time.Millisecond})
	a := dial(t, ts.addr) // keepalive every 30 s: too slow for this server
	_, err := a.Receive(testCtx(t), "pake")
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("Receive = %v, want ErrClosed", err)
	}
	wantCode(t, err, CodeTimeout)
}

func TestDialUnsupportedVersion(t *testing.T) {
	// A server from the future refuses version 1.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer ln.Close()
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		if _, err := readFrame(nc); err != nil {
			return
		}
		b, _ := encodeFrame(&frame{Type: typeError, Code: CodeUnsupportedVersion, Message: "this server speaks mailbox protocol version 2; upgrade ferry"})
		nc.Write(b)
	}()
	_, err = Dial(testCtx(t), ln.Addr().String())
	if !errors.Is(err, ErrUnsupportedVersion) {
		t.Fatalf("Dial = %v, want unsupported_version", err)
	}
	if !strings.Contains(err.Error(), "upgrade ferry") {
		t.Fatalf("error text %q", err)
	}
}

// TestWelcomeAdvertisesRelay: a server given its own address names it in
// every welcome; a client refuses a malformed one rather than dial it.
func TestWelcomeAdvertisesRelay(t *testing.T) {
	plain := startServer(t, ServerConfig{})
	if c := dial(t, plain.addr); c.Relay() != "" {
		t.Fatalf("a server without --advertise named relay %q", c.Relay())
	}
	ts := startServer(t, ServerConfig{Advertise: "relay-1.example:7887"})
	if c := dial(t, ts.addr); c.Relay() != "relay-1.example:7887" {
		t.Fatalf("Relay() = %q", c.Relay())
	}
	bad := startServer(t, ServerConfig{Advertise: "no port here"})
	if _, err := Dial(testCtx(t), bad.addr); err == nil || !strings.Contains(err.Error(), "relay") {
		t.Fatalf("Dial to a server advertising a malformed relay = %v", err)
	}
}

func TestDialContextCancel(t *testing.T) {
	// A server that accepts and never answers hello.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = Dial(ctx, ln.Addr().String())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Dial took %v", d)
	}
}

func TestReceiveConcurrentPhases(t *testing.T) {
	ts := startServer(t, ServerConfig{})
	ctx := testCtx(t)
	a, b := dial(t, ts.addr), dial(t, ts.addr)
	np, err := a.Allocate(ctx)
	must(t, err)
	must(t, a.Claim(ctx, np))
	must(t, b.Claim(ctx, np))
	phases := []string{"p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7"}
	var wg sync.WaitGroup
	for _, p := range phases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, err := b.Receive(ctx, p)
			if err != nil || string(body) != "body-"+p {
				t.Errorf("Receive(%s) = %q, %v", p, body, err)
			}
		}()
	}
	for _, p := range phases {
		must(t, a.Add(ctx, p, []byte("body-"+p)))
	}
	wg.Wait()
}

func expectMsg(t *testing.T, c *Client, phase, want string) {
	t.Helper()
	got, err := c.Receive(testCtx(t), phase)
	if err != nil || string(got) != want {
		t.Fatalf("Receive(%q) = %q, %v; want %q", phase, got, err, want)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
