package transport

import (
	"context"
	"crypto/rand"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ferry/internal/vnet"
)

// Tests that play the attacker: an observer who records the control packets
// of a pairing and replays them, and a flood of spoofed sources. Each checks
// both that the attack fails and that the real peers connect anyway.

var attackerAddr = netip.MustParseAddrPort("198.18.0.66:666")

// replayAll sends every recorded packet from the attacker's address to
// where it was first sent, each followed by a QUIC Initial of junk: the
// attack of the transport-hardening issue.
func replayAll(n *vnet.Network, recorded []sentDatagram) {
	initial := make([]byte, 1200)
	for _, r := range recorded {
		n.Inject(attackerAddr, r.to, r.b)
		_, _ = rand.Read(initial)
		initial[0] = 0xc0                                           // long header, Initial
		initial[1], initial[2], initial[3], initial[4] = 0, 0, 0, 1 // QUIC v1
		initial[5] = 8
		n.Inject(attackerAddr, r.to, initial)
	}
}

// replayer runs replayAll over and over until stopped.
func replayer(n *vnet.Network, recorded []sentDatagram) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			replayAll(n, recorded)
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond): // pacing, not synchronisation
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// TestReplayedPacketsCannotHijackConnect records every control packet of one
// connection of a pairing, then replays them all from a third address,
// with junk QUIC Initials, during a reconnect of the same pairing on the
// same sockets and during a fresh connect of it from new sockets: the path
// never goes to the attacker and the connect completes.
func TestReplayedPacketsCannotHijackConnect(t *testing.T) {
	n := newNet(t)
	recA := recordControl(t, n, publicA.Addr())
	recB := recordControl(t, n, publicB.Addr())
	a := vnetSocket(t, fastConfig(), listenAt(n, publicA))
	b := vnetSocket(t, fastConfig(), listenAt(n, publicB))
	spec := newPairSpec(t)
	candA, candB := []netip.AddrPort{publicA}, []netip.AddrPort{publicB}

	ra, rb := connectBoth(t, a, b, spec, candA, candB, nil)
	if ra.err != nil || rb.err != nil {
		t.Fatalf("first connect: %v / %v", ra.err, rb.err)
	}
	roundTrip(t, ra.c, rb.c, 64<<10)
	roundTrip(t, rb.c, ra.c, 64<<10)
	ra.c.Close()
	rb.c.Close()
	recorded := append(recA.control(), recB.control()...)
	if len(recorded) < 4 {
		t.Fatalf("recorded only %d control packets", len(recorded))
	}

	check := func(t *testing.T, ra, rb connectResult) {
		t.Helper()
		if ra.err != nil || rb.err != nil {
			t.Fatalf("connect under replay: dialer %v, acceptor %v", ra.err, rb.err)
		}
		if pa, pb := ra.c.Path(), rb.c.Path(); pa.Remote != publicB || pb.Remote != publicA || pa.Seq != 1 || pb.Seq != 1 {
			t.Fatalf("paths under replay: dialer %+v, acceptor %+v", pa, pb)
		}
		roundTrip(t, ra.c, rb.c, 64<<10)
		roundTrip(t, rb.c, ra.c, 64<<10)
	}

	t.Run("reconnect on the same sockets", func(t *testing.T) {
		var stop func()
		ra, rb := connectBoth(t, a, b, spec, candA, candB, func() {
			replayAll(n, recorded) // all of it reaches the waiting acceptor first
			stop = replayer(n, recorded)
		})
		stop()
		check(t, ra, rb)
		ra.c.Close()
		rb.c.Close()
	})
	t.Run("fresh connect from new sockets", func(t *testing.T) {
		a.Close()
		b.Close()
		a2 := vnetSocket(t, fastConfig(), listenAt(n, publicA))
		b2 := vnetSocket(t, fastConfig(), listenAt(n, publicB))
		var stop func()
		ra, rb := connectBoth(t, a2, b2, spec, candA, candB, func() {
			replayAll(n, recorded)
			stop = replayer(n, recorded)
		})
		stop()
		check(t, ra, rb)
	})
}

// spoofSources is how many spoofed source addresses the flood tests use.
const spoofSources = 5000

// spoofedAddr is the i-th spoofed source: 198.18.128.0/17, never a peer.
func spoofedAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(128 + i/250), byte(i % 250)}), uint16(1000+i))
}

// byteCounter counts, through a tap, the bytes each direction between a host
// and the spoofed range carried.
type byteCounter struct {
	toSpoofed, fromSpoofed atomic.Int64
	delivered              atomic.Int64 // packets from the spoofed range not dropped
}

func countSpoofedBytes(t testing.TB, n *vnet.Network, host netip.Addr) *byteCounter {
	bc := &byteCounter{}
	spoofed := netip.MustParsePrefix("198.18.128.0/17")
	t.Cleanup(n.Tap(func(p vnet.PacketInfo) {
		switch {
		case p.Src.Addr() == host && spoofed.Contains(p.Dst.Addr()):
			bc.toSpoofed.Add(int64(p.Len))
		case p.Dst.Addr() == host && spoofed.Contains(p.Src.Addr()) && !p.Dropped:
			bc.fromSpoofed.Add(int64(p.Len))
			bc.delivered.Add(1)
		}
	}))
	return bc
}

// endpointSize reports the sizes of everything an endpoint keeps per address.
func endpointSize(e *endpoint) (peers, candidates, proven, routed, budget, pings, validations int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.attempt.peers), len(e.attempt.candidates), len(e.attempt.proven),
		e.s.router.addrsOf(e.tag), len(e.budget.credit), len(e.pings), len(e.validations)
}

// TestSpoofedFloodStaysBounded floods an endpoint from thousands of spoofed
// sources, first while it connects (HELLOs and PROBEs recorded from an
// earlier attempt of the same pairing), then once it is established
// (replayed control packets and QUIC packets carrying its router tag). The
// endpoint's per-address state stays within its caps, it never sends the
// spoofed range more bytes than it received from it, and the peers connect
// and carry data.
func TestSpoofedFloodStaysBounded(t *testing.T) {
	n := newNet(t)
	recA := recordControl(t, n, publicA.Addr())
	a := vnetSocket(t, fastConfig(), listenAt(n, publicA))
	b := vnetSocket(t, fastConfig(), listenAt(n, publicB))
	spec := newPairSpec(t)
	ra, rb := connectBoth(t, a, b, spec, []netip.AddrPort{publicA}, []netip.AddrPort{publicB}, nil)
	if ra.err != nil || rb.err != nil {
		t.Fatalf("first connect: %v / %v", ra.err, rb.err)
	}
	ra.c.Close()
	rb.c.Close()
	recorded := recA.control()
	bytesB := countSpoofedBytes(t, n, publicB.Addr())

	checkBounds := func(when string, e *endpoint) {
		t.Helper()
		peers, cands, proven, routed, budget, pings, vals := endpointSize(e)
		if peers > maxPeerAttempts || cands > MaxPeerCandidates || proven > maxAddrsPerEndpoint ||
			routed > maxAddrsPerEndpoint || budget > maxBudgetAddrs || pings > maxPings || vals > 3*maxPassiveValidations {
			t.Fatalf("%s: peer nonces %d, candidates %d, proven %d, routed addresses %d, budget entries %d, pings %d, validations %d: over their caps",
				when, peers, cands, proven, routed, budget, pings, vals)
		}
		to, from := bytesB.toSpoofed.Load(), bytesB.fromSpoofed.Load()
		if to > from {
			t.Fatalf("%s: sent %d bytes to spoofed sources that sent %d", when, to, from)
		}
		t.Logf("%s: %d bytes from the spoofed sources, %d sent back; peer nonces %d, candidates %d, proven %d, routed %d, budget entries %d, pings %d, validations %d",
			when, from, to, peers, cands, proven, routed, budget, pings, vals)
	}

	// The acceptor waits for its dialer; the flood arrives first.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	bc := make(chan connectResult, 1)
	go func() {
		c, err := b.Connect(ctx, Peer{Role: RoleAcceptor, Key: spec.key, Certificate: spec.certB, PeerFingerprint: spec.certA.Fingerprint, Candidates: []netip.AddrPort{publicA}})
		bc <- connectResult{c, err}
	}()
	var eb *endpoint
	waitFor(t, "the acceptor's endpoint", func() bool {
		for _, e := range b.router.endpoints() {
			eb = e
		}
		return eb != nil
	})
	unknown := b.unknownIn.Load()
	for i := range spoofSources {
		r := recorded[i%len(recorded)]
		n.Inject(spoofedAddr(i), publicB, r.b)
	}
	waitFor(t, "the flood to be handled", func() bool {
		return eb.counters.controlDropped.Load()+eb.counters.controlIn.Load()+b.unknownIn.Load()-unknown >= uint64(bytesB.delivered.Load())
	})
	if d := bytesB.delivered.Load(); d < spoofSources/2 {
		t.Fatalf("only %d of %d spoofed packets reached the socket", d, spoofSources)
	}
	checkBounds("connecting", eb)
	if _, _, proven, _, _, _, _ := endpointSize(eb); proven != 0 {
		t.Fatalf("%d spoofed addresses proven", proven)
	}

	ca, err := a.Connect(ctx, Peer{Role: RoleDialer, Key: spec.key, Certificate: spec.certA, PeerFingerprint: spec.certB.Fingerprint, Candidates: []netip.AddrPort{publicB}})
	if err != nil {
		t.Fatalf("dialer after the flood: %v", err)
	}
	defer ca.Close()
	r := <-bc
	if r.err != nil {
		t.Fatalf("acceptor after the flood: %v", r.err)
	}
	defer r.c.Close()
	if p := r.c.Path(); p.Remote != publicA {
		t.Fatalf("acceptor's path %+v", p)
	}

	// Established: replay this connection's packets and spoof QUIC packets
	// with the endpoint's tag, each from its own source.
	live := recA.control()[len(recorded):]
	fake := make([]byte, 60)
	fake[0] = 0x40
	fake[1], fake[2], fake[3], fake[4] = byte(eb.tag>>24), byte(eb.tag>>16), byte(eb.tag>>8), byte(eb.tag)
	handled := func() int64 {
		return int64(eb.counters.quicIn.Load() + eb.counters.controlDropped.Load() + eb.counters.controlIn.Load() + b.unknownIn.Load())
	}
	handledBefore, deliveredBefore := handled(), bytesB.delivered.Load()
	for i := range spoofSources {
		if len(live) > 0 && i%2 == 0 {
			n.Inject(spoofedAddr(i), publicB, live[i%len(live)].b)
		} else {
			n.Inject(spoofedAddr(i), publicB, fake)
		}
	}
	waitFor(t, "the spoofed packets to be handled", func() bool {
		return handled()-handledBefore >= bytesB.delivered.Load()-deliveredBefore
	})
	if d := bytesB.delivered.Load() - deliveredBefore; d < spoofSources/2 {
		t.Fatalf("only %d of %d spoofed packets reached the socket", d, spoofSources)
	}
	checkBounds("established", eb)
	roundTrip(t, ca, r.c, 256<<10)
	if p := r.c.Path(); p.Remote != publicA || p.Seq != 1 {
		t.Fatalf("acceptor's path moved: %+v", p)
	}
}

// TestSpoofedTagsDoNotLockOutRebind keeps every validation slot that QUIC
// packets may start filled with spoofed packets carrying the endpoint's
// router tag, while the real peer's NAT gives it a new public port: the
// peer's authenticated packets from its new address still move the path.
func TestSpoofedTagsDoNotLockOutRebind(t *testing.T) {
	n := newNet(t)
	nat := n.NewNAT(netip.MustParseAddr("198.18.1.1"), vnet.NATOptions{Kind: vnet.PortRestrictedCone})
	private := netip.MustParseAddrPort("10.0.0.2:5000")
	mover := vnetSocket(t, fastConfig(), behind(nat, private))
	fixed := vnetSocket(t, fastConfig(), listenAt(n, publicA))
	cm, cf := connectPair(t, mover, fixed, nil, []netip.AddrPort{publicA})
	before := cf.Path().Remote
	sub, stop := cf.SubscribePath()
	defer stop()

	// A steady stream of spoofed, tagged QUIC packets from ever new sources,
	// more than enough to hold every slot QUIC packets can take.
	tag := cf.ep.tag
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		fake := make([]byte, 200)
		fake[0] = 0x40
		fake[1], fake[2], fake[3], fake[4] = byte(tag>>24), byte(tag>>16), byte(tag>>8), byte(tag)
		for i := 0; ; i++ {
			for j := range 2 * maxPassiveValidations {
				n.Inject(spoofedAddr((i*8+j)%spoofSources), publicA, fake)
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond): // pacing
			}
		}
	})
	defer func() { close(done); wg.Wait() }()
	waitFor(t, "the spoofed packets to hold the QUIC-triggered slots", func() bool {
		cf.ep.mu.Lock()
		defer cf.ep.mu.Unlock()
		held := 0
		for _, v := range cf.ep.validations {
			if v.trigger == triggerQUIC {
				held++
			}
		}
		return held == maxPassiveValidations
	})

	nat.Rebind()
	// The peer's traffic (QUIC acknowledgements and its keepalive PING)
	// now comes from a new public port.
	roundTrip(t, cf, cm, 64<<10)
	p := waitPath(t, sub, func(p PathInfo) bool { return p.Remote != before })
	after, _ := nat.Mapping(private, publicA)
	// Peer-moved by validation, or migrated when the fixed side's path
	// went silent first and its own PING to the new address was answered
	// (liveness.go): either proves the address with an authenticated
	// answer from it.
	if p.Remote != after || p.Reason != ReasonPeerMoved && p.Reason != ReasonMigrated {
		t.Fatalf("path %+v after the rebind, NAT mapping %v", p, after)
	}
	roundTrip(t, cm, cf, 64<<10)
}
