package transport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"
)

// relayTestTimeout bounds every blocking step of the relay server tests.
const relayTestTimeout = 10 * time.Second

// relayHarness runs a RelayServer on a loopback TCP port.
type relayHarness struct {
	srv    *RelayServer
	addr   string
	ln     net.Listener
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

func newRelayHarness(t testing.TB, cfg RelayConfig) *relayHarness {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &relayHarness{srv: NewRelayServer(cfg), addr: ln.Addr().String(), ln: ln, cancel: cancel}
	h.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.wg.Go(func() { h.srv.ServeConn(ctx, c) })
		}
	})
	t.Cleanup(h.close)
	return h
}

// close stops accepting, closes the server and waits for every goroutine.
func (h *relayHarness) close() {
	h.once.Do(func() {
		h.ln.Close()
		h.srv.Close()
		h.cancel()
		h.wg.Wait()
	})
}

func newRelayToken(t testing.TB) [RelayTokenLen]byte {
	var tok [RelayTokenLen]byte
	if _, err := rand.Read(tok[:]); err != nil {
		t.Fatal(err)
	}
	return tok
}

// relayClient is a raw client of the relay protocol.
type relayClient struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

// dial connects to the relay and sends raw (a hello, or whatever the test
// wants the server to read first).
func (h *relayHarness) dial(t testing.TB, raw []byte) *relayClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", h.addr, relayTestTimeout)
	if err != nil {
		t.Fatal(err)
	}
	return newRelayClient(t, c, raw)
}

// joinFrom is join from the local address ip: another loopback address
// stands for another network. It skips the test where ip cannot be used.
func (h *relayHarness) joinFrom(t testing.TB, ip string, tok [RelayTokenLen]byte, side Role) *relayClient {
	t.Helper()
	d := net.Dialer{Timeout: relayTestTimeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", h.addr)
	if err != nil {
		t.Skipf("cannot connect from %s: %v", ip, err)
	}
	return newRelayClient(t, c, AppendRelayHello(nil, tok, side))
}

// served is the number of connections in ServeConn.
func (h *relayHarness) served() int {
	h.srv.mu.Lock()
	defer h.srv.mu.Unlock()
	return len(h.srv.conns)
}

func newRelayClient(t testing.TB, c net.Conn, raw []byte) *relayClient {
	t.Helper()
	t.Cleanup(func() { c.Close() })
	if len(raw) > 0 {
		if _, err := c.Write(raw); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.SetDeadline(time.Now().Add(relayTestTimeout))
	return &relayClient{t: t, c: c, r: bufio.NewReaderSize(c, 64<<10)}
}

// join sends the hello for tok and side.
func (h *relayHarness) join(t testing.TB, tok [RelayTokenLen]byte, side Role) *relayClient {
	t.Helper()
	return h.dial(t, AppendRelayHello(nil, tok, side))
}

func (rc *relayClient) expectStatus(want ...RelayStatus) {
	rc.t.Helper()
	for _, w := range want {
		b, err := rc.r.ReadByte()
		if err != nil {
			rc.t.Fatalf("reading status %q: %v", w, err)
		}
		if got := RelayStatus(b); got != w {
			rc.t.Fatalf("status %q, want %q", got, w)
		}
	}
}

// expectRefused reads the refusal st, then the end of the connection.
func (rc *relayClient) expectRefused(st RelayStatus) {
	rc.t.Helper()
	rc.expectStatus(st)
	rc.expectClosed()
}

// expectClosed reads until the server closes the connection (whatever was
// in flight before is discarded).
func (rc *relayClient) expectClosed() {
	rc.t.Helper()
	_, err := io.Copy(io.Discard, rc.r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		rc.t.Fatalf("connection still open after %v", relayTestTimeout)
	}
}

func (rc *relayClient) send(b []byte) {
	rc.t.Helper()
	if err := WriteRelayFrame(rc.c, b); err != nil {
		rc.t.Fatal(err)
	}
}

func (rc *relayClient) recv() []byte {
	rc.t.Helper()
	buf := make([]byte, MaxRelayFrame)
	n, err := ReadRelayFrame(rc.r, buf)
	if err != nil {
		rc.t.Fatalf("reading a frame: %v", err)
	}
	return buf[:n]
}

// pairRelay joins both sides of a fresh token and checks the statuses.
func pairRelay(t testing.TB, h *relayHarness) (dialer, acceptor *relayClient) {
	t.Helper()
	tok := newRelayToken(t)
	dialer = h.join(t, tok, RoleDialer)
	dialer.expectStatus(RelayWaiting)
	acceptor = h.join(t, tok, RoleAcceptor)
	acceptor.expectStatus(RelayWaiting, RelayPaired)
	dialer.expectStatus(RelayPaired)
	return dialer, acceptor
}

// relayFrames are n frames of every length pattern, distinct per seed.
func relayFrames(n int, seed byte) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		f := make([]byte, 1+(i*389)%MaxRelayFrame)
		for j := range f {
			f[j] = seed ^ byte(i) ^ byte(j*7)
		}
		out[i] = f
	}
	return out
}

// TestRelayServerPairsAndForwards: two sides of one token are paired and
// their frames cross, both ways at once, byte-exact and in order; the
// counters say so; one side leaving closes the other.
func TestRelayServerPairsAndForwards(t *testing.T) {
	h := newRelayHarness(t, RelayConfig{})
	a, b := pairRelay(t, h)
	fromA, fromB := relayFrames(500, 0xa5), relayFrames(300, 0x5a)
	var wg sync.WaitGroup
	for _, dir := range []struct {
		from, to *relayClient
		frames   [][]byte
	}{{a, b, fromA}, {b, a, fromB}} {
		wg.Go(func() {
			w := bufio.NewWriter(dir.from.c)
			for _, f := range dir.frames {
				if err := WriteRelayFrame(w, f); err != nil {
					t.Error(err)
					return
				}
			}
			if err := w.Flush(); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			buf := make([]byte, MaxRelayFrame)
			for i, want := range dir.frames {
				n, err := ReadRelayFrame(dir.to.r, buf)
				if err != nil {
					t.Errorf("frame %d: %v", i, err)
					return
				}
				if !bytes.Equal(buf[:n], want) {
					t.Errorf("frame %d differs: %d bytes, want %d", i, n, len(want))
					return
				}
			}
		})
	}
	wg.Wait()
	var sent uint64
	for _, f := range append(fromA, fromB...) {
		sent += uint64(len(f))
	}
	st := h.srv.Stats()
	if st.Active != 1 || st.Total != 1 || st.Paired != 1 || st.Bytes != sent {
		t.Fatalf("stats %+v, want 1 active, 1 total, 1 paired, %d bytes", st, sent)
	}
	a.c.Close()
	b.expectClosed()
	waitFor(t, "session gone", func() bool { return h.srv.Stats().Active == 0 })
}

// expectRelayed checks that frames cross between a and b both ways.
func expectRelayed(t testing.TB, a, b *relayClient) {
	t.Helper()
	a.send([]byte("from a"))
	if got := b.recv(); string(got) != "from a" {
		t.Fatalf("got %q, want %q", got, "from a")
	}
	b.send([]byte("from b"))
	if got := a.recv(); string(got) != "from b" {
		t.Fatalf("got %q, want %q", got, "from b")
	}
}

// expectTakenOver waits until the server holds only the n connections of
// the new session (the old session's ServeConn calls returned: their ends
// have run), and checks the stats.
func expectTakenOver(t *testing.T, h *relayHarness, n int, total, paired uint64) {
	t.Helper()
	waitFor(t, "the old session's connections to be let go", func() bool { return h.served() == n })
	st := h.srv.Stats()
	if st.Active != 1 || st.Total != total || st.Paired != paired || len(st.Refused) != 0 {
		t.Fatalf("stats %+v, want 1 active, %d total, %d paired, no refusal", st, total, paired)
	}
}

// TestRelayServerTakeover: a second connection for a token's side that is
// already there (a client whose network changed, its old connection
// perhaps silently dead) takes the side over: the session, waiting or
// paired, ends for both old connections, the newcomer waits in a fresh
// session and pairs with the partner when that joins again. The limits
// count the old session's places as free, and a newcomer they refuse
// leaves the old session alone.
func TestRelayServerTakeover(t *testing.T) {
	t.Run("paired", func(t *testing.T) {
		h := newRelayHarness(t, RelayConfig{})
		tok := newRelayToken(t)
		a := h.join(t, tok, RoleDialer)
		a.expectStatus(RelayWaiting)
		b := h.join(t, tok, RoleAcceptor)
		b.expectStatus(RelayWaiting, RelayPaired)
		a.expectStatus(RelayPaired)

		a2 := h.join(t, tok, RoleDialer)
		a2.expectStatus(RelayWaiting)
		a.expectClosed()
		b.expectClosed()
		expectTakenOver(t, h, 1, 2, 1)

		b2 := h.join(t, tok, RoleAcceptor)
		b2.expectStatus(RelayWaiting, RelayPaired)
		a2.expectStatus(RelayPaired)
		expectRelayed(t, a2, b2)
		if st := h.srv.Stats(); st.Active != 1 || st.Paired != 2 {
			t.Fatalf("stats %+v, want 1 active, 2 paired", st)
		}
	})
	t.Run("waiting", func(t *testing.T) {
		h := newRelayHarness(t, RelayConfig{})
		tok := newRelayToken(t)
		b := h.join(t, tok, RoleAcceptor)
		b.expectStatus(RelayWaiting)

		b2 := h.join(t, tok, RoleAcceptor)
		b2.expectStatus(RelayWaiting)
		b.expectClosed()
		expectTakenOver(t, h, 1, 2, 0)

		a := h.join(t, tok, RoleDialer)
		a.expectStatus(RelayWaiting, RelayPaired)
		b2.expectStatus(RelayPaired)
		expectRelayed(t, a, b2)
	})
	t.Run("limits", func(t *testing.T) {
		h := newRelayHarness(t, RelayConfig{MaxSessions: 1, MaxSessionsPerAddr: 1})
		a, b := pairRelay(t, h)
		tok := h.soleToken(t)

		a2 := h.join(t, tok, RoleDialer)
		a2.expectStatus(RelayWaiting)
		a.expectClosed()
		b.expectClosed()
		expectTakenOver(t, h, 1, 2, 1)
		// The fresh session holds the places the old one gave back.
		h.join(t, newRelayToken(t), RoleDialer).expectRefused(RelayBusy)

		b2 := h.join(t, tok, RoleAcceptor)
		b2.expectStatus(RelayWaiting, RelayPaired)
		a2.expectStatus(RelayPaired)
		expectRelayed(t, a2, b2)
		h.srv.mu.Lock()
		perAddr := len(h.srv.perAddr)
		n := h.srv.perAddr[relayAddrKey(a2.c.LocalAddr())]
		h.srv.mu.Unlock()
		if perAddr != 1 || n != 1 {
			t.Fatalf("%d addresses counted, this one %d times; want 1, once", perAddr, n)
		}
	})
	t.Run("new address", func(t *testing.T) {
		h := newRelayHarness(t, RelayConfig{MaxSessionsPerAddr: 1})
		tok := newRelayToken(t)
		a := h.join(t, tok, RoleDialer)
		a.expectStatus(RelayWaiting)
		other := h.joinFrom(t, "127.0.0.2", newRelayToken(t), RoleDialer)
		other.expectStatus(RelayWaiting)

		// 127.0.0.2 is full: the takeover is refused and changes nothing.
		h.joinFrom(t, "127.0.0.2", tok, RoleDialer).expectRefused(RelayTooManyFromAddr)
		b := h.join(t, tok, RoleAcceptor)
		b.expectStatus(RelayWaiting, RelayPaired)
		a.expectStatus(RelayPaired)
		expectRelayed(t, a, b)

		// With 127.0.0.2 free, the dialer moves there.
		other.c.Close()
		waitFor(t, "the other session to end", func() bool { return h.srv.Stats().Active == 1 })
		a2 := h.joinFrom(t, "127.0.0.2", tok, RoleDialer)
		a2.expectStatus(RelayWaiting)
		a.expectClosed()
		b.expectClosed()
		waitFor(t, "the old session's connections to be let go", func() bool { return h.served() == 1 })
		b2 := h.join(t, tok, RoleAcceptor)
		b2.expectStatus(RelayWaiting, RelayPaired)
		a2.expectStatus(RelayPaired)
		expectRelayed(t, a2, b2)
		st := h.srv.Stats()
		if st.Active != 1 || st.Refused[RelayTooManyFromAddr] != 1 || st.Refused[RelaySideTaken] != 0 {
			t.Fatalf("stats %+v, want 1 active, 1 per-address refusal", st)
		}
	})
}

// soleToken is the token of the server's only session.
func (h *relayHarness) soleToken(t testing.TB) [RelayTokenLen]byte {
	t.Helper()
	h.srv.mu.Lock()
	defer h.srv.mu.Unlock()
	if len(h.srv.sessions) != 1 {
		t.Fatalf("%d sessions, want 1", len(h.srv.sessions))
	}
	for tok := range h.srv.sessions {
		return tok
	}
	panic("unreachable")
}

// TestRelayServerLimits: the per-address and total session limits refuse
// new sessions with their statuses, never the second side of a session
// already there, and free their places when sessions end.
func TestRelayServerLimits(t *testing.T) {
	t.Run("per address", func(t *testing.T) {
		h := newRelayHarness(t, RelayConfig{MaxSessionsPerAddr: 2})
		tok1, tok2 := newRelayToken(t), newRelayToken(t)
		a1 := h.join(t, tok1, RoleDialer)
		a1.expectStatus(RelayWaiting)
		a2 := h.join(t, tok2, RoleDialer)
		a2.expectStatus(RelayWaiting)
		h.join(t, newRelayToken(t), RoleDialer).expectRefused(RelayTooManyFromAddr)
		// Both sides from one address count once: the partner is let in.
		h.join(t, tok1, RoleAcceptor).expectStatus(RelayWaiting, RelayPaired)
		a1.expectStatus(RelayPaired)
		h.join(t, newRelayToken(t), RoleAcceptor).expectRefused(RelayTooManyFromAddr)

		a2.c.Close()
		waitFor(t, "the waiting session to end", func() bool { return h.srv.Stats().Active == 1 })
		h.join(t, newRelayToken(t), RoleDialer).expectStatus(RelayWaiting)
		if n := h.srv.Stats().Refused[RelayTooManyFromAddr]; n != 2 {
			t.Fatalf("%d per-address refusals counted, want 2", n)
		}
	})
	t.Run("total", func(t *testing.T) {
		h := newRelayHarness(t, RelayConfig{MaxSessions: 2, MaxSessionsPerAddr: -1})
		tok1 := newRelayToken(t)
		a1 := h.join(t, tok1, RoleDialer)
		a1.expectStatus(RelayWaiting)
		a2 := h.join(t, newRelayToken(t), RoleAcceptor)
		a2.expectStatus(RelayWaiting)
		h.join(t, newRelayToken(t), RoleDialer).expectRefused(RelayBusy)
		h.join(t, tok1, RoleAcceptor).expectStatus(RelayWaiting, RelayPaired)
		a1.expectStatus(RelayPaired)

		a2.c.Close()
		waitFor(t, "the waiting session to end", func() bool { return h.srv.Stats().Active == 1 })
		h.join(t, newRelayToken(t), RoleDialer).expectStatus(RelayWaiting)
		h.join(t, newRelayToken(t), RoleDialer).expectRefused(RelayBusy)
		if n := h.srv.Stats().Refused[RelayBusy]; n != 2 {
			t.Fatalf("%d busy refusals counted, want 2", n)
		}
	})
}

// TestRelayServerBadHello: a hello with a wrong magic, version or side, or
// cut short, is refused with RelayBadHello; a server that does not relay
// refuses a good one with RelayDisabled.
func TestRelayServerBadHello(t *testing.T) {
	h := newRelayHarness(t, RelayConfig{})
	good := AppendRelayHello(nil, newRelayToken(t), RoleDialer)
	mutate := func(i int, v byte) []byte {
		b := bytes.Clone(good)
		b[i] = v
		return b
	}
	for _, tc := range []struct {
		name  string
		hello []byte
	}{
		{"magic", mutate(3, 'X')},
		{"version", mutate(len(RelayMagic), 2)},
		{"side", mutate(RelayHelloLen-1, 2)},
		{"short", good[:RelayHelloLen-1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := h.dial(t, tc.hello)
			if len(tc.hello) < RelayHelloLen {
				rc.c.(*net.TCPConn).CloseWrite()
			}
			rc.expectRefused(RelayBadHello)
		})
	}
	if n := h.srv.Stats().Refused[RelayBadHello]; n != 4 {
		t.Fatalf("%d bad hellos counted, want 4", n)
	}

	off := newRelayHarness(t, RelayConfig{Disabled: true})
	off.join(t, newRelayToken(t), RoleDialer).expectRefused(RelayDisabled)
}

// TestRelayServerMalformedFrameEndsSession: an empty or oversized frame
// from either side ends the session for both.
func TestRelayServerMalformedFrameEndsSession(t *testing.T) {
	h := newRelayHarness(t, RelayConfig{})
	for _, tc := range []struct {
		name string
		raw  []byte
	}{
		{"empty", []byte{0, 0}},
		{"oversized", []byte{0xff, 0xff, 1, 2, 3}},
		{"just over", []byte{MaxRelayFrame >> 8, MaxRelayFrame&0xff + 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := pairRelay(t, h)
			b.send([]byte("before"))
			if got := a.recv(); string(got) != "before" {
				t.Fatalf("got %q", got)
			}
			if _, err := b.c.Write(tc.raw); err != nil {
				t.Fatal(err)
			}
			a.expectClosed()
			b.expectClosed()
		})
	}
	waitFor(t, "sessions gone", func() bool { return h.srv.Stats().Active == 0 })
}

// TestRelayServerIdleTimeout: a paired session with no frame either way
// ends for both sides.
func TestRelayServerIdleTimeout(t *testing.T) {
	h := newRelayHarness(t, RelayConfig{IdleTimeout: 100 * time.Millisecond})
	a, b := pairRelay(t, h)
	a.expectClosed()
	b.expectClosed()
	waitFor(t, "session gone", func() bool { return h.srv.Stats().Active == 0 })
}

// TestRelayServerPairTimeout: a side whose partner does not come is told
// RelayTimeout, and its token is free again afterwards.
func TestRelayServerPairTimeout(t *testing.T) {
	h := newRelayHarness(t, RelayConfig{PairTimeout: 100 * time.Millisecond})
	tok := newRelayToken(t)
	a := h.join(t, tok, RoleDialer)
	a.expectStatus(RelayWaiting)
	a.expectRefused(RelayTimeout)
	st := h.srv.Stats()
	if st.Active != 0 || st.Refused[RelayTimeout] != 1 {
		t.Fatalf("stats %+v after the pairing timeout", st)
	}
	h.join(t, tok, RoleDialer).expectStatus(RelayWaiting)
}

// TestRelayServerWaitingSideLeaves: a waiting client that goes away frees
// its place at once, so its retry with the same token is not refused.
func TestRelayServerWaitingSideLeaves(t *testing.T) {
	h := newRelayHarness(t, RelayConfig{})
	tok := newRelayToken(t)
	a := h.join(t, tok, RoleDialer)
	a.expectStatus(RelayWaiting)
	a.c.Close()
	waitFor(t, "the waiting session to end", func() bool { return h.srv.Stats().Active == 0 })
	a = h.join(t, tok, RoleDialer)
	a.expectStatus(RelayWaiting)
	h.join(t, tok, RoleAcceptor).expectStatus(RelayWaiting, RelayPaired)
	a.expectStatus(RelayPaired)
}

// TestRelayServerEarlyDataEndsSession: bytes from a client before it was
// paired break the protocol: its session ends.
func TestRelayServerEarlyDataEndsSession(t *testing.T) {
	h := newRelayHarness(t, RelayConfig{})
	tok := newRelayToken(t)
	a := h.join(t, tok, RoleDialer)
	a.expectStatus(RelayWaiting)
	a.send([]byte("too soon"))
	a.expectClosed()
	waitFor(t, "session gone", func() bool { return h.srv.Stats().Active == 0 })
}

// TestRelayServerByteLimit: a session that reaches its byte limit ends for
// both sides, with no more than the limit relayed.
func TestRelayServerByteLimit(t *testing.T) {
	const limit = 10_000
	h := newRelayHarness(t, RelayConfig{MaxSessionBytes: limit})
	a, b := pairRelay(t, h)
	frame := make([]byte, 1000)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for range 20 {
			if WriteRelayFrame(a.c, frame) != nil {
				return
			}
		}
	})
	got := 0
	buf := make([]byte, MaxRelayFrame)
	for {
		n, err := ReadRelayFrame(b.r, buf)
		if err != nil {
			break
		}
		got += n
	}
	if got > limit {
		t.Fatalf("%d bytes relayed, limit %d", got, limit)
	}
	a.expectClosed()
	if st := h.srv.Stats(); st.Bytes > limit {
		t.Fatalf("%d bytes counted, limit %d", st.Bytes, limit)
	}
}

// TestRelayBucket: the session rate lets a burst through, then asks for
// waits that match the rate; time is synthetic.
func TestRelayBucket(t *testing.T) {
	now := time.Unix(1000, 0)
	const rate = 1 << 20
	b := newRelayBucket(rate, now)
	burst := int(float64(rate) * relayRateBurst.Seconds())
	if w := b.take(burst, now); w != 0 {
		t.Fatalf("the burst waited %v", w)
	}
	if w := b.take(rate/2, now); w != 500*time.Millisecond {
		t.Fatalf("half a second's bytes beyond the burst: wait %v", w)
	}
	now = now.Add(500 * time.Millisecond)
	if w := b.take(rate/4, now); w != 250*time.Millisecond {
		t.Fatalf("after paying the debt: wait %v", w)
	}
	if w := (*relayBucket)(nil).take(1<<40, now); w != 0 {
		t.Fatalf("no limit waited %v", w)
	}
	if newRelayBucket(-1, now) != nil || newRelayBucket(0, now) != nil {
		t.Fatal("a rate of 0 or less must mean no limit")
	}
}

// TestRelayAddrKey: the per-source limit counts IPv4 addresses and IPv6
// /64s.
func TestRelayAddrKey(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"192.0.2.7:1234", "192.0.2.7/32"},
		{"[::ffff:192.0.2.7]:1234", "192.0.2.7/32"},
		{"[2001:db8:1:2:3:4:5:6]:1234", "2001:db8:1:2::/64"},
		{"[fe80::1%eth0]:1234", "fe80::/64"},
	} {
		a := net.TCPAddrFromAddrPort(netip.MustParseAddrPort(tc.addr))
		if got := relayAddrKey(a).String(); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.addr, got, tc.want)
		}
	}
}

// TestRelayServerCloseEndsEverything: Close ends paired and waiting
// sessions and hellos in progress, refuses later connections, and leaves
// no goroutine behind.
func TestRelayServerCloseEndsEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	h := newRelayHarness(t, RelayConfig{})
	a, b := pairRelay(t, h)
	w := h.join(t, newRelayToken(t), RoleDialer)
	w.expectStatus(RelayWaiting)
	silent := h.dial(t, nil)
	waitFor(t, "the silent connection to be served", func() bool {
		h.srv.mu.Lock()
		defer h.srv.mu.Unlock()
		return len(h.srv.conns) == 4
	})
	h.close()
	for _, rc := range []*relayClient{a, b, w, silent} {
		rc.expectClosed()
	}
	if st := h.srv.Stats(); st.Active != 0 {
		t.Fatalf("%d sessions after Close", st.Active)
	}
	late, peer := net.Pipe()
	h.srv.ServeConn(context.Background(), late) // returns at once
	if _, err := peer.Read(make([]byte, 1)); err == nil {
		t.Fatal("a connection served after Close stays open")
	}

	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRelayServerContextEndsSession: the ctx given to ServeConn ends its
// session.
func TestRelayServerContextEndsSession(t *testing.T) {
	srv := NewRelayServer(RelayConfig{Logger: testLogger()})
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		srv.ServeConn(ctx, c)
	}()
	h := &relayHarness{addr: ln.Addr().String()}
	a := h.join(t, newRelayToken(t), RoleDialer)
	a.expectStatus(RelayWaiting)
	cancel()
	a.expectClosed()
	<-done
}

// BenchmarkRelayServer relays 256 MiB of 1400-byte frames (QUIC-sized) one
// way through the server over loopback: with no rate limit (the cost of
// the forwarding itself), and with the default session rate (which it
// should match).
//
//	go test -run '^$' -bench BenchmarkRelayServer -benchtime 3x ./transport/
func BenchmarkRelayServer(b *testing.B) {
	b.Run("unlimited", func(b *testing.B) {
		benchRelay(b, RelayConfig{SessionRate: -1, MaxSessionBytes: -1})
	})
	b.Run("default-rate", func(b *testing.B) {
		benchRelay(b, RelayConfig{MaxSessionBytes: -1})
	})
}

func benchRelay(b *testing.B, cfg RelayConfig) {
	const frameLen, total = 1400, 256 << 20
	const frames = total / frameLen
	h := newRelayHarness(b, cfg)
	a, r := pairRelay(b, h)
	a.c.SetDeadline(time.Time{})
	r.c.SetDeadline(time.Time{})
	frame := bytes.Repeat([]byte{0xa5}, frameLen)
	b.SetBytes(frames * frameLen)
	b.ResetTimer()
	for b.Loop() {
		errc := make(chan error, 1)
		go func() {
			w := bufio.NewWriterSize(a.c, 64<<10)
			for range frames {
				if err := WriteRelayFrame(w, frame); err != nil {
					errc <- err
					return
				}
			}
			errc <- w.Flush()
		}()
		buf := make([]byte, MaxRelayFrame)
		for range frames {
			if _, err := ReadRelayFrame(r.r, buf); err != nil {
				b.Fatal(err)
			}
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
}

// TestRelayServerAnswersAddressQuery: an address query gets back the
// address the connection came from, and the connection is closed.
func TestRelayServerAnswersAddressQuery(t *testing.T) {
	addr := startRelay(t, RelayConfig{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(RelayAddrMagic)); err != nil {
		t.Fatal(err)
	}
	got, err := ReadRelayAddr(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := c.LocalAddr().(*net.TCPAddr).AddrPort(); got != UnmapAddrPort(want) {
		t.Fatalf("relay saw %v, the connection is from %v", got, want)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open after the answer")
	}
}
