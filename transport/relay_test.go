package transport

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"ferry/internal/vnet"
)

// startRelay runs a relay server on a loopback TCP port until the test ends
// and returns its address.
func startRelay(t testing.TB, cfg RelayConfig) string {
	t.Helper()
	addr, _, _ := startRelayAt(t, cfg, "127.0.0.1:0")
	return addr
}

// startRelayAt runs a relay server on addr and returns its address, a
// function that stops it (also called when the test ends) and the server.
func startRelayAt(t testing.TB, cfg RelayConfig, addr string) (string, func(), *RelayServer) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger()
	}
	srv := NewRelayServer(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { srv.ServeConn(ctx, c) })
		}
	})
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			ln.Close()
			srv.Close()
			wg.Wait()
		})
	}
	t.Cleanup(stop)
	return ln.Addr().String(), stop, srv
}

// relayPeers are two sockets on the in-memory network whose direct UDP
// link starts down, and the relay both may use (real TCP on loopback).
type relayPeers struct {
	n     *vnet.Network
	a, b  *Socket
	relay string
}

func newRelayPeers(t *testing.T) *relayPeers {
	n := newNet(t)
	n.SetLink(publicA.Addr(), publicB.Addr(), vnet.Link{Down: true})
	return &relayPeers{
		n:     n,
		a:     vnetSocket(t, fastConfig(), listenAt(n, publicA)),
		b:     vnetSocket(t, fastConfig(), listenAt(n, publicB)),
		relay: startRelay(t, RelayConfig{}),
	}
}

// connect runs both sides' Connect with the given policy and the relay,
// for at most 10 s (1 s for DirectOnly, which is expected to fail).
func (rp *relayPeers) connect(t *testing.T, policy PathPolicy) (connectResult, connectResult) {
	t.Helper()
	spec := newPairSpec(t)
	timeout := 10 * time.Second
	if policy == DirectOnly {
		timeout = time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	bc := make(chan connectResult, 1)
	go func() {
		c, err := rp.b.Connect(ctx, Peer{Role: RoleAcceptor, Key: spec.key, Certificate: spec.certB, PeerFingerprint: spec.certA.Fingerprint,
			Candidates: []netip.AddrPort{publicA}, Relay: rp.relay, Paths: policy})
		bc <- connectResult{c, err}
	}()
	c, err := rp.a.Connect(ctx, Peer{Role: RoleDialer, Key: spec.key, Certificate: spec.certA, PeerFingerprint: spec.certB.Fingerprint,
		Candidates: []netip.AddrPort{publicB}, Relay: rp.relay, Paths: policy})
	ra, rb := connectResult{c, err}, <-bc
	for _, r := range []connectResult{ra, rb} {
		if r.c != nil {
			t.Cleanup(func() { r.c.Close() })
		}
	}
	return ra, rb
}

// connectSubscribed connects with any path and subscribes to both sides'
// path changes until the test ends.
func (rp *relayPeers) connectSubscribed(t *testing.T) (ra, rb connectResult, subA, subB <-chan PathInfo) {
	t.Helper()
	ra, rb = rp.connect(t, AnyPath)
	if ra.err != nil || rb.err != nil {
		t.Fatalf("connect: dialer %v, acceptor %v", ra.err, rb.err)
	}
	subA, stopA := ra.c.SubscribePath()
	t.Cleanup(stopA)
	subB, stopB := rb.c.SubscribePath()
	t.Cleanup(stopB)
	return ra, rb, subA, subB
}

// TestRelayCarriesConnectionWithoutDirectPath: with the direct link down,
// both sides connect through the relay and move data both ways.
func TestRelayCarriesConnectionWithoutDirectPath(t *testing.T) {
	rp := newRelayPeers(t)
	ra, rb := rp.connect(t, AnyPath)
	if ra.err != nil || rb.err != nil {
		t.Fatalf("connect: dialer %v, acceptor %v", ra.err, rb.err)
	}
	for side, c := range map[string]*Conn{"dialer": ra.c, "acceptor": rb.c} {
		if p := c.Path(); p.Kind != PathRelay || p.RemoteType != CandidateRelay {
			t.Fatalf("%s's path %+v, want the relay", side, p)
		}
	}
	roundTrip(t, ra.c, rb.c, 1<<20)
	roundTrip(t, rb.c, ra.c, 1<<20)
}

// TestRelayUpgradesToDirectMidStream: a connection that came up through the
// relay moves to the direct path when it comes up, in the middle of a
// stream that is held until both sides have moved; the second half crosses
// the direct path.
func TestRelayUpgradesToDirectMidStream(t *testing.T) {
	rp := newRelayPeers(t)
	ra, rb, subA, subB := rp.connectSubscribed(t)
	var mu sync.Mutex
	direct := 0
	t.Cleanup(rp.n.Tap(func(p vnet.PacketInfo) {
		if !p.Dropped && p.Src == publicA && p.Dst == publicB {
			mu.Lock()
			direct += p.Len
			mu.Unlock()
		}
	}))
	const size = 4 << 20
	streamInHalves(t, ra.c, rb.c, size, func() {
		rp.n.SetLink(publicA.Addr(), publicB.Addr(), vnet.Link{})
		upgraded := func(p PathInfo) bool { return p.Kind == PathDirectUDP && p.Reason == ReasonUpgraded }
		pa := waitPath(t, subA, upgraded)
		pb := waitPath(t, subB, upgraded)
		if pa.Remote != publicB || pb.Remote != publicA {
			t.Fatalf("upgraded paths: dialer %+v, acceptor %+v", pa, pb)
		}
	})
	mu.Lock()
	got := direct
	mu.Unlock()
	if got < size/2 {
		t.Fatalf("%d bytes crossed the direct path, want at least the second half (%d)", got, size/2)
	}
	roundTrip(t, rb.c, ra.c, 256<<10)
}

// TestRelayOnlyAndDirectOnly: --relay-only stays on the relay although the
// direct link works; --no-relay fails without a direct path, with the
// relay there.
func TestRelayOnlyAndDirectOnly(t *testing.T) {
	t.Run("relay only", func(t *testing.T) {
		rp := newRelayPeers(t)
		rp.n.SetLink(publicA.Addr(), publicB.Addr(), vnet.Link{})
		ra, rb := rp.connect(t, RelayOnly)
		if ra.err != nil || rb.err != nil {
			t.Fatalf("connect: dialer %v, acceptor %v", ra.err, rb.err)
		}
		roundTrip(t, ra.c, rb.c, 256<<10)
		for side, c := range map[string]*Conn{"dialer": ra.c, "acceptor": rb.c} {
			if p := c.Path(); p.Kind != PathRelay || p.Seq != 1 {
				t.Fatalf("%s's path %+v, want the relay only", side, p)
			}
		}
	})
	t.Run("direct only", func(t *testing.T) {
		rp := newRelayPeers(t)
		ra, rb := rp.connect(t, DirectOnly)
		if !errors.Is(ra.err, ErrNoPath) || rb.err == nil {
			t.Fatalf("connect without a direct path: dialer %v, acceptor %v; want ErrNoPath", ra.err, rb.err)
		}
	})
}

// TestRelayRefusalIsExplained: a server that does not relay makes a
// relay-only connection fail at once with ErrNoPath and the reason.
func TestRelayRefusalIsExplained(t *testing.T) {
	rp := newRelayPeers(t)
	rp.relay = startRelay(t, RelayConfig{Disabled: true})
	ra, rb := rp.connect(t, RelayOnly)
	var refused *RelayRefusedError
	for side, err := range map[string]error{"dialer": ra.err, "acceptor": rb.err} {
		if !errors.Is(err, ErrNoPath) || !errors.As(err, &refused) || refused.Status != RelayDisabled {
			t.Fatalf("%s: err = %v, want ErrNoPath because the server does not relay", side, err)
		}
	}
}

// TestRelayRestartMidStream stops the relay server carrying a connection in
// the middle of a stream and starts a new one on the same address: both
// sides join it again and the stream completes, byte-exact, on the same
// connection.
func TestRelayRestartMidStream(t *testing.T) {
	rp := newRelayPeers(t)
	addr, stop, _ := startRelayAt(t, RelayConfig{Logger: testLogger()}, "127.0.0.1:0")
	rp.relay = addr
	ra, rb, subA, subB := rp.connectSubscribed(t)
	streamInHalves(t, ra.c, rb.c, 4<<20, func() {
		stop()
		startRelayAt(t, RelayConfig{Logger: testLogger()}, addr)
		rejoined := func(p PathInfo) bool { return p.Kind == PathRelay && p.Reason == ReasonRelayRejoined }
		waitPath(t, subA, rejoined)
		waitPath(t, subB, rejoined)
	})
	roundTrip(t, rb.c, ra.c, 256<<10)
	if ra.c.Context().Err() != nil || rb.c.Context().Err() != nil {
		t.Fatal("the connection did not survive the relay's restart")
	}
}

// TestReconnectRetriesUntilThePeerComes: a relay-only reconnect whose peer
// is not there fails each try as the relay gives up waiting, and
// Reconnect tries again until the peer does come.
func TestReconnectRetriesUntilThePeerComes(t *testing.T) {
	rp := newRelayPeers(t)
	addr, _, srv := startRelayAt(t, RelayConfig{Logger: testLogger(), PairTimeout: 100 * time.Millisecond}, "127.0.0.1:0")
	spec := newPairSpec(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dc := make(chan connectResult, 1)
	go func() {
		c, err := rp.a.Reconnect(ctx, Peer{Role: RoleDialer, Key: spec.key, Certificate: spec.certA, PeerFingerprint: spec.certB.Fingerprint, Relay: addr, Paths: RelayOnly})
		dc <- connectResult{c, err}
	}()
	waitFor(t, "two tries to time out at the relay", func() bool { return srv.Stats().Refused[RelayTimeout] >= 2 })
	cb, err := rp.b.Reconnect(ctx, Peer{Role: RoleAcceptor, Key: spec.key, Certificate: spec.certB, PeerFingerprint: spec.certA.Fingerprint, Relay: addr, Paths: RelayOnly})
	if err != nil {
		t.Fatalf("acceptor: %v", err)
	}
	defer cb.Close()
	r := <-dc
	if r.err != nil {
		t.Fatalf("dialer: %v", r.err)
	}
	defer r.c.Close()
	roundTrip(t, r.c, cb, 64<<10)
}
