package transport

import (
	"context"
	"errors"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"ferry/internal/vnet"
)

// TestCloseLeavesNoGoroutines: every goroutine a Socket starts (readers,
// housekeeping, endpoint timers, quic-go's) ends when it is closed.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	n := newNet(t)
	a, err := NewSocket(withBind(fastConfig(), n, publicA))
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSocket(withBind(fastConfig(), n, publicB))
	if err != nil {
		t.Fatal(err)
	}
	ca, cb := connectPair(t, a, b, []netip.AddrPort{publicA}, []netip.AddrPort{publicB})
	roundTrip(t, ca, cb, 64<<10)
	a.Close()
	b.Close()
	if ca.Context().Err() == nil {
		t.Fatal("connection still open after its socket closed")
	}
	if _, err := a.Connect(context.Background(), Peer{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Connect on a closed socket: %v", err)
	}
	n.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestConnectFailsWithoutAnswer: no candidate answers, Connect gives up
// with ctx and says so.
func TestConnectFailsWithoutAnswer(t *testing.T) {
	n := newNet(t)
	a := vnetSocket(t, fastConfig(), listenAt(n, publicA))
	spec := newPairSpec(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := a.Connect(ctx, Peer{Role: RoleDialer, Key: spec.key, Certificate: spec.certA, PeerFingerprint: spec.certB.Fingerprint, Candidates: []netip.AddrPort{publicB}})
	if !errors.Is(err, ErrNoPath) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrNoPath and deadline exceeded", err)
	}
	if len(a.router.endpoints()) != 0 {
		t.Fatal("failed Connect left its endpoint registered")
	}
}

// TestWrongCertificateIsRejected: a peer whose certificate does not match
// the pin fails the handshake on both sides.
func TestWrongCertificateIsRejected(t *testing.T) {
	n := newNet(t)
	a := vnetSocket(t, fastConfig(), listenAt(n, publicA))
	b := vnetSocket(t, fastConfig(), listenAt(n, publicB))
	spec := newPairSpec(t)
	impostor, _ := NewCertificate()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The acceptor never sees the dialer's refusal as an accepted
	// connection; it gives up with its own, shorter deadline.
	bctx, bcancel := context.WithTimeout(ctx, time.Second)
	defer bcancel()
	errc := make(chan error, 1)
	go func() {
		_, err := b.Connect(bctx, Peer{Role: RoleAcceptor, Key: spec.key, Certificate: impostor, PeerFingerprint: spec.certA.Fingerprint, Candidates: []netip.AddrPort{publicA}})
		errc <- err
	}()
	_, err := a.Connect(ctx, Peer{Role: RoleDialer, Key: spec.key, Certificate: spec.certA, PeerFingerprint: spec.certB.Fingerprint, Candidates: []netip.AddrPort{publicB}})
	if !errors.Is(err, ErrPeerCertificate) {
		t.Fatalf("dialer: err = %v, want ErrPeerCertificate", err)
	}
	if err := <-errc; err == nil {
		t.Fatal("acceptor completed a handshake the dialer rejected")
	}
}

func withBind(cfg Config, n *vnet.Network, a netip.AddrPort) Config {
	cfg.Bind = func() (PacketConn, error) { return n.Listen(a) }
	return cfg
}
