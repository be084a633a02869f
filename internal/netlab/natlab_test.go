//go:build linux

package netlab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Probe timing. Every link in the lab is a veth between namespaces, where
// a round trip takes well under a millisecond, so these are generous.
const (
	// probeTimeout is how long a probe waits for one reply.
	probeTimeout = 200 * time.Millisecond
	// probeTries bounds a probe's retransmissions.
	probeTries = 5
	// filterGrace is how long a filtering probe keeps listening after
	// the reflector's last packet, for earlier packets that took another
	// CPU's backlog and arrive after it.
	filterGrace = 100 * time.Millisecond
	// punchInterval paces punch packets, as a real client would.
	punchInterval = 50 * time.Millisecond
	// punchStagger is how much later the second peer starts punching,
	// so the first peer's early packets reach the second NAT before it
	// has sent anything (the case the router firewall is for).
	punchStagger = 300 * time.Millisecond
	// punchWindow is how long both peers punch before a pair counts as
	// failed; successes take a few milliseconds after the second start.
	punchWindow = 1500 * time.Millisecond
	// tcpAttemptTimeout bounds one simultaneous-open attempt; it must
	// exceed a round trip plus the handshake (measured with an 80 ms
	// round trip: 0.5 s failed every time, 1.5 s always succeeded).
	tcpAttemptTimeout = 1500 * time.Millisecond
	// tcpPunchDeadline bounds a whole TCP punching round.
	tcpPunchDeadline = 6 * time.Second
)

// reflectorPort is the reflector's UDP and TCP port on both addresses.
const reflectorPort = 3478

// reflector is a tiny STUN-like server in the lab's internet namespace,
// on three UDP sockets: s[0] ServerIP:3478, s[1] ServerIP:3479, s[2]
// AltServerIP:3478, and TCP on ServerIP:3478. "WHO" on any UDP socket is
// answered from that socket with "SEEN addr:port", the sender's address as
// the reflector sees it; "ALT" on s[0] is answered with "FROM1" from s[1],
// "FROM2" from s[2] and then "DONE" from s[0], to test NAT filtering. A
// TCP connection gets "SEEN addr:port\n" and is closed.
type reflector struct {
	s    [3]*net.UDPConn
	addr [3]netip.AddrPort
	tcp  net.Listener
}

func startReflector(t *testing.T, lab *Lab) *reflector {
	t.Helper()
	r := &reflector{addr: [3]netip.AddrPort{
		netip.AddrPortFrom(lab.ServerIP(), reflectorPort),
		netip.AddrPortFrom(lab.ServerIP(), reflectorPort+1),
		netip.AddrPortFrom(lab.AltServerIP(), reflectorPort),
	}}
	err := lab.Internet.Do(func() error {
		for i, a := range r.addr {
			c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(a))
			if err != nil {
				return err
			}
			r.s[i] = c
		}
		var err error
		r.tcp, err = net.Listen("tcp4", r.addr[0].String())
		return err
	})
	var wg sync.WaitGroup
	t.Cleanup(func() {
		for _, c := range r.s {
			if c != nil {
				c.Close()
			}
		}
		if r.tcp != nil {
			r.tcp.Close()
		}
		wg.Wait()
	})
	if err != nil {
		t.Fatalf("reflector: %v", err)
	}
	for i, c := range r.s {
		wg.Go(func() {
			buf := make([]byte, 1500)
			for {
				n, from, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				switch string(buf[:n]) {
				case "WHO":
					c.WriteToUDPAddrPort([]byte("SEEN "+from.String()), from)
				case "ALT":
					if i == 0 {
						r.s[1].WriteToUDPAddrPort([]byte("FROM1"), from)
						r.s[2].WriteToUDPAddrPort([]byte("FROM2"), from)
						r.s[0].WriteToUDPAddrPort([]byte("DONE"), from)
					}
				}
			}
		})
	}
	wg.Go(func() {
		for {
			c, err := r.tcp.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "SEEN %s\n", c.RemoteAddr())
			c.Close()
		}
	})
	return r
}

// udpIn opens an unconnected UDP socket on a port the kernel picks,
// inside ns.
func udpIn(t *testing.T, ns *Namespace) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := ns.Do(func() (err error) {
		c, err = net.ListenUDP("udp4", &net.UDPAddr{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// who asks the reflector socket at server how it sees c, sending up to
// tries requests.
func who(c *net.UDPConn, server netip.AddrPort, tries int) (netip.AddrPort, error) {
	buf := make([]byte, 1500)
	for range tries {
		if _, err := c.WriteToUDPAddrPort([]byte("WHO"), server); err != nil {
			return netip.AddrPort{}, err
		}
		c.SetReadDeadline(time.Now().Add(probeTimeout))
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				break // timed out: ask again
			}
			seen, ok := strings.CutPrefix(string(buf[:n]), "SEEN ")
			if from != server || !ok {
				continue
			}
			c.SetReadDeadline(time.Time{})
			return netip.ParseAddrPort(seen)
		}
	}
	c.SetReadDeadline(time.Time{})
	return netip.AddrPort{}, fmt.Errorf("no answer from %v after %d tries", server, tries)
}

// filtering asks the reflector to send to c from its other port (FROM1)
// and its other address (FROM2) and reports which got through c's NAT.
// c should have sent to r.s[0] only.
func filtering(c *net.UDPConn, r *reflector) (otherPort, otherAddr bool, err error) {
	buf := make([]byte, 1500)
	for range probeTries {
		if _, err := c.WriteToUDPAddrPort([]byte("ALT"), r.addr[0]); err != nil {
			return false, false, err
		}
		done := false
		c.SetReadDeadline(time.Now().Add(probeTimeout))
		for {
			n, _, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				break
			}
			switch string(buf[:n]) {
			case "FROM1":
				otherPort = true
			case "FROM2":
				otherAddr = true
			case "DONE":
				if !done {
					done = true
					c.SetReadDeadline(time.Now().Add(filterGrace))
				}
			}
		}
		if done {
			c.SetReadDeadline(time.Time{})
			return otherPort, otherAddr, nil
		}
	}
	return false, false, errors.New("no DONE from the reflector")
}

// TestNATLabKinds checks each NAT kind's mapping and filtering with plain
// UDP sockets in the hosts' namespaces against a reflector in the
// internet namespace, and that a host without NAT is seen as itself.
func TestNATLabKinds(t *testing.T) {
	t.Parallel()
	lab := NewLab(t, LabConfig{})
	r := startReflector(t, lab)
	hosts := map[NATKind]*Host{}
	for _, k := range NATKinds {
		hosts[k] = lab.AddHost(t, k.String(), NATSpec{Kind: k})
	}
	direct := lab.AddHost(t, "public")
	for _, k := range NATKinds {
		t.Run(k.String(), func(t *testing.T) {
			h := hosts[k]
			// Mapping: one socket, three destinations.
			c := udpIn(t, h.NS)
			local := netip.MustParseAddrPort(c.LocalAddr().String()).Port()
			var ports []uint16
			for _, s := range r.addr {
				seen, err := who(c, s, probeTries)
				if err != nil {
					t.Fatal(err)
				}
				if seen.Addr() != h.Router(0).PublicIP() {
					t.Fatalf("seen from %v, want the router's %v", seen, h.Router(0).PublicIP())
				}
				ports = append(ports, seen.Port())
			}
			if k == Symmetric {
				if ports[0] == ports[1] || ports[1] == ports[2] || ports[0] == ports[2] {
					t.Errorf("symmetric NAT reused a port across destinations: %v", ports)
				}
			} else if ports[0] != local || ports[1] != local || ports[2] != local {
				t.Errorf("cone NAT mapped local port %d to %v, want the same port everywhere", local, ports)
			}
			// Filtering: a fresh socket that has contacted s[0] only.
			c = udpIn(t, h.NS)
			if _, err := who(c, r.addr[0], probeTries); err != nil {
				t.Fatal(err)
			}
			otherPort, otherAddr, err := filtering(c, r)
			if err != nil {
				t.Fatal(err)
			}
			wantPort, wantAddr := k == FullCone || k == AddressRestricted, k == FullCone
			if otherPort != wantPort || otherAddr != wantAddr {
				t.Errorf("from the contacted address's other port: got %v, want %v; from an uncontacted address: got %v, want %v",
					otherPort, wantPort, otherAddr, wantAddr)
			}
			t.Logf("mapping ports %v (local %d); admits other port %v, other address %v", ports, local, otherPort, otherAddr)
		})
	}
	t.Run("no-NAT", func(t *testing.T) {
		c := udpIn(t, direct.NS)
		seen, err := who(c, r.addr[0], probeTries)
		if err != nil {
			t.Fatal(err)
		}
		local := netip.MustParseAddrPort(c.LocalAddr().String()).Port()
		if want := netip.AddrPortFrom(direct.IP(0), local); seen != want {
			t.Errorf("seen as %v, want %v", seen, want)
		}
	})
}

// punchPeer is one side of a UDP punching attempt. It answers every
// "PUNCH" with an "ACK" to the address it came from (and punches that
// address too from then on, which is how a cone peer reaches a symmetric
// one), and is done when an "ACK" arrives.
type punchPeer struct {
	c     *net.UDPConn
	mu    sync.Mutex
	to    []netip.AddrPort
	acked chan struct{}
	once  sync.Once
}

func (p *punchPeer) read() {
	buf := make([]byte, 1500)
	for {
		n, from, err := p.c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		switch string(buf[:n]) {
		case "PUNCH":
			p.c.WriteToUDPAddrPort([]byte("ACK"), from)
			p.mu.Lock()
			if !slices.Contains(p.to, from) {
				p.to = append(p.to, from)
			}
			p.mu.Unlock()
		case "ACK":
			p.once.Do(func() { close(p.acked) })
		}
	}
}

func (p *punchPeer) punch(ctx context.Context, delay time.Duration) {
	select {
	case <-time.After(delay):
	case <-ctx.Done():
		return
	}
	tick := time.NewTicker(punchInterval)
	defer tick.Stop()
	for {
		p.mu.Lock()
		to := slices.Clone(p.to)
		p.mu.Unlock()
		for _, a := range to {
			p.c.WriteToUDPAddrPort([]byte("PUNCH"), a)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// punchUDP has a and b learn their public addresses from the reflector
// and punch towards each other, b starting punchStagger after a. It
// reports whether both heard the other's answer within the window, and
// when (counted from b's start).
func punchUDP(ca, cb *net.UDPConn, r *reflector) (ok bool, took time.Duration, err error) {
	ma, err := who(ca, r.addr[0], probeTries)
	if err != nil {
		return false, 0, err
	}
	mb, err := who(cb, r.addr[0], probeTries)
	if err != nil {
		return false, 0, err
	}
	pa := &punchPeer{c: ca, to: []netip.AddrPort{mb}, acked: make(chan struct{})}
	pb := &punchPeer{c: cb, to: []netip.AddrPort{ma}, acked: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), punchStagger+punchWindow)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(pa.read)
	wg.Go(pb.read)
	wg.Go(func() { pa.punch(ctx, 0) })
	wg.Go(func() { pb.punch(ctx, punchStagger) })
	start := time.Now().Add(punchStagger)
	for _, ch := range []chan struct{}{pa.acked, pb.acked} {
		select {
		case <-ch:
		case <-ctx.Done():
		}
	}
	ok = ctx.Err() == nil
	took = time.Since(start)
	cancel()
	ca.Close()
	cb.Close()
	wg.Wait()
	return ok, took, nil
}

// punchable is the theory the lab must reproduce: UDP punching fails only
// when one side is symmetric and the other filters on ports (so the
// symmetric side's fresh port for the peer is not admitted).
func punchable(a, b NATKind) bool {
	strict := func(k NATKind) bool { return k == PortRestricted || k == Symmetric }
	return !(a == Symmetric && strict(b) || b == Symmetric && strict(a))
}

// TestNATLabPunchMatrix punches UDP between every ordered pair of NAT
// kinds, each pair on two fresh hosts, all pairs at once: it must succeed
// exactly where theory says, which is every pair except port-restricted
// with symmetric and symmetric with symmetric.
func TestNATLabPunchMatrix(t *testing.T) {
	t.Parallel()
	start := time.Now()
	lab := NewLab(t, LabConfig{})
	r := startReflector(t, lab)
	type pair struct {
		a, b   NATKind
		ca, cb *net.UDPConn
		ok     bool
		took   time.Duration
		err    error
	}
	var pairs []*pair
	for _, a := range NATKinds {
		for _, b := range NATKinds {
			p := &pair{a: a, b: b}
			ha := lab.AddHost(t, a.String()+"-first", NATSpec{Kind: a})
			hb := lab.AddHost(t, b.String()+"-second", NATSpec{Kind: b})
			p.ca, p.cb = udpIn(t, ha.NS), udpIn(t, hb.NS)
			pairs = append(pairs, p)
		}
	}
	t.Logf("lab of %d namespaces built in %v", len(lab.names), time.Since(start).Round(time.Millisecond))
	var wg sync.WaitGroup
	for _, p := range pairs {
		wg.Go(func() { p.ok, p.took, p.err = punchUDP(p.ca, p.cb, r) })
	}
	wg.Wait()
	var table strings.Builder
	fmt.Fprintf(&table, "%-20s", "first \\ second")
	for _, b := range NATKinds {
		fmt.Fprintf(&table, " %-20s", b)
	}
	for i, p := range pairs {
		if i%len(NATKinds) == 0 {
			fmt.Fprintf(&table, "\n%-20s", p.a)
		}
		cell := "fail"
		if p.ok {
			cell = fmt.Sprintf("ok %v", p.took.Round(time.Millisecond))
		}
		fmt.Fprintf(&table, " %-20s", cell)
		if p.err != nil {
			t.Errorf("%v then %v: %v", p.a, p.b, p.err)
		} else if p.ok != punchable(p.a, p.b) {
			t.Errorf("%v then %v: punched %v, want %v", p.a, p.b, p.ok, punchable(p.a, p.b))
		}
	}
	t.Logf("UDP punching (second peer starts %v after the first, window %v):\n%s", punchStagger, punchWindow, table.String())
}

// reuse sets SO_REUSEADDR and SO_REUSEPORT, so a listener and outgoing
// connections can share one local port.
func reuse(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		if serr == nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// dialFrom connects from local to remote inside ns with the reuse options.
func dialFrom(ctx context.Context, ns *Namespace, local, remote netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(func() (err error) {
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(local), Control: reuse, Timeout: timeout}
		c, err = d.DialContext(ctx, "tcp4", remote.String())
		return err
	})
	return c, err
}

// tcpPeer is one side of a TCP simultaneous open.
type tcpPeer struct {
	h      *Host
	ln     net.Listener
	local  netip.AddrPort // the listener's port, on the wildcard address
	mapped netip.AddrPort // as the reflector saw a connection from it
}

func newTCPPeer(t *testing.T, h *Host, r *reflector) *tcpPeer {
	t.Helper()
	p := &tcpPeer{h: h}
	err := h.NS.Do(func() (err error) {
		lc := net.ListenConfig{Control: reuse}
		p.ln, err = lc.Listen(context.Background(), "tcp4", "0.0.0.0:0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.ln.Close() })
	p.local = netip.MustParseAddrPort(p.ln.Addr().String())
	c, err := dialFrom(context.Background(), h.NS, p.local, r.addr[0], time.Second)
	if err != nil {
		t.Fatalf("%s: reflector over TCP: %v", h.Name, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	seen, ok := strings.CutPrefix(strings.TrimSpace(line), "SEEN ")
	if err != nil || !ok {
		t.Fatalf("%s: reflector over TCP said %q, %v", h.Name, line, err)
	}
	p.mapped = netip.MustParseAddrPort(seen)
	return p
}

// open connects to peer by simultaneous open: it dials from its own
// listening port, retrying on refusal and timeouts, and takes whichever
// comes first, an outgoing connection or an accepted one.
func (p *tcpPeer) open(ctx context.Context, peer netip.AddrPort, delay time.Duration) (c net.Conn, how string, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		c   net.Conn
		how string
	}
	got := make(chan result, 2)
	go func() {
		c, err := p.ln.Accept()
		if err == nil {
			got <- result{c, "accepted"}
		}
	}()
	go func() {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return
		}
		for attempt := 1; ctx.Err() == nil; attempt++ {
			start := time.Now()
			c, err := dialFrom(ctx, p.h.NS, p.local, peer, tcpAttemptTimeout)
			if err == nil {
				got <- result{c, fmt.Sprintf("connected (attempt %d)", attempt)}
				return
			}
			// A refusal comes back at once; pace the retries.
			select {
			case <-time.After(max(0, 100*time.Millisecond-time.Since(start))):
			case <-ctx.Done():
			}
		}
	}()
	select {
	case r := <-got:
		// Stop the other half; a connection it makes later is dropped
		// with the listener.
		return r.c, r.how, nil
	case <-ctx.Done():
		return nil, "", ctx.Err()
	}
}

// TestNATLabTCPPunch opens TCP connections by simultaneous open between
// two hosts behind port-restricted NATs whose routers drop all UDP (after
// checking that they do), three rounds, each on new ports.
func TestNATLabTCPPunch(t *testing.T) {
	t.Parallel()
	lab := NewLab(t, LabConfig{})
	r := startReflector(t, lab)
	spec := NATSpec{Kind: PortRestricted, DropUDP: true}
	a, b := lab.AddHost(t, "a", spec), lab.AddHost(t, "b", spec)
	if _, err := who(udpIn(t, a.NS), r.addr[0], 2); err == nil {
		t.Fatal("UDP got through a router that drops UDP")
	}
	for round := range 3 {
		pa, pb := newTCPPeer(t, a, r), newTCPPeer(t, b, r)
		if pa.mapped != netip.AddrPortFrom(a.Router(0).PublicIP(), pa.local.Port()) {
			t.Fatalf("a mapped to %v, want the router's address and port %d", pa.mapped, pa.local.Port())
		}
		ctx, cancel := context.WithTimeout(context.Background(), tcpPunchDeadline)
		type outcome struct {
			c   net.Conn
			how string
			err error
		}
		var oa, ob outcome
		var wg sync.WaitGroup
		start := time.Now()
		wg.Go(func() { oa.c, oa.how, oa.err = pa.open(ctx, pb.mapped, 0) })
		wg.Go(func() { ob.c, ob.how, ob.err = pb.open(ctx, pa.mapped, punchStagger) })
		wg.Wait()
		took := time.Since(start)
		cancel()
		if oa.err != nil || ob.err != nil {
			t.Fatalf("round %d: a: %v, b: %v", round, oa.err, ob.err)
		}
		// Each side says hello over its connection and reads the other's.
		fmt.Fprintf(oa.c, "HELLO a\n")
		fmt.Fprintf(ob.c, "HELLO b\n")
		for _, x := range []struct {
			c    net.Conn
			want string
		}{{oa.c, "HELLO b"}, {ob.c, "HELLO a"}} {
			x.c.SetDeadline(time.Now().Add(time.Second))
			line, err := bufio.NewReader(x.c).ReadString('\n')
			if err != nil || strings.TrimSpace(line) != x.want {
				t.Fatalf("round %d: read %q, %v; want %q", round, line, err, x.want)
			}
			x.c.Close()
		}
		t.Logf("round %d: a %s, b %s, %v after a started", round, oa.how, ob.how, took.Round(time.Millisecond))
	}
}

// TestNATLabRebindAndSwitch follows one unconnected socket of a host with
// two uplinks through a router rebind, a move to the second uplink, the
// loss of the first and a move back.
func TestNATLabRebindAndSwitch(t *testing.T) {
	t.Parallel()
	lab := NewLab(t, LabConfig{})
	r := startReflector(t, lab)
	h := lab.AddHost(t, "roamer", NATSpec{Kind: PortRestricted}, NATSpec{Kind: FullCone})
	c := udpIn(t, h.NS)
	local := netip.MustParseAddrPort(c.LocalAddr().String()).Port()
	seen := func(step string) netip.AddrPort {
		t.Helper()
		start := time.Now()
		s, err := who(c, r.addr[0], probeTries)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		t.Logf("%s: seen as %v after %v", step, s, time.Since(start).Round(time.Microsecond))
		return s
	}
	first := seen("start")
	if want := netip.AddrPortFrom(h.Router(0).PublicIP(), local); first != want {
		t.Fatalf("seen as %v, want %v", first, want)
	}
	h.Router(0).Rebind(t)
	rebound := seen("after Rebind")
	if rebound.Addr() != first.Addr() || rebound.Port() == first.Port() || rebound.Port() < 1024 || rebound.Port() > 32023 {
		t.Fatalf("after Rebind seen as %v, want %v with a new port in 1024-32023", rebound, first.Addr())
	}
	h.Router(0).Rebind(t)
	if again := seen("after a second Rebind"); again.Port() == rebound.Port() {
		t.Fatalf("second Rebind kept port %d", again.Port())
	}
	h.SwitchUplink(t, 1)
	if s := seen("on uplink 1"); s != netip.AddrPortFrom(h.Router(1).PublicIP(), local) {
		t.Fatalf("on uplink 1 seen as %v, want %v:%d", s, h.Router(1).PublicIP(), local)
	}
	h.SetUplinkUp(t, 0, false)
	if s := seen("with uplink 0 down"); s.Addr() != h.Router(1).PublicIP() {
		t.Fatalf("with uplink 0 down seen as %v", s)
	}
	h.SetUplinkUp(t, 0, true)
	h.SwitchUplink(t, 0)
	if s := seen("back on uplink 0"); s.Addr() != h.Router(0).PublicIP() {
		t.Fatalf("back on uplink 0 seen as %v, want %v", s, h.Router(0).PublicIP())
	}
	if h.ActiveUplink() != 0 || h.Uplinks() != 2 || h.IP(1) != netip.MustParseAddr("10.1.1.2") {
		t.Fatalf("ActiveUplink %d, Uplinks %d, IP(1) %v", h.ActiveUplink(), h.Uplinks(), h.IP(1))
	}
}

// TestNATLabIsolationAndTeardown checks that a lab adds no interface to
// the test's own namespace and changes none of its forwarding, that Rate
// and LossPercent are applied, that a dead run's namespaces are swept, and
// that every namespace is gone, quickly, when the test ends.
func TestNATLabIsolationAndTeardown(t *testing.T) {
	RequireRoot(t)
	requireNFT(t)
	before := interfaceNames(t)
	forward := func() string {
		b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	forwardBefore := forward()
	// A namespace of a lab whose process died before its cleanup ran:
	// the next NewLab deletes it.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := fmt.Sprintf("%s%d-%s", labPrefix, dead.Process.Pid, "deadbeef")
	run(t, "ip", "netns", "add", stale)
	t.Cleanup(func() { deleteNamespaces([]string{stale}) })
	var names []string
	var teardown time.Duration
	ok := t.Run("lab", func(t *testing.T) {
		var start time.Time
		t.Cleanup(func() { teardown = time.Since(start) }) // runs last
		lab := NewLab(t, LabConfig{Rate: "50mbit", LossPercent: 100})
		r := startReflector(t, lab)
		h := lab.AddHost(t, "nat", NATSpec{Kind: PortRestricted}, NATSpec{Kind: Symmetric})
		lab.AddHost(t, "public")
		names = slices.Clone(lab.names)
		t.Cleanup(func() { start = time.Now() }) // runs first
		if after := interfaceNames(t); !slices.Equal(before, after) {
			t.Errorf("the test's namespace had interfaces %v, now %v", before, after)
		}
		if f := forward(); f != forwardBefore {
			t.Errorf("the test's namespace had ip_forward %q, now %q", forwardBefore, f)
		}
		if _, err := os.Stat(netnsDir + "/" + stale); err == nil {
			t.Errorf("stale namespace %s of a dead process not swept", stale)
		}
		out, err := exec.Command("tc", "-n", h.Router(0).NS.Name, "qdisc", "show", "dev", "wan").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "tbf") {
			t.Errorf("no tbf qdisc on the router's WAN: %v\n%s", err, out)
		}
		if _, err := who(udpIn(t, h.NS), r.addr[0], 2); err == nil {
			t.Error("a packet crossed a link with 100% loss")
		}
	})
	if !ok {
		return
	}
	for _, n := range names {
		if _, err := os.Stat(netnsDir + "/" + n); err == nil {
			t.Errorf("namespace %s left behind", n)
		}
	}
	if len(names) != 5 {
		t.Errorf("lab made %d namespaces, want 5 (internet, two hosts, two routers)", len(names))
	}
	t.Logf("tear-down of %d namespaces took %v", len(names), teardown.Round(time.Millisecond))
	if teardown > time.Second {
		t.Errorf("tear-down took %v", teardown)
	}
}

func interfaceNames(t *testing.T) []string {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range ifs {
		names = append(names, i.Name)
	}
	slices.Sort(names)
	return names
}
