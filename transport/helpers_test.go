package transport

import (
	"bytes"
	"slices"
	"sync"

	"context"
	"crypto/rand"
	"crypto/sha256"
	"ferry/internal/vnet"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"testing"
	"time"
)

// testLogger logs at debug level only when FERRY_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("FERRY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// fastConfig shortens the timers so tests run in milliseconds, not seconds.
func fastConfig() Config {
	return Config{
		Logger:               testLogger(),
		KeepAlive:            time.Second,
		IdleTimeout:          10 * time.Second,
		ValidationTimeout:    time.Second,
		ValidationRetransmit: 50 * time.Millisecond,
		ProbeInterval:        20 * time.Millisecond,
		MaxProbeInterval:     200 * time.Millisecond,
		HoldDown:             300 * time.Millisecond,
		RebindTimeout:        3 * time.Second,
		RetireGrace:          200 * time.Millisecond,
		NetworkPollInterval:  -1,
		NoNetworkWatch:       true,
	}
}

type pairSpec struct {
	key          []byte
	certA, certB *Certificate
}

func newPairSpec(t testing.TB) pairSpec {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	a, err := NewCertificate()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewCertificate()
	if err != nil {
		t.Fatal(err)
	}
	return pairSpec{key: key, certA: a, certB: b}
}

// connectPair connects socket a (dialer) and b (acceptor), each given the
// other's candidates, and returns both ends.
func connectPair(t testing.TB, a, b *Socket, candA, candB []netip.AddrPort) (*Conn, *Conn) {
	t.Helper()
	return connectPairWith(t, newPairSpec(t), a, b, candA, candB)
}

// connectPairWith is connectPair with the caller's key and certificates, so
// that the same pair can connect again.
func connectPairWith(t testing.TB, spec pairSpec, a, b *Socket, candA, candB []netip.AddrPort) (*Conn, *Conn) {
	t.Helper()
	ra, rb := connectBoth(t, a, b, spec, candA, candB, nil)
	if ra.err != nil {
		t.Fatalf("dialer connect: %v", ra.err)
	}
	if rb.err != nil {
		t.Fatalf("acceptor connect: %v", rb.err)
	}
	return ra.c, rb.c
}

// connectResult is one side's Connect outcome.
type connectResult struct {
	c   *Conn
	err error
}

// connectBoth runs both sides' Connect with spec's keys and waits for both.
// between, if not nil, runs once the acceptor's Connect has registered its
// endpoint and before the dialer's starts.
func connectBoth(t testing.TB, a, b *Socket, spec pairSpec, candA, candB []netip.AddrPort, between func()) (connectResult, connectResult) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bc := make(chan connectResult, 1)
	go func() {
		c, err := b.Connect(ctx, Peer{Role: RoleAcceptor, Key: spec.key, Certificate: spec.certB, PeerFingerprint: spec.certA.Fingerprint, Candidates: candA})
		bc <- connectResult{c, err}
	}()
	if between != nil {
		for len(b.router.endpoints()) == 0 {
			select {
			case r := <-bc:
				t.Fatalf("acceptor's Connect returned early: %v", r.err)
			case <-time.After(time.Millisecond):
			}
		}
		between()
	}
	c, err := a.Connect(ctx, Peer{Role: RoleDialer, Key: spec.key, Certificate: spec.certA, PeerFingerprint: spec.certB.Fingerprint, Candidates: candB})
	if err != nil {
		cancel() // the acceptor waits for no handshake now
	}
	ra, rb := connectResult{c, err}, <-bc
	for _, r := range []connectResult{ra, rb} {
		if r.c != nil {
			t.Cleanup(func() { r.c.Close() })
		}
	}
	return ra, rb
}

// roundTrip sends n random bytes from a to b on a new stream and checks
// that they arrive intact and in order.
func roundTrip(t testing.TB, a, b *Conn, n int) {
	t.Helper()
	streamWithHook(t, a, b, n, func() {})
}

// streamWithHook sends n random bytes from src to dst on one stream and
// calls hook once, when the receiver has read half of them. It checks that
// every byte arrives once, in order (SHA-256 of the stream).
func streamWithHook(t testing.TB, src, dst *Conn, n int, hook func()) {
	t.Helper()
	stream(t, src, dst, n, hook, false)
}

// streamInHalves is streamWithHook with the sender holding the second half
// until hook has returned, so that all of it crosses whatever path hook
// leaves.
func streamInHalves(t testing.TB, src, dst *Conn, n int, hook func()) {
	t.Helper()
	stream(t, src, dst, n, hook, true)
}

func stream(t testing.TB, src, dst *Conn, n int, hook func(), hold bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	payload := make([]byte, n)
	_, _ = rand.Read(payload)
	want := sha256.Sum256(payload)
	release := make(chan struct{}) // closed once hook returned
	errc := make(chan error, 1)
	go func() {
		s, err := src.OpenStream(ctx)
		if err != nil {
			errc <- err
			return
		}
		rest := payload
		if hold {
			if _, err := s.Write(payload[:n/2]); err != nil {
				errc <- err
				return
			}
			select {
			case <-release:
			case <-ctx.Done():
				errc <- ctx.Err()
				return
			}
			rest = payload[n/2:]
		}
		if _, err := s.Write(rest); err != nil {
			errc <- err
			return
		}
		errc <- s.Close()
	}()
	s, err := dst.AcceptStream(ctx)
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	h := sha256.New()
	buf := make([]byte, 32<<10)
	got, hookDue := 0, true
	for {
		limit := len(buf)
		if hookDue && got < n/2 {
			limit = min(limit, n/2-got) // stop at the half, to call hook there
		}
		k, err := s.Read(buf[:limit])
		h.Write(buf[:k])
		got += k
		if hookDue && got >= n/2 {
			hookDue = false
			hook()
			close(release)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read after %d of %d bytes: %v", got, n, err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	if got != n || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("received %d bytes (want %d), hash match %v", got, n, bytes.Equal(h.Sum(nil), want[:]))
	}
}

// recorder captures, as an attacker on the path would, the control packets
// that one host sends.
type recorder struct {
	mu   sync.Mutex
	sent []sentDatagram
}

type sentDatagram struct {
	to netip.AddrPort
	b  []byte
}

// recordControl records every control packet sent from src's IP until the
// test ends.
func recordControl(t testing.TB, n *vnet.Network, src netip.Addr) *recorder {
	r := &recorder{}
	t.Cleanup(n.Tap(func(p vnet.PacketInfo) {
		if p.Src.Addr() != src || Classify(p.Payload) != ClassControl {
			return
		}
		r.mu.Lock()
		r.sent = append(r.sent, sentDatagram{to: p.Dst, b: bytes.Clone(p.Payload)})
		r.mu.Unlock()
	}))
	return r
}

// control returns what was recorded so far.
func (r *recorder) control() []sentDatagram {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sent)
}
