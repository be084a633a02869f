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
// the pin is refused with ErrPeerCertificate, whichever side it plays. The
// honest side's deadline is long: it must fail on the pin check, not time
// out.
func TestWrongCertificateIsRejected(t *testing.T) {
	for _, impostorRole := range []Role{RoleAcceptor, RoleDialer} {
		t.Run("impostor "+impostorRole.String(), func(t *testing.T) {
			n := newNet(t)
			a := vnetSocket(t, fastConfig(), listenAt(n, publicA))
			b := vnetSocket(t, fastConfig(), listenAt(n, publicB))
			spec := newPairSpec(t)
			impostor, _ := NewCertificate()
			dialerCert, acceptorCert := spec.certA, spec.certB
			if impostorRole == RoleDialer {
				dialerCert = impostor
			} else {
				acceptorCert = impostor
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			errc := make(chan error, 1)
			go func() {
				c, err := b.Connect(ctx, Peer{Role: RoleAcceptor, Key: spec.key, Certificate: acceptorCert, PeerFingerprint: spec.certA.Fingerprint, Candidates: []netip.AddrPort{publicA}})
				if c != nil {
					c.Close()
				}
				errc <- err
			}()
			c, dialErr := a.Connect(ctx, Peer{Role: RoleDialer, Key: spec.key, Certificate: dialerCert, PeerFingerprint: spec.certB.Fingerprint, Candidates: []netip.AddrPort{publicB}})
			if c != nil {
				defer c.Close()
			}
			if impostorRole == RoleAcceptor {
				// The honest dialer has decided; the impostor only learns
				// by its deadline.
				cancel()
			}
			acceptErr := <-errc
			honest, impostorErr := dialErr, acceptErr
			if impostorRole == RoleDialer {
				honest, impostorErr = acceptErr, dialErr
			}
			if !errors.Is(honest, ErrPeerCertificate) {
				t.Fatalf("honest side: err = %v, want ErrPeerCertificate", honest)
			}
			if impostorRole == RoleAcceptor && impostorErr == nil {
				t.Fatal("the impostor acceptor completed a handshake the dialer rejected")
			}
		})
	}
}

func withBind(cfg Config, n *vnet.Network, a netip.AddrPort) Config {
	cfg.Bind = func() (PacketConn, error) { return n.Listen(a) }
	return cfg
}
