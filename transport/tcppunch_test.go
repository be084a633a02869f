package transport

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// testGuard bounds every wait of these tests that should end long before
// it: a failure guard, never a synchronisation.
const testGuard = 20 * time.Second

// newTestPort opens a tcpPort on laddr, closed when t ends.
func newTestPort(t *testing.T, laddr string) *tcpPort {
	t.Helper()
	p, err := newTCPPort(context.Background(), laddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// testAuth is the tiny challenge exchange the tests authenticate with:
// each side sends a random challenge and answers the other's with
// HMAC-SHA256(key, its role || challenge), so a party without the key
// fails, and so does a connection to oneself (the answer carries the
// wrong role). The controlling side then nominates: it accepts only the
// first connection that passed and says so on it ('Y', else 'N'); the
// other side accepts a connection only on 'Y'. So both keep the same one.
type testAuth struct {
	key         []byte
	role        byte // 'A' or 'B'
	controlling bool

	mu       sync.Mutex
	chosen   bool
	rejected atomic.Int32 // connections refused for a wrong answer
}

var (
	errTestImpostor  = errors.New("wrong answer to the challenge")
	errTestNotChosen = errors.New("not the nominated connection")
)

func (a *testAuth) mac(role byte, challenge []byte) []byte {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte{role})
	m.Write(challenge)
	return m.Sum(nil)
}

func (a *testAuth) peerRole() byte {
	if a.role == 'A' {
		return 'B'
	}
	return 'A'
}

func (a *testAuth) auth(c net.Conn) error {
	mine := randBytes(16)
	if _, err := c.Write(mine); err != nil {
		return err
	}
	theirs := make([]byte, 16)
	if _, err := io.ReadFull(c, theirs); err != nil {
		return err
	}
	if _, err := c.Write(a.mac(a.role, theirs)); err != nil {
		return err
	}
	answer := make([]byte, sha256.Size)
	if _, err := io.ReadFull(c, answer); err != nil {
		return err
	}
	if !hmac.Equal(answer, a.mac(a.peerRole(), mine)) {
		a.rejected.Add(1)
		return errTestImpostor
	}
	if a.controlling {
		a.mu.Lock()
		first := !a.chosen
		a.chosen = true
		a.mu.Unlock()
		verdict := []byte{'N'}
		if first {
			verdict[0] = 'Y'
		}
		if _, err := c.Write(verdict); err != nil {
			return err
		}
		if !first {
			return errTestNotChosen
		}
		return nil
	}
	var verdict [1]byte
	if _, err := io.ReadFull(c, verdict[:]); err != nil {
		return err
	}
	if verdict[0] != 'Y' {
		return errTestNotChosen
	}
	return nil
}

// testAuthPair returns the two sides' auth for one pairing, A controlling.
func testAuthPair() (a, b *testAuth) {
	key := randBytes(32)
	return &testAuth{key: key, role: 'A', controlling: true}, &testAuth{key: key, role: 'B'}
}

// playImpostor runs the challenge exchange on c with a key that is not
// the pairing's and reports whether the other side then hung up on it.
func playImpostor(c net.Conn) bool {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testGuard))
	fake := &testAuth{key: randBytes(32), role: 'B'}
	if _, err := c.Write(randBytes(16)); err != nil {
		return false
	}
	theirs := make([]byte, 16)
	if _, err := io.ReadFull(c, theirs); err != nil {
		return false
	}
	if _, err := c.Write(fake.mac('B', theirs)); err != nil {
		return false
	}
	rest := make([]byte, sha256.Size+1) // their answer, then a verdict that never comes
	_, err := io.ReadFull(c, rest)
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// punchResult is one side's punchTCP outcome.
type punchResult struct {
	c    net.Conn
	how  string // "dialed" or "accepted"
	took time.Duration
	err  error
}

// punch runs punchTCPWith on port in the background, recording how the
// winner came, and returns where its result will arrive.
func punch(ctx context.Context, port *tcpPort, remotes []netip.AddrPort, auth func(net.Conn) error, dialFailed func(netip.AddrPort, error)) <-chan punchResult {
	ch := make(chan punchResult, 1)
	go func() {
		var how string
		hooks := &tcpPunchHooks{dialFailed: dialFailed, won: func(h string, _ net.Conn) { how = h }}
		start := time.Now()
		c, err := punchTCPWith(ctx, port, remotes, auth, hooks)
		ch <- punchResult{c: c, how: how, took: time.Since(start), err: err}
	}()
	return ch
}

// await returns a punch's result, failing t if none comes within testGuard.
func await(t *testing.T, ch <-chan punchResult, name string) punchResult {
	t.Helper()
	select {
	case r := <-ch:
		if r.c != nil {
			t.Cleanup(func() { r.c.Close() })
		}
		return r
	case <-time.After(testGuard):
		t.Fatalf("%s: punchTCP did not return", name)
	}
	panic("unreachable")
}

// sameConnection fails t unless a and b are the two ends of one TCP
// connection.
func sameConnection(t *testing.T, a, b net.Conn) {
	t.Helper()
	if a.LocalAddr().String() != b.RemoteAddr().String() || a.RemoteAddr().String() != b.LocalAddr().String() {
		t.Fatalf("not one connection: %v->%v and %v->%v", a.LocalAddr(), a.RemoteAddr(), b.LocalAddr(), b.RemoteAddr())
	}
}

// punchGoroutines lists the goroutines of punches and namespace dials.
func punchGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "transport.(*tcpPunch)") || strings.Contains(g, "transport.(*tcpNetns).dialInside") {
			found = append(found, g)
		}
	}
	return found
}

// noPunchGoroutines fails t if goroutines of a punch outlive it. punchTCP
// has waited for them all before returning; a goroutine that has just
// called wg.Done may still be on its way out, so it is given until
// testGuard to vanish.
func noPunchGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(testGuard)
	for {
		left := punchGoroutines()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d punch goroutines left:\n%s", len(left), strings.Join(left, "\n\n"))
		}
		runtime.Gosched()
	}
}

// TestPunchTCPLoopback punches between two ports on loopback, each
// dialing the other at once, five times on fresh ports: on Linux the
// crossing connects complete as one connection by simultaneous open, or
// one side's listener accepts the other's SYN first (and that side's own
// connect then finds the address pair taken and is retried until the
// punch ends); both count. Either way both sides hold the two ends of one
// connection, and datagrams cross it through tcpCarriers.
func TestPunchTCPLoopback(t *testing.T) {
	for round := range 5 {
		pa, pb := newTestPort(t, "127.0.0.1:0"), newTestPort(t, "127.0.0.1:0")
		authA, authB := testAuthPair()
		ctx, cancel := context.WithTimeout(context.Background(), testGuard)
		cha := punch(ctx, pa, []netip.AddrPort{pb.Addr()}, authA.auth, nil)
		chb := punch(ctx, pb, []netip.AddrPort{pa.Addr()}, authB.auth, nil)
		ra, rb := await(t, cha, "a"), await(t, chb, "b")
		cancel()
		if ra.err != nil || rb.err != nil {
			t.Fatalf("round %d: a: %v, b: %v", round, ra.err, rb.err)
		}
		sameConnection(t, ra.c, rb.c)
		exchangeDatagrams(t, newTCPCarrier(ra.c), newTCPCarrier(rb.c), []int{1, 100, 1200, MaxRelayFrame})
		t.Logf("round %d: a %s (%v), b %s (%v)", round, ra.how, ra.took.Round(time.Microsecond), rb.how, rb.took.Round(time.Microsecond))
	}
	noPunchGoroutines(t)
}

// closedAddr returns a loopback address where nothing listens (a port
// just released).
func closedAddr(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().(*net.TCPAddr).AddrPort()
	ln.Close()
	return a
}

// TestPunchTCPRetriesRefusedRemote punches towards an address where the
// peer's port is not open yet: the connects are refused and retried, and
// once the peer opens its port there and punches back, they connect.
func TestPunchTCPRetriesRefusedRemote(t *testing.T) {
	pa := newTestPort(t, "127.0.0.1:0")
	addrB := closedAddr(t)
	authA, authB := testAuthPair()
	refused := make(chan error, 1)
	var refusals atomic.Int32
	dialFailed := func(remote netip.AddrPort, err error) {
		if remote == addrB && !isTimeout(err) && refusals.Add(1) == 2 { // nothing listens: refused
			refused <- err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), testGuard)
	defer cancel()
	cha := punch(ctx, pa, []netip.AddrPort{addrB}, authA.auth, dialFailed)
	select {
	case err := <-refused:
		t.Logf("refused twice, last: %v", err)
	case r := <-cha:
		t.Fatalf("punch returned before the peer existed: %v, %v", r.c, r.err)
	case <-time.After(testGuard):
		t.Fatal("no refusal from a closed port")
	}
	pb := newTestPort(t, addrB.String()) // the peer's port opens where A punches
	chb := punch(ctx, pb, []netip.AddrPort{pa.Addr()}, authB.auth, nil)
	ra, rb := await(t, cha, "a"), await(t, chb, "b")
	if ra.err != nil || rb.err != nil {
		t.Fatalf("a: %v, b: %v", ra.err, rb.err)
	}
	sameConnection(t, ra.c, rb.c)
	t.Logf("connected after %d refusals: a %s, b %s", refusals.Load(), ra.how, rb.how)
	noPunchGoroutines(t)
}

// TestPunchTCPRejectsImpostors gives A two impostors, which know the
// exchange but not the key: one at an address A was told to punch (as a
// stranger at a peer's private address), one that connects to A's port.
// A's auth rejects both, repeatedly for the first as A keeps retrying it,
// and the real peer, arriving after both were turned away, wins on both
// sides.
func TestPunchTCPRejectsImpostors(t *testing.T) {
	pa, pb := newTestPort(t, "127.0.0.1:0"), newTestPort(t, "127.0.0.1:0")
	authA, authB := testAuthPair()

	imp, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dialedRejected := make(chan struct{})
	var impWG sync.WaitGroup
	impWG.Go(func() {
		var once sync.Once
		for {
			c, err := imp.Accept()
			if err != nil {
				return
			}
			if playImpostor(c) {
				once.Do(func() { close(dialedRejected) })
			}
		}
	})
	defer func() { imp.Close(); impWG.Wait() }()
	impAddr := imp.Addr().(*net.TCPAddr).AddrPort()

	ctx, cancel := context.WithTimeout(context.Background(), testGuard)
	defer cancel()
	// B's port listens but B does not punch yet: A's connect to it
	// completes and waits in B's accept queue, its auth unanswered.
	cha := punch(ctx, pa, []netip.AddrPort{impAddr, pb.Addr()}, authA.auth, nil)
	select {
	case <-dialedRejected:
	case r := <-cha:
		t.Fatalf("punch returned early: %v, %v", r.c, r.err)
	case <-time.After(testGuard):
		t.Fatal("the impostor A dialed was never rejected")
	}
	c, err := net.Dial("tcp4", pa.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if !playImpostor(c) {
		t.Fatal("the impostor that connected to A was not hung up on")
	}
	chb := punch(ctx, pb, []netip.AddrPort{pa.Addr()}, authB.auth, nil)
	ra, rb := await(t, cha, "a"), await(t, chb, "b")
	if ra.err != nil || rb.err != nil {
		t.Fatalf("a: %v, b: %v", ra.err, rb.err)
	}
	sameConnection(t, ra.c, rb.c)
	if got := ra.c.RemoteAddr().String(); got != pb.Addr().String() {
		t.Fatalf("A's winner is from %v, want B's port %v", got, pb.Addr())
	}
	if n := authA.rejected.Load(); n < 2 {
		t.Fatalf("A's auth rejected %d connections, want both impostors", n)
	}
	t.Logf("A rejected %d impostor connections; a %s, b %s", authA.rejected.Load(), ra.how, rb.how)
	noPunchGoroutines(t)
}

// TestPunchTCPBothKeepTheSameConnection punches between two ports on the
// wildcard address, each given two of the other's addresses (127.0.0.1 and
// 127.0.0.2), so that up to three connections complete at once; with the
// controlling side's nomination in auth both sides keep the same one.
func TestPunchTCPBothKeepTheSameConnection(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs all of 127.0.0.0/8 on loopback (Linux)")
	}
	for round := range 5 {
		pa, pb := newTestPort(t, "0.0.0.0:0"), newTestPort(t, "0.0.0.0:0")
		on := func(p *tcpPort) []netip.AddrPort {
			return []netip.AddrPort{
				netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), p.Addr().Port()),
				netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), p.Addr().Port()),
			}
		}
		authA, authB := testAuthPair()
		ctx, cancel := context.WithTimeout(context.Background(), testGuard)
		cha := punch(ctx, pa, on(pb), authA.auth, nil)
		chb := punch(ctx, pb, on(pa), authB.auth, nil)
		ra, rb := await(t, cha, "a"), await(t, chb, "b")
		cancel()
		if ra.err != nil || rb.err != nil {
			t.Fatalf("round %d: a: %v, b: %v", round, ra.err, rb.err)
		}
		sameConnection(t, ra.c, rb.c)
		t.Logf("round %d: kept %v<->%v (a %s, b %s)", round, ra.c.LocalAddr(), ra.c.RemoteAddr(), ra.how, rb.how)
	}
	noPunchGoroutines(t)
}

// TestPunchTCPCancel cancels a punch that has a connect being refused,
// a dialed connection and an accepted one both stuck in auth (their
// other ends never answer): punchTCP returns the cancellation, every
// goroutine it started has ended, both stuck connections are closed, and
// the port serves a new punch afterwards. A second punch on a port in use
// is refused.
func TestPunchTCPCancel(t *testing.T) {
	pa := newTestPort(t, "127.0.0.1:0")
	silent, err := net.Listen("tcp4", "127.0.0.1:0") // completes connects, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	authA, _ := testAuthPair()
	inAuth := make(chan struct{}, 8)
	auth := func(c net.Conn) error {
		inAuth <- struct{}{}
		return authA.auth(c)
	}
	refused := make(chan struct{}, 1)
	dialFailed := func(_ netip.AddrPort, err error) {
		if !isTimeout(err) { // the closed port refused
			select {
			case refused <- struct{}{}:
			default:
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	remotes := []netip.AddrPort{closedAddr(t), silent.Addr().(*net.TCPAddr).AddrPort()}
	ch := punch(ctx, pa, remotes, auth, dialFailed)
	stuck, err := net.Dial("tcp4", pa.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	for _, w := range []chan struct{}{inAuth, inAuth, refused} {
		select {
		case <-w:
		case <-time.After(testGuard):
			t.Fatal("the punch did not reach the state to cancel in")
		}
	}
	if _, err := punchTCP(ctx, pa, nil, auth); !errors.Is(err, errPunchBusy) {
		t.Fatalf("a second punch on a busy port: %v, want errPunchBusy", err)
	}
	start := time.Now()
	cancel()
	r := await(t, ch, "a")
	if r.c != nil || !errors.Is(r.err, context.Canceled) {
		t.Fatalf("after cancel: %v, %v; want context.Canceled", r.c, r.err)
	}
	t.Logf("returned %v after cancel: %v", time.Since(start).Round(time.Microsecond), r.err)
	noPunchGoroutines(t)
	_ = stuck.SetReadDeadline(time.Now().Add(testGuard))
	if _, err := io.ReadAll(io.LimitReader(stuck, 1<<10)); err != nil {
		t.Fatalf("the accepted connection in auth was not closed: %v", err)
	}

	// The port still works.
	pb := newTestPort(t, "127.0.0.1:0")
	authA2, authB2 := testAuthPair()
	ctx2, cancel2 := context.WithTimeout(context.Background(), testGuard)
	defer cancel2()
	cha := punch(ctx2, pa, []netip.AddrPort{pb.Addr()}, authA2.auth, nil)
	chb := punch(ctx2, pb, []netip.AddrPort{pa.Addr()}, authB2.auth, nil)
	ra, rb := await(t, cha, "a"), await(t, chb, "b")
	if ra.err != nil || rb.err != nil {
		t.Fatalf("punch after a cancelled one: a: %v, b: %v", ra.err, rb.err)
	}
	sameConnection(t, ra.c, rb.c)
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// datagram is the i-th test datagram of n bytes in direction dir.
func datagram(dir byte, i, n int) []byte {
	d := make([]byte, n)
	for j := range d {
		d[j] = byte(i*7+j) ^ dir
	}
	return d
}

// readDatagrams reads want datagrams from c, batch by batch, and checks
// each against next (which returns the expected bytes) and its source.
func readDatagrams(c *tcpCarrier, want int, next func(i int) []byte) error {
	ds := make([]Datagram, 8)
	for i := range ds {
		ds[i].Buf = make([]byte, MaxRelayFrame)
	}
	for got := 0; got < want; {
		n, err := c.ReadBatch(ds)
		if err != nil {
			return fmt.Errorf("after %d of %d datagrams: %w", got, want, err)
		}
		for _, d := range ds[:n] {
			if exp := next(got); !bytes.Equal(d.Buf[:d.N], exp) {
				return fmt.Errorf("datagram %d: %d bytes, want %d (or different contents)", got, d.N, len(exp))
			}
			if d.From != c.RemoteAddr() {
				return fmt.Errorf("datagram %d from %v, want %v", got, d.From, c.RemoteAddr())
			}
			got++
		}
	}
	return nil
}

// exchangeDatagrams sends datagrams of the given sizes from a to b and
// from b to a at the same time, and checks what arrives.
func exchangeDatagrams(t *testing.T, a, b *tcpCarrier, sizes []int) {
	t.Helper()
	guard := time.AfterFunc(testGuard, func() { a.Close(); b.Close() }) // unblocks a stuck read
	defer guard.Stop()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for _, dir := range []struct {
		name     string
		tag      byte
		from, to *tcpCarrier
	}{{"a->b", 0x00, a, b}, {"b->a", 0x5a, b, a}} {
		wg.Go(func() {
			for i, n := range sizes {
				if err := dir.from.WriteTo(datagram(dir.tag, i, n), 0, netip.AddrPort{}); err != nil {
					errs <- fmt.Errorf("%s: write %d: %w", dir.name, i, err)
					return
				}
			}
		})
		wg.Go(func() {
			if err := readDatagrams(dir.to, len(sizes), func(i int) []byte { return datagram(dir.tag, i, sizes[i]) }); err != nil {
				errs <- fmt.Errorf("%s: %w", dir.name, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
}

// TestTCPCarrierRoundTrip sends datagrams of every size from 1 to
// MaxRelayFrame both ways at once through two tcpCarriers, then a GSO
// batch, which arrives split into its segments.
func TestTCPCarrierRoundTrip(t *testing.T) {
	ca, cb := tcpPair(t)
	a, b := newTCPCarrier(ca), newTCPCarrier(cb)
	if a.Kind() != PathDirectTCP || a.Kind().String() != "direct-tcp" {
		t.Fatalf("Kind %v", a.Kind())
	}
	if a.LocalAddr() != b.RemoteAddr() || b.LocalAddr() != a.RemoteAddr() || !a.LocalAddr().IsValid() {
		t.Fatalf("addresses: a %v->%v, b %v->%v", a.LocalAddr(), a.RemoteAddr(), b.LocalAddr(), b.RemoteAddr())
	}
	sizes := make([]int, MaxRelayFrame)
	for i := range sizes {
		sizes[i] = i + 1
	}
	exchangeDatagrams(t, a, b, sizes)

	const seg = 1200
	batch := datagram(0x33, 0, 3*seg+500)
	if err := a.WriteTo(batch, seg, netip.MustParseAddrPort("192.0.2.1:9")); err != nil { // the address is ignored
		t.Fatal(err)
	}
	err := readDatagrams(b, 4, func(i int) []byte { return batch[i*seg : min((i+1)*seg, len(batch))] })
	if err != nil {
		t.Fatal(err)
	}
}

// TestTCPCarrierEnds checks how a TCP path ends: datagrams the framing
// cannot carry are refused without harming the stream; a malformed frame
// ends the carrier with an error wrapping ErrRelayFrame and net.ErrClosed;
// the peer's close is net.ErrClosed; a local Close unblocks ReadBatch.
func TestTCPCarrierEnds(t *testing.T) {
	ds := []Datagram{{Buf: make([]byte, MaxRelayFrame)}}
	t.Run("refused-datagrams", func(t *testing.T) {
		ca, cb := tcpPair(t)
		a, b := newTCPCarrier(ca), newTCPCarrier(cb)
		for _, tc := range []struct {
			n, seg int
		}{{0, 0}, {MaxRelayFrame + 1, 0}, {2 * (MaxRelayFrame + 1), MaxRelayFrame + 1}} {
			if err := a.WriteTo(make([]byte, tc.n), tc.seg, netip.AddrPort{}); !errors.Is(err, ErrRelayFrame) {
				t.Fatalf("WriteTo %d bytes, segments of %d: %v, want ErrRelayFrame", tc.n, tc.seg, err)
			}
		}
		if err := a.WriteTo([]byte("still fine"), 0, netip.AddrPort{}); err != nil {
			t.Fatal(err)
		}
		if n, err := b.ReadBatch(ds); err != nil || string(ds[0].Buf[:ds[0].N]) != "still fine" || n != 1 {
			t.Fatalf("read %d %q, %v", n, ds[0].Buf[:ds[0].N], err)
		}
	})
	t.Run("malformed-frame", func(t *testing.T) {
		ca, cb := tcpPair(t)
		b := newTCPCarrier(cb)
		if _, err := ca.Write([]byte{0, 0}); err != nil { // a zero length
			t.Fatal(err)
		}
		for range 2 {
			_, err := b.ReadBatch(ds)
			if !errors.Is(err, ErrRelayFrame) || !errors.Is(err, net.ErrClosed) {
				t.Fatalf("ReadBatch after a malformed frame: %v, want ErrRelayFrame and net.ErrClosed", err)
			}
		}
		if err := b.WriteTo([]byte("x"), 0, netip.AddrPort{}); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("WriteTo on an ended carrier: %v", err)
		}
	})
	t.Run("peer-closes", func(t *testing.T) {
		ca, cb := tcpPair(t)
		a, b := newTCPCarrier(ca), newTCPCarrier(cb)
		if err := a.WriteTo([]byte("last"), 0, netip.AddrPort{}); err != nil {
			t.Fatal(err)
		}
		a.Close()
		if n, err := b.ReadBatch(ds); n != 1 || err != nil || string(ds[0].Buf[:ds[0].N]) != "last" {
			t.Fatalf("read %d, %v", n, err)
		}
		if _, err := b.ReadBatch(ds); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("ReadBatch after the peer closed: %v, want net.ErrClosed", err)
		}
	})
	t.Run("local-close", func(t *testing.T) {
		_, cb := tcpPair(t)
		b := newTCPCarrier(cb)
		errc := make(chan error, 1)
		go func() {
			_, err := b.ReadBatch(ds)
			errc <- err
		}()
		b.Close()
		select {
		case err := <-errc:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("ReadBatch after Close: %v, want net.ErrClosed", err)
			}
		case <-time.After(testGuard):
			t.Fatal("Close did not unblock ReadBatch")
		}
	})
}

// isTimeout reports whether err is a timed-out attempt.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
