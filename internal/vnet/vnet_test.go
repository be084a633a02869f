package vnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// Shared helpers.

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
func ip(s string) netip.Addr     { return netip.MustParseAddr(s) }

func newNet(t testing.TB, opts Options) *Network {
	t.Helper()
	n := New(opts)
	t.Cleanup(func() { n.Close() })
	return n
}

func listen(t testing.TB, n *Network, addr string) *Conn {
	t.Helper()
	c, err := n.Listen(ap(addr))
	if err != nil {
		t.Fatalf("Listen(%s): %v", addr, err)
	}
	return c
}

func natListen(t testing.TB, nat *NAT, addr string) *Conn {
	t.Helper()
	c, err := nat.Listen(ap(addr))
	if err != nil {
		t.Fatalf("NAT Listen(%s): %v", addr, err)
	}
	return c
}

func send(t testing.TB, c *Conn, to netip.AddrPort, msg string) {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort([]byte(msg), to); err != nil {
		t.Fatalf("write %v -> %v: %v", c.LocalAddr(), to, err)
	}
}

// recv reads one packet, failing the test if none arrives within 5s.
func recv(t testing.TB, c *Conn) (string, netip.AddrPort) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 2048)
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("read on %v: %v", c.LocalAddr(), err)
	}
	return string(buf[:n]), from
}

// expectEmpty asserts that nothing is queued on c. Delivery without delay is
// synchronous, so this needs no waiting.
func expectEmpty(t testing.TB, c *Conn) {
	t.Helper()
	if q := c.Queued(); q != 0 {
		t.Fatalf("%v has %d queued packets, want 0", c.LocalAddr(), q)
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// tapLog records every packet the network reports.
type tapLog struct {
	mu    sync.Mutex
	infos []PacketInfo
}

func newTapLog(t testing.TB, n *Network) *tapLog {
	l := &tapLog{}
	t.Cleanup(n.Tap(func(p PacketInfo) {
		l.mu.Lock()
		l.infos = append(l.infos, p)
		l.mu.Unlock()
	}))
	return l
}

func (l *tapLog) last() PacketInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.infos) == 0 {
		return PacketInfo{}
	}
	return l.infos[len(l.infos)-1]
}

func (l *tapLog) count(reason string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := 0
	for _, p := range l.infos {
		if p.Reason == reason {
			k++
		}
	}
	return k
}

// Network-level tests.

func TestDirectDelivery(t *testing.T) {
	n := newNet(t, Options{})
	a := listen(t, n, "198.18.0.1:4000")
	b := listen(t, n, "198.18.0.2:5000")
	if got := a.LocalAddr().(*net.UDPAddr).AddrPort(); got != ap("198.18.0.1:4000") {
		t.Fatalf("LocalAddr = %v", got)
	}
	if _, err := a.WriteTo([]byte("hello"), net.UDPAddrFromAddrPort(ap("198.18.0.2:5000"))); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	k, from, err := b.ReadFrom(buf)
	if err != nil || string(buf[:k]) != "hello" {
		t.Fatalf("ReadFrom = %q, %v", buf[:k], err)
	}
	if u, ok := from.(*net.UDPAddr); !ok || u.AddrPort() != ap("198.18.0.1:4000") {
		t.Fatalf("from = %#v", from)
	}
	if s := b.Stats(); s.PacketsReceived != 1 || s.BytesReceived != 5 {
		t.Fatalf("receiver stats %+v", s)
	}
	if s := a.Stats(); s.PacketsSent != 1 || s.BytesSent != 5 {
		t.Fatalf("sender stats %+v", s)
	}

	// Port 0 picks a free port; a used address is refused.
	c := listen(t, n, "198.18.0.1:0")
	if c.LocalAddrPort().Port() == 0 || c.LocalAddrPort().Addr() != ip("198.18.0.1") {
		t.Fatalf("port 0 gave %v", c.LocalAddr())
	}
	if _, err := n.Listen(ap("198.18.0.1:4000")); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("duplicate Listen: %v", err)
	}
	if _, err := n.Listen(ap("0.0.0.0:1")); err == nil {
		t.Fatal("Listen on unspecified address succeeded")
	}
	// Closing frees the address.
	a.Close()
	listen(t, n, "198.18.0.1:4000")
}

func TestIPv6AndMappedAddresses(t *testing.T) {
	n := newNet(t, Options{})
	v6a := listen(t, n, "[2001:db8::1]:443")
	v6b := listen(t, n, "[2001:db8::2]:443")
	send(t, v6a, ap("[2001:db8::2]:443"), "six")
	if msg, from := recv(t, v6b); msg != "six" || from != ap("[2001:db8::1]:443") {
		t.Fatalf("got %q from %v", msg, from)
	}

	v4 := listen(t, n, "[::ffff:198.18.0.9]:7")
	if v4.LocalAddrPort() != ap("198.18.0.9:7") {
		t.Fatalf("mapped Listen address not unmapped: %v", v4.LocalAddrPort())
	}
	other := listen(t, n, "198.18.0.10:7")
	// A *net.UDPAddr with a 16-byte IPv4 address, as net.ParseIP returns.
	to := &net.UDPAddr{IP: net.ParseIP("198.18.0.10"), Port: 7}
	if _, err := v4.WriteTo([]byte("four"), to); err != nil {
		t.Fatal(err)
	}
	if msg, from := recv(t, other); msg != "four" || from != ap("198.18.0.9:7") {
		t.Fatalf("got %q from %v", msg, from)
	}
	send(t, other, ap("[::ffff:198.18.0.9]:7"), "back")
	if msg, _ := recv(t, v4); msg != "back" {
		t.Fatalf("got %q", msg)
	}
}

func TestUndeliverable(t *testing.T) {
	n := newNet(t, Options{})
	log := newTapLog(t, n)
	a := listen(t, n, "198.18.0.1:1")
	listen(t, n, "198.18.0.2:1")

	send(t, a, ap("198.18.0.2:2"), "x")
	if p := log.last(); !p.Dropped || p.Reason != ReasonNoListener {
		t.Fatalf("to unused port: %+v", p)
	}
	send(t, a, ap("198.18.0.3:1"), "x")
	if p := log.last(); !p.Dropped || p.Reason != ReasonUnroutable {
		t.Fatalf("to unknown IP: %+v", p)
	}
	if s := a.Stats(); s.DroppedUndeliverable != 2 || s.PacketsDropped != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func TestMTU(t *testing.T) {
	n := newNet(t, Options{MTU: 1200})
	log := newTapLog(t, n)
	a := listen(t, n, "198.18.0.1:1")
	b := listen(t, n, "198.18.0.2:1")
	if _, err := a.WriteToUDPAddrPort(make([]byte, 1201), b.LocalAddrPort()); !errors.Is(err, syscall.EMSGSIZE) {
		t.Fatalf("oversized write: %v", err)
	}
	if k, err := a.WriteToUDPAddrPort(make([]byte, 1200), b.LocalAddrPort()); err != nil || k != 1200 {
		t.Fatalf("write of MTU size: %d, %v", k, err)
	}
	if b.Queued() != 1 {
		t.Fatal("MTU-sized packet not delivered")
	}
	n.Inject(ap("203.0.113.1:1"), b.LocalAddrPort(), make([]byte, 1201))
	if p := log.last(); p.Reason != ReasonMTU {
		t.Fatalf("oversized Inject: %+v", p)
	}
}

func TestInjectSpoofsSource(t *testing.T) {
	n := newNet(t, Options{})
	server := listen(t, n, "198.18.0.1:443")
	n.Inject(ap("203.0.113.66:6666"), server.LocalAddrPort(), []byte("spoof"))
	if msg, from := recv(t, server); msg != "spoof" || from != ap("203.0.113.66:6666") {
		t.Fatalf("got %q from %v", msg, from)
	}

	// Through a NAT: only sources the host has contacted pass the filter.
	nat := n.NewNAT(ip("192.0.2.1"), NATOptions{})
	client := natListen(t, nat, "10.0.0.2:5000")
	send(t, client, server.LocalAddrPort(), "hi")
	_, pub := recv(t, server)
	log := newTapLog(t, n)
	n.Inject(ap("203.0.113.66:6666"), pub, []byte("evil"))
	if p := log.last(); p.Reason != ReasonFiltered {
		t.Fatalf("spoof from stranger: %+v", p)
	}
	expectEmpty(t, client)
	if s := client.Stats(); s.DroppedFiltered != 1 {
		t.Fatalf("client stats %+v", s)
	}
	n.Inject(server.LocalAddrPort(), pub, []byte("as server"))
	if msg, from := recv(t, client); msg != "as server" || from != server.LocalAddrPort() {
		t.Fatalf("got %q from %v", msg, from)
	}
	// Private addresses are unroutable from the internet.
	n.Inject(server.LocalAddrPort(), client.LocalAddrPort(), []byte("x"))
	if p := log.last(); p.Reason != ReasonUnroutable {
		t.Fatalf("inject to private address: %+v", p)
	}
}

func TestQueueOverflow(t *testing.T) {
	n := newNet(t, Options{QueueLen: 8})
	log := newTapLog(t, n)
	a := listen(t, n, "198.18.0.1:1")
	b := listen(t, n, "198.18.0.2:1")
	for i := range 20 {
		send(t, a, b.LocalAddrPort(), fmt.Sprint(i))
	}
	if q := b.Queued(); q != 8 {
		t.Fatalf("queued %d, want 8", q)
	}
	if s := b.Stats(); s.DroppedQueueFull != 12 || s.PacketsReceived != 8 {
		t.Fatalf("stats %+v", s)
	}
	if k := log.count(ReasonQueueFull); k != 12 {
		t.Fatalf("tap saw %d queue-full drops", k)
	}
	// The queue keeps the oldest packets, in order, and accepts more once drained.
	for i := range 8 {
		if msg, _ := recv(t, b); msg != fmt.Sprint(i) {
			t.Fatalf("packet %d = %q", i, msg)
		}
	}
	send(t, a, b.LocalAddrPort(), "again")
	if msg, _ := recv(t, b); msg != "again" {
		t.Fatalf("got %q", msg)
	}
}

func TestTap(t *testing.T) {
	n := newNet(t, Options{})
	a := listen(t, n, "198.18.0.1:1")
	b := listen(t, n, "198.18.0.2:2")
	var seen []PacketInfo
	var mu sync.Mutex
	remove := n.Tap(func(p PacketInfo) {
		mu.Lock()
		seen = append(seen, p)
		mu.Unlock()
	})
	send(t, a, b.LocalAddrPort(), "abc")
	send(t, a, ap("198.18.0.2:3"), "de")
	remove()
	remove() // idempotent
	send(t, a, b.LocalAddrPort(), "not seen")

	mu.Lock()
	defer mu.Unlock()
	want := []PacketInfo{
		{Src: a.LocalAddrPort(), Dst: b.LocalAddrPort(), Len: 3, Payload: []byte("abc")},
		{Src: a.LocalAddrPort(), Dst: ap("198.18.0.2:3"), Len: 2, Payload: []byte("de"), Dropped: true, Reason: ReasonNoListener},
	}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("tap saw %+v\nwant %+v", seen, want)
	}
}

func TestTapMayCallNetwork(t *testing.T) {
	n := newNet(t, Options{})
	a := listen(t, n, "198.18.0.1:1")
	b := listen(t, n, "198.18.0.2:2")
	// Black-hole the link from inside a tap after the first packet.
	var once sync.Once
	n.Tap(func(PacketInfo) {
		once.Do(func() { n.SetLink(ip("198.18.0.1"), ip("198.18.0.2"), Link{Down: true}) })
	})
	send(t, a, b.LocalAddrPort(), "1")
	send(t, a, b.LocalAddrPort(), "2")
	if q := b.Queued(); q != 1 {
		t.Fatalf("queued %d, want 1", q)
	}
}

func TestNetworkCloseEndsEverything(t *testing.T) {
	baseline := runtime.NumGoroutine()
	n := New(Options{})
	nat := n.NewNAT(ip("192.0.2.1"), NATOptions{Kind: Symmetric})
	server := listen(t, n, "198.18.0.1:443")
	client := natListen(t, nat, "10.0.0.2:5000")
	n.SetLink(nat.Public(), ip("198.18.0.1"), Link{Delay: time.Hour}) // keeps packets in the scheduler
	for range 10 {
		send(t, client, server.LocalAddrPort(), "stuck")
	}
	client.SetReadDeadline(time.Now().Add(time.Hour)) // a pending timer
	errs := make(chan error, 2)
	for _, c := range []*Conn{server, client} {
		go func() {
			_, _, err := c.ReadFrom(make([]byte, 10))
			errs <- err
		}()
	}
	// Give the scheduler and readers a moment to start and block.
	for end := time.Now().Add(time.Second); runtime.NumGoroutine() < baseline+3 && time.Now().Before(end); {
		time.Sleep(time.Millisecond)
	}

	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-errs; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("blocked read returned %v", err)
		}
	}
	waitFor(t, 5*time.Second, "goroutines to exit", func() bool {
		return runtime.NumGoroutine() <= baseline
	})
	if err := n.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, err := server.WriteToUDPAddrPort([]byte("x"), client.LocalAddrPort()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Network.Close: %v", err)
	}
	if _, err := n.Listen(ap("198.18.0.5:1")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Listen after Close: %v", err)
	}
	if _, err := nat.Listen(ap("10.0.0.3:1")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("NAT Listen after Close: %v", err)
	}
	n.Inject(ap("203.0.113.1:1"), server.LocalAddrPort(), []byte("ignored"))
}

// TestSynctestVirtualTime shows that a Network created inside a
// testing/synctest bubble runs on the bubble's fake clock: long delays and
// mapping timeouts take no real time, and Close leaves no goroutine behind
// (synctest.Test fails otherwise).
func TestSynctestVirtualTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(Options{})
		defer n.Close()
		nat := n.NewNAT(ip("192.0.2.1"), NATOptions{MappingTimeout: time.Minute})
		client := natListen(t, nat, "10.0.0.2:5000")
		server := listen(t, n, "198.18.0.1:443")
		n.SetLink(nat.Public(), ip("198.18.0.1"), Link{Delay: 10 * time.Second})

		start := time.Now()
		send(t, client, server.LocalAddrPort(), "slow")
		buf := make([]byte, 10)
		_, _, err := server.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 10*time.Second {
			t.Fatalf("delay took %v of virtual time, want 10s", d)
		}
		time.Sleep(time.Minute)
		if _, ok := nat.Mapping(client.LocalAddrPort(), server.LocalAddrPort()); ok {
			t.Fatal("mapping alive after its timeout")
		}
		// A blocked reader is durably blocked: a deadline wakes it on time.
		start = time.Now()
		server.SetReadDeadline(start.Add(time.Hour))
		if _, _, err := server.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) != time.Hour {
			t.Fatalf("read returned %v after %v", err, time.Since(start))
		}
	})
}

// TestConcurrentUse runs traffic while links, NAT mappings and conns change,
// for the race detector.
func TestConcurrentUse(t *testing.T) {
	n := newNet(t, Options{Seed: 7})
	server := listen(t, n, "198.18.0.1:443")
	nat := n.NewNAT(ip("192.0.2.1"), NATOptions{Kind: PortRestrictedCone, MappingTimeout: 5 * time.Millisecond})
	var taps atomic.Int64
	defer n.Tap(func(PacketInfo) { taps.Add(1) })()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	// Server echoes everything.
	wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			k, from, err := server.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			server.WriteToUDPAddrPort(buf[:k], from)
		}
	})
	for i := range 4 {
		c := natListen(t, nat, fmt.Sprintf("10.0.0.%d:5000", i+2))
		wg.Go(func() {
			buf := make([]byte, 1500)
			for {
				c.SetReadDeadline(time.Now().Add(time.Millisecond))
				c.ReadFromUDPAddrPort(buf)
				select {
				case <-stop:
					c.Close()
					return
				default:
				}
				c.WriteToUDPAddrPort(buf[:100], server.LocalAddrPort())
			}
		})
	}
	wg.Go(func() {
		for k := 0; ; k++ {
			select {
			case <-stop:
				return
			default:
			}
			nat.Rebind()
			n.SetLink(nat.Public(), ip("198.18.0.1"), Link{Delay: time.Duration(k%3) * time.Millisecond, Jitter: time.Millisecond, Reorder: 0.1, Loss: 0.05})
			n.SetHostLink(ip("198.18.0.1"), Link{Down: k%5 == 0})
			nat.Mapping(ap("10.0.0.2:5000"), server.LocalAddrPort())
			time.Sleep(time.Millisecond)
		}
	})
	time.Sleep(200 * time.Millisecond)
	close(stop)
	server.Close()
	wg.Wait()
	if taps.Load() == 0 {
		t.Fatal("no traffic")
	}
}

// BenchmarkThroughput moves 1200-byte packets from one Conn to another,
// with a reader goroutine and at most 1024 packets in flight.
func BenchmarkThroughput(b *testing.B) {
	cases := []struct {
		name string
		link Link
		nat  bool
	}{
		{name: "direct"},
		{name: "nat", nat: true},
		{name: "delay1ms", link: Link{Delay: time.Millisecond}},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			n := New(Options{})
			defer n.Close()
			dst := listen(b, n, "198.18.0.2:443")
			var src *Conn
			if bc.nat {
				src = natListen(b, n.NewNAT(ip("192.0.2.1"), NATOptions{}), "10.0.0.2:5000")
			} else {
				src = listen(b, n, "198.18.0.1:5000")
			}
			n.SetHostLink(ip("198.18.0.2"), bc.link)

			const window = 1024
			var received atomic.Int64
			done := make(chan struct{})
			go func() {
				defer close(done)
				buf := make([]byte, 1500)
				for received.Load() < int64(b.N) {
					if _, _, err := dst.ReadFrom(buf); err != nil {
						return
					}
					received.Add(1)
				}
			}()
			payload := make([]byte, 1200)
			to := net.UDPAddrFromAddrPort(dst.LocalAddrPort())
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				for int64(i)-received.Load() >= window {
					runtime.Gosched()
				}
				if _, err := src.WriteTo(payload, to); err != nil {
					b.Fatal(err)
				}
			}
			<-done
			b.StopTimer()
			if s := dst.Stats(); s.PacketsDropped != 0 {
				b.Fatalf("dropped %d packets", s.PacketsDropped)
			}
		})
	}
}
