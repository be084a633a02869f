package mailbox

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"ferry/transport"
)

// drainServer is ServeAll with a relay and WithDrain on a fresh loopback
// port: stop starts the drain, done reports ServeAll's return.
type drainServer struct {
	addr  string
	stop  context.CancelFunc
	hurry context.CancelFunc
	done  chan error
}

func startDrainServer(t *testing.T, drain time.Duration) *drainServer {
	t.Helper()
	ln, pc, err := Listen("127.0.0.1:0")
	must(t, err)
	relay := transport.NewRelayServer(transport.RelayConfig{Logger: quietLogger()})
	t.Cleanup(func() { relay.Close() })
	s := NewServer(ServerConfig{Logger: quietLogger()})
	ctx, stop := context.WithCancel(context.Background())
	hurry, hurryNow := context.WithCancel(context.Background())
	ds := &drainServer{addr: ln.Addr().String(), stop: stop, hurry: hurryNow, done: make(chan error, 1)}
	go func() { ds.done <- s.ServeAll(ctx, ln, pc, WithRelayServer(relay), WithDrain(drain, hurry)) }()
	t.Cleanup(func() {
		stop()
		hurryNow()
		ds.wait(t)
	})
	return ds
}

// wait waits for ServeAll to return nil.
func (ds *drainServer) wait(t *testing.T) {
	t.Helper()
	select {
	case err := <-ds.done:
		if err != nil {
			t.Errorf("ServeAll = %v", err)
		}
		ds.done <- nil // for the next wait, from t.Cleanup
	case <-time.After(testTimeout):
		t.Fatal("ServeAll did not return")
	}
}

// running reports whether ServeAll has not returned yet.
func (ds *drainServer) running() bool {
	select {
	case err := <-ds.done:
		ds.done <- err
		return false
	default:
		return true
	}
}

// expectDraining checks that err is the drain's: ErrServerDraining,
// retryable, and the end of the connection.
func expectDraining(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrServerDraining) || !Retryable(err) || !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v, want ErrServerDraining, retryable, ErrClosed", err)
	}
}

// expectConnClosed reads c until the server closes it.
func expectConnClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(testTimeout))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("connection still open")
	}
}

// TestDrainLetsRelaySessionsFinish: when the drain starts, a mailbox
// client mid-pairing is told to go elsewhere (a retryable error), new
// connections are refused, and a relay session in progress carries on
// until it ends by itself; then ServeAll returns.
func TestDrainLetsRelaySessionsFinish(t *testing.T) {
	ds := startDrainServer(t, time.Hour)
	ctx := testCtx(t)
	rp := pairRelayClients(t, ds.addr, 1)
	c := dial(t, ds.addr)
	np, err := c.Allocate(ctx)
	must(t, err)
	must(t, c.Claim(ctx, np))

	ds.stop()
	_, err = c.Receive(ctx, "pake")
	expectDraining(t, err)
	if nc, err := net.DialTimeout("tcp", ds.addr, testTimeout); err == nil {
		nc.Close()
		t.Fatal("a new connection was accepted during the drain")
	}

	rp.exchange(t)
	if !ds.running() {
		t.Fatal("ServeAll returned with a relay session in progress")
	}
	rp.a.Close()
	expectConnClosed(t, rp.b)
	ds.wait(t)
}

// TestDrainCutsRelaySessions: a relay session that outlasts the drain's
// timeout, or a hurried drain (a second signal), is closed then.
func TestDrainCutsRelaySessions(t *testing.T) {
	for _, tc := range []struct {
		name  string
		drain time.Duration
		hurry bool
	}{
		{"deadline", time.Millisecond, false},
		{"hurry", time.Hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := startDrainServer(t, tc.drain)
			rp := pairRelayClients(t, ds.addr, 1)
			rp.exchange(t)
			ds.stop()
			if tc.hurry {
				ds.hurry()
			}
			expectConnClosed(t, rp.a)
			expectConnClosed(t, rp.b)
			ds.wait(t)
		})
	}
}

// TestDrainErrorInPlaceOfWelcome: a client connected but not yet welcomed
// when the drain starts is told so in place of welcome.
func TestDrainErrorInPlaceOfWelcome(t *testing.T) {
	ts := startServer(t, ServerConfig{})
	nc, err := net.DialTimeout("tcp", ts.addr, testTimeout)
	must(t, err)
	defer nc.Close()
	waitFor(t, "the server to hold the connection", func() bool {
		ts.s.mu.Lock()
		defer ts.s.mu.Unlock()
		return len(ts.s.conns) == 1
	})
	ts.s.beginStop(ErrServerDraining) // Drain's first half: the clients are told
	_, err = handshake(testCtx(t), nc, "0123456789abcdef")
	if !errors.Is(err, ErrServerDraining) || !Retryable(err) {
		t.Fatalf("handshake = %v, want ErrServerDraining", err)
	}
	nc.Close()
	must(t, ts.s.awaitConns(testCtx(t)))
}

// TestDrainHandsPairingOver: two servers share a store; when one drains,
// its client, told to go elsewhere, reconnects to the other under its side,
// claims again and carries its pairing on: the drain left its place in the
// store.
func TestDrainHandsPairingOver(t *testing.T) {
	store := NewMemStore()
	draining, staying := startServer(t, ServerConfig{Store: store}), startServer(t, ServerConfig{Store: store})
	ctx := testCtx(t)
	a, b := checkPairing(t, draining.addr, staying.addr)
	np := draining.s.heldNameplate(t)

	must(t, draining.s.Drain(ctx))
	_, err := a.Receive(ctx, "more")
	expectDraining(t, err)

	a2, err := DialSide(ctx, staying.addr, a.Side())
	must(t, err)
	t.Cleanup(a2.shutdown)
	must(t, a2.Claim(ctx, np))
	must(t, b.Add(ctx, "more", []byte("B")))
	expectMsg(t, a2, "more", "B")
	must(t, a2.Close(ctx, Happy))
	must(t, b.Close(ctx, Happy))
	if n, m := store.Len(); n != 0 || m != 0 {
		t.Fatalf("store holds %d nameplates and %d mailboxes after both closed", n, m)
	}
	if st := draining.s.Stats(); st.PairingsFailed[FailServerStopped] != 1 {
		t.Fatalf("draining server's stats %+v, want the pairing counted as server_stopped", st)
	}
}

// heldNameplate returns the one nameplate the server's connections hold.
func (s *Server) heldNameplate(t *testing.T) string {
	t.Helper()
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	for np := range s.stats.nameplates {
		if len(s.stats.nameplates) == 1 {
			return np
		}
	}
	t.Fatalf("%d nameplates held, want 1", len(s.stats.nameplates))
	return ""
}
