package transport

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"io"
	"net/netip"
	"sync"
	"testing"
	"time"

	"ferry/internal/vnet"
)

var (
	publicA = netip.MustParseAddrPort("198.18.0.1:4000")
	publicB = netip.MustParseAddrPort("198.18.0.2:4000")
)

// binder returns a Config.Bind that hands out the given conns in order, one
// per call (the first socket, then one per rebind).
func binder(t testing.TB, open ...func() (*vnet.Conn, error)) func() (PacketConn, error) {
	var mu sync.Mutex
	return func() (PacketConn, error) {
		mu.Lock()
		defer mu.Unlock()
		if len(open) == 0 {
			t.Error("binder: no more conns")
			return nil, io.EOF
		}
		c, err := open[0]()
		open = open[1:]
		return c, err
	}
}

func vnetSocket(t testing.TB, cfg Config, open ...func() (*vnet.Conn, error)) *Socket {
	t.Helper()
	cfg.Bind = binder(t, open...)
	s, err := NewSocket(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newNet(t testing.TB) *vnet.Network {
	n := vnet.New(vnet.Options{Seed: 1})
	t.Cleanup(func() { n.Close() })
	return n
}

func listenAt(n *vnet.Network, a netip.AddrPort) func() (*vnet.Conn, error) {
	return func() (*vnet.Conn, error) { return n.Listen(a) }
}

func behind(nat *vnet.NAT, a netip.AddrPort) func() (*vnet.Conn, error) {
	return func() (*vnet.Conn, error) { return nat.Listen(a) }
}

// TestPassiveMigrationMidStream rebinds the NAT in front of one peer half
// way through a transfer: the other peer sees packets with a valid CID (or
// an authenticated control packet) from a new address, validates it and
// moves; no byte is lost or duplicated. The sender holds the second half
// until the move is seen, and that half must cross the new path.
func TestPassiveMigrationMidStream(t *testing.T) {
	for _, tc := range []struct {
		name       string
		moverRole  Role
		moverSends bool
	}{
		{"dialer moves while sending", RoleDialer, true},
		{"acceptor moves while receiving", RoleAcceptor, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNet(t)
			nat := n.NewNAT(netip.MustParseAddr("198.18.1.1"), vnet.NATOptions{Kind: vnet.PortRestrictedCone})
			private := netip.MustParseAddrPort("10.0.0.2:5000")
			mover := vnetSocket(t, fastConfig(), behind(nat, private))
			fixed := vnetSocket(t, fastConfig(), listenAt(n, publicA))

			var cm, cf *Conn
			// The fixed peer knows no address for the mover: it learns the
			// NAT mapping from the mover's authenticated PINGs.
			if tc.moverRole == RoleDialer {
				cm, cf = connectPair(t, mover, fixed, nil, []netip.AddrPort{publicA})
			} else {
				cf, cm = connectPair(t, fixed, mover, []netip.AddrPort{publicA}, nil)
			}
			before, ok := nat.Mapping(private, publicA)
			if !ok || cf.Path().Remote != before {
				t.Fatalf("fixed peer's path %v, NAT mapping %v", cf.Path().Remote, before)
			}
			sub, stop := cf.SubscribePath()
			defer stop()
			// Bytes each way between the fixed peer and each public address.
			var mu sync.Mutex
			carried := map[[2]netip.AddrPort]int{}
			t.Cleanup(n.Tap(func(p vnet.PacketInfo) {
				if !p.Dropped {
					mu.Lock()
					carried[[2]netip.AddrPort{p.Src, p.Dst}] += p.Len
					mu.Unlock()
				}
			}))

			src, dst := cf, cm
			if tc.moverSends {
				src, dst = cm, cf
			}
			const size = 8 << 20
			streamInHalves(t, src, dst, size, func() {
				nat.Rebind()
				waitPath(t, sub, func(p PathInfo) bool { return p.Remote != before })
			})
			after, _ := nat.Mapping(private, publicA)
			p := cf.Path()
			if after == before || p.Remote != after || p.Reason != ReasonPeerMoved {
				t.Fatalf("after rebind: fixed peer's path %+v, NAT mapping %v (was %v)", p, after, before)
			}
			if s := cf.Stats(); s.PathChanges < 1 || s.ChallengesSent < 1 {
				t.Fatalf("stats %+v: want a path change after a challenge", s)
			}
			flow := [2]netip.AddrPort{publicA, after}
			if tc.moverSends {
				flow = [2]netip.AddrPort{after, publicA}
			}
			mu.Lock()
			onNew := carried[flow]
			mu.Unlock()
			if onNew < size/2 {
				t.Fatalf("%d bytes crossed the new path %v -> %v, want at least the second half (%d)", onNew, flow[0], flow[1], size/2)
			}
			// And the connection keeps working in the other direction.
			roundTrip(t, dst, src, 256<<10)
		})
	}
}

// TestSpoofedSourceDoesNotMovePath sends packets that carry the victim's
// valid CID, and replays of the peer's authenticated control packets
// (captured on the wire), from a third address. The attacker sees the
// challenge and answers it every way it can without the key; the path must
// not move.
func TestSpoofedSourceDoesNotMovePath(t *testing.T) {
	n := newNet(t)
	a := vnetSocket(t, fastConfig(), listenAt(n, publicA))
	recB := recordControl(t, n, publicB.Addr())
	b := vnetSocket(t, fastConfig(), listenAt(n, publicB))
	ca, cb := connectPair(t, a, b, []netip.AddrPort{publicA}, []netip.AddrPort{publicB})
	before := ca.Path()

	attackerAddr := netip.MustParseAddrPort("198.18.0.66:666")
	attacker, err := n.Listen(attackerAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	var wrongKey ControlKey
	_, _ = rand.Read(wrongKey.key[:])
	challenges := make(chan []byte, 16)
	go func() {
		buf := make([]byte, 2048)
		for {
			k, from, err := attacker.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			pkt := append([]byte(nil), buf[:k]...)
			if len(pkt) == 0 || ControlType(pkt[0]) != CtrlPathChallenge {
				continue
			}
			select {
			case challenges <- pkt:
			default:
			}
			// 1. Reflect the challenge back unchanged.
			attacker.WriteToUDPAddrPort(pkt, from)
			// 2. Turn it into a response by changing the type byte.
			resp := append([]byte(nil), pkt...)
			resp[0] = byte(CtrlPathResponse)
			attacker.WriteToUDPAddrPort(resp, from)
			// 3. A well-formed response with the right data, MAC'd without the real key.
			cp, _ := ParseControl(pkt)
			forged := AppendControl(nil, &ControlPacket{Type: CtrlPathResponse, Flags: FlagActivePath,
				Session: cp.Session, Counter: cp.Counter + 1000, Data: cp.Data}, &wrongKey)
			attacker.WriteToUDPAddrPort(forged, from)
		}
	}()

	// A QUIC short-header packet with a's own router tag in its DCID.
	fake := make([]byte, 60)
	fake[0] = 0x40
	fake[1], fake[2], fake[3], fake[4] = byte(ca.ep.tag>>24), byte(ca.ep.tag>>16), byte(ca.ep.tag>>8), byte(ca.ep.tag)
	n.Inject(attackerAddr, publicA, fake)
	select {
	case <-challenges:
	case <-time.After(5 * time.Second):
		t.Fatal("a QUIC packet with a valid CID from a new address drew no PATH_CHALLENGE")
	}
	waitFor(t, "the spoofed validation to fail", func() bool { return ca.Stats().ValidationsFailed >= 1 })
	if d := ca.Stats().ControlDropped; d < 3 {
		t.Fatalf("%d control packets dropped: the reflected, retyped and forged answers were not all refused", d)
	}

	// Every authenticated control packet b sent so far (its PROBEs, PINGs
	// and PONGs on the active path), replayed from the attacker's address
	// after the hold-down: each is refused as a replay and none draws a
	// challenge.
	replays := recB.control()
	if len(replays) == 0 {
		t.Fatal("recorded no control packet of b")
	}
	time.Sleep(fastConfig().HoldDown) // let the hold-down of the first attack end
	sent, dropped := ca.Stats().ChallengesSent, ca.Stats().ControlDropped
	for _, r := range replays {
		n.Inject(attackerAddr, publicA, r.b)
	}
	waitFor(t, "the replays to be refused", func() bool {
		return ca.Stats().ControlDropped >= dropped+uint64(len(replays))
	})
	if s := ca.Stats(); s.ChallengesSent != sent {
		t.Fatalf("replayed packets drew %d challenges", s.ChallengesSent-sent)
	}

	after := ca.Path()
	if after.Remote != before.Remote || after.Seq != before.Seq {
		t.Fatalf("path moved: before %+v, after %+v", before, after)
	}
	roundTrip(t, cb, ca, 256<<10)
}

// waitFor polls cond until it holds, for at most 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLocalRebindMidStream moves the dialer from one network (Wi-Fi behind
// one NAT) to another (a phone hotspot behind another NAT) half way through
// a transfer, with the old network still up and with it gone.
func TestLocalRebindMidStream(t *testing.T) {
	for _, oldDies := range []bool{false, true} {
		name := "old network stays"
		if oldDies {
			name = "old network dies"
		}
		t.Run(name, func(t *testing.T) {
			n := newNet(t)
			wifi := n.NewNAT(netip.MustParseAddr("198.18.1.1"), vnet.NATOptions{Kind: vnet.PortRestrictedCone})
			lte := n.NewNAT(netip.MustParseAddr("198.18.2.1"), vnet.NATOptions{Kind: vnet.Symmetric})
			laptop := vnetSocket(t, fastConfig(),
				behind(wifi, netip.MustParseAddrPort("10.0.0.2:5000")),
				behind(lte, netip.MustParseAddrPort("10.1.0.7:6000")))
			server := vnetSocket(t, fastConfig(), listenAt(n, publicA))
			cl, cs := connectPair(t, laptop, server, nil, []netip.AddrPort{publicA})
			subL, stopL := cl.SubscribePath()
			defer stopL()
			subS, stopS := cs.SubscribePath()
			defer stopS()

			streamWithHook(t, cl, cs, 8<<20, func() {
				if oldDies {
					n.SetHostLink(wifi.Public(), vnet.Link{Down: true})
				}
				laptop.NetworkChanged()
			})
			pl := waitPath(t, subL, func(p PathInfo) bool { return p.Reason == ReasonRebound })
			if pl.Local.Addr() != netip.MustParseAddr("10.1.0.7") {
				t.Fatalf("laptop's new local address %v, want the hotspot's 10.1.0.7", pl.Local)
			}
			ps := waitPath(t, subS, func(p PathInfo) bool { return p.Remote.Addr() == lte.Public() })
			if ps.Reason != ReasonPeerMoved {
				t.Fatalf("server's path %+v, want peer-moved to the hotspot NAT", ps)
			}
			waitFor(t, "the old socket to close", func() bool {
				laptop.mu.Lock()
				defer laptop.mu.Unlock()
				return len(laptop.carriers) == 1
			})
			roundTrip(t, cs, cl, 256<<10)
		})
	}
}

// TestKeepaliveHoldsNATMapping leaves a connection idle for several NAT
// mapping lifetimes and more than a QUIC idle timeout: ferry's keepalives
// hold both open, so the path never changes. The control run turns ferry's
// keepalive off (an hour apart) and leaves only quic-go's own, which runs
// at a third of the idle timeout, slower than the NAT forgets: the mapping
// expires, so it is ferry's keepalive that holds it.
func TestKeepaliveHoldsNATMapping(t *testing.T) {
	for _, tc := range []struct {
		name      string
		keepalive time.Duration
		holds     bool
	}{
		{"ferry keepalive inside NAT timeout", 100 * time.Millisecond, true},
		{"quic-go keepalive alone", time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNet(t)
			nat := n.NewNAT(netip.MustParseAddr("198.18.1.1"), vnet.NATOptions{Kind: vnet.PortRestrictedCone, MappingTimeout: 400 * time.Millisecond})
			private := netip.MustParseAddrPort("10.0.0.2:5000")
			cfg := fastConfig()
			// quic-go's keepalive: 1.5 s / 3 = 500 ms, over the NAT's 400 ms.
			cfg.KeepAlive, cfg.IdleTimeout = tc.keepalive, 1500*time.Millisecond
			client := vnetSocket(t, cfg, behind(nat, private))
			server := vnetSocket(t, cfg, listenAt(n, publicA))
			cc, cs := connectPair(t, client, server, nil, []netip.AddrPort{publicA})
			mapping, _ := nat.Mapping(private, publicA)
			seq := cs.Path().Seq

			// Idle for more than a QUIC idle timeout and 5 NAT mapping
			// lifetimes: the passing of time is what is under test.
			time.Sleep(2 * time.Second)

			now, ok := nat.Mapping(private, publicA)
			if tc.holds {
				if cc.Context().Err() != nil || cs.Context().Err() != nil {
					t.Fatal("idle connection closed despite keepalives")
				}
				if !ok || now != mapping || cs.Path().Seq != seq {
					t.Fatalf("mapping %v -> %v (live %v), path seq %d -> %d: keepalives did not hold the mapping", mapping, now, ok, seq, cs.Path().Seq)
				}
				roundTrip(t, cc, cs, 64<<10)
			} else if ok && now == mapping {
				t.Fatalf("control run: mapping %v survived 2 s idle with a 400 ms timeout and only quic-go's keepalive", now)
			}
		})
	}
}

// TestLossyLink moves data over a link with loss, delay, jitter and
// reordering; QUIC recovers everything, the control plane keeps working.
func TestLossyLink(t *testing.T) {
	n := newNet(t)
	n.SetLink(publicA.Addr(), publicB.Addr(), vnet.Link{Loss: 0.03, Delay: 5 * time.Millisecond, Jitter: 2 * time.Millisecond, Reorder: 0.03})
	a := vnetSocket(t, fastConfig(), listenAt(n, publicA))
	b := vnetSocket(t, fastConfig(), listenAt(n, publicB))
	ca, cb := connectPair(t, a, b, []netip.AddrPort{publicA}, []netip.AddrPort{publicB})
	roundTrip(t, ca, cb, 1<<20)
	roundTrip(t, cb, ca, 1<<20)
	if p := ca.Path(); p.Remote != publicB || p.Seq != 1 {
		t.Fatalf("path %+v changed on a lossy but stable link", p)
	}
}

// TestMalformedPacketsAreDropped throws garbage, truncated and forged packets
// of every class at a connected socket, many of them carrying the
// endpoint's valid router tag or session ID so that they get past the
// router to the endpoint: nothing crashes, each is counted where it was
// refused, and the path does not move.
func TestMalformedPacketsAreDropped(t *testing.T) {
	n := newNet(t)
	a := vnetSocket(t, fastConfig(), listenAt(n, publicA))
	b := vnetSocket(t, fastConfig(), listenAt(n, publicB))
	ca, cb := connectPair(t, a, b, []netip.AddrPort{publicA}, []netip.AddrPort{publicB})
	tag := binary.BigEndian.AppendUint32(nil, uint32(ca.ep.tag))
	session := ca.ep.established.keys.session
	var wrongKey ControlKey
	_, _ = rand.Read(wrongKey.key[:])

	// Refused by the socket before any endpoint: unknown classes, malformed
	// control packets, control packets for no session.
	unrouted := [][]byte{
		{}, {0x00}, {0xff}, {0x10, 0x20},
		[]byte("\x21FRY\x01" + string(make([]byte, 41))), // version 1
		[]byte("\x21FRY\x02" + string(make([]byte, 40))), // short
		AppendControl(nil, &ControlPacket{Type: CtrlPing, Session: SessionID{9}, Counter: 1}, &wrongKey),
	}
	for range 100 {
		j := make([]byte, 1+len(unrouted)%64)
		_, _ = rand.Read(j)
		j[0] = 0x02 + j[0]%0x1e // neither QUIC nor STUN nor control
		unrouted = append(unrouted, j)
	}
	// Reach the endpoint and are refused there: control packets naming its
	// session, forged, replayed or of another attempt.
	forged := [][]byte{
		AppendControl(nil, &ControlPacket{Type: CtrlPing, Session: session, Counter: 1 << 50}, &wrongKey),
		AppendControl(nil, &ControlPacket{Type: CtrlPathChallenge, Flags: FlagActivePath, Session: session, Counter: 1 << 51}, &wrongKey),
		AppendControl(nil, &ControlPacket{Type: CtrlProbe, Session: ca.ep.pairing.session, Counter: 9, Nonce: Nonce{1}, PeerNonce: ca.ep.attempt.nonce}, &wrongKey),
		AppendControl(nil, &ControlPacket{Type: CtrlProbe, Session: ca.ep.pairing.session, Counter: 9, Nonce: Nonce{1}, PeerNonce: Nonce{2}}, &wrongKey),
		AppendControl(nil, &ControlPacket{Type: CtrlHello, Session: ca.ep.pairing.session, Counter: 9, Nonce: Nonce{1}}, &wrongKey),
	}
	// Reach the endpoint's quic-go: QUIC packets with a valid tag, whose
	// contents quic-go cannot decrypt.
	var tagged [][]byte
	for i := range 40 {
		j := make([]byte, 1+cidLen+20+i)
		_, _ = rand.Read(j)
		j[0] = 0x40 | j[0]&0x3f // short header
		copy(j[1:], tag)
		tagged = append(tagged, j)
	}

	unknown, dropped, quicIn := a.unknownIn.Load(), ca.Stats().ControlDropped, ca.Stats().QUICPacketsIn
	junkSrc := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.MustParseAddr("198.18.0.9"), uint16(1000+i))
	}
	for i, j := range unrouted {
		n.Inject(junkSrc(i), publicA, j)
	}
	for i, j := range append(forged, tagged...) {
		n.Inject(junkSrc(i), publicA, j)
		// Junk from the peer's own address must not disturb the path either.
		n.Inject(publicB, publicA, j)
	}
	// The socket reads its datagrams in order: once a STUN message sent
	// after the junk reaches the STUN handler, all the junk was handled.
	sentinel := stunSentinel()
	seen := make(chan struct{})
	var once sync.Once
	a.SetSTUNHandler(func(msg []byte, _ netip.AddrPort) {
		if bytes.Equal(msg, sentinel) {
			once.Do(func() { close(seen) })
		}
	})
	n.Inject(junkSrc(0), publicA, sentinel)
	select {
	case <-seen:
	case <-time.After(10 * time.Second):
		t.Fatal("the socket never got to the packet sent after the junk")
	}

	if got := a.unknownIn.Load() - unknown; got < uint64(len(unrouted)) {
		t.Fatalf("%d datagrams refused unrouted, want at least %d", got, len(unrouted))
	}
	if got := ca.Stats().ControlDropped - dropped; got != uint64(2*len(forged)) {
		t.Fatalf("endpoint refused %d forged control packets, want %d", got, 2*len(forged))
	}
	if got := ca.Stats().QUICPacketsIn - quicIn; got < uint64(2*len(tagged)) {
		t.Fatalf("endpoint took %d QUIC packets, want at least the %d tagged junk packets", got, 2*len(tagged))
	}
	waitFor(t, "validations started by junk to end", func() bool { return ca.State() == StateEstablished })
	if p := ca.Path(); p.Remote != publicB || p.Seq != 1 {
		t.Fatalf("path %+v moved after junk", p)
	}
	roundTrip(t, cb, ca, 128<<10)
}

// stunSentinel is a STUN Binding success with a random transaction ID.
func stunSentinel() []byte {
	m := make([]byte, stunHeaderLen)
	m[0], m[1] = 0x01, 0x01
	binary.BigEndian.PutUint32(m[4:8], stunMagicCookie)
	_, _ = rand.Read(m[8:])
	return m
}
