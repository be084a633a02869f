package transport

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"ferry/internal/netlab"
)

// TestTCPPortDialsInItsNamespace opens a port inside a network namespace
// and dials from it on the test's own goroutine, which is not in that
// namespace, to a listener that exists only inside it: the connection
// reaches that listener, from the port's own port number, because the
// port makes its sockets in its namespace whoever dials.
func TestTCPPortDialsInItsNamespace(t *testing.T) {
	ns := netlab.NewNamespace(t)
	var p *tcpPort
	var ln net.Listener
	err := ns.Do(func() (err error) {
		if p, err = newTCPPort(context.Background(), "127.0.0.1:0"); err != nil {
			return err
		}
		ln, err = net.Listen("tcp4", "127.0.0.1:0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testGuard)
	defer cancel()
	c, err := p.DialFrom(ctx, ln.Addr().(*net.TCPAddr).AddrPort())
	if err != nil {
		t.Fatalf("dial from the namespace's port: %v", err)
	}
	defer c.Close()
	in, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if got := in.RemoteAddr().(*net.TCPAddr).AddrPort(); got != p.Addr() {
		t.Fatalf("the namespace's listener saw %v, want the port %v", got, p.Addr())
	}
	noPunchGoroutines(t)
}

// startAddrEcho runs, in the lab's internet namespace, a TCP server that
// writes back the address it sees a connection come from (what a
// rendezvous server reports) and closes it.
func startAddrEcho(t *testing.T, lab *netlab.Lab) netip.AddrPort {
	t.Helper()
	var ln net.Listener
	err := lab.Internet.Do(func() (err error) {
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(lab.ServerIP(), 0).String())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s\n", c.RemoteAddr())
			c.Close()
		}
	})
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// publicAddr asks the address echo server, over a connection from p, how
// p is seen from the internet.
func publicAddr(ctx context.Context, p *tcpPort, server netip.AddrPort) (netip.AddrPort, error) {
	c, err := p.DialFrom(ctx, server)
	if err != nil {
		return netip.AddrPort{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testGuard))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.ParseAddrPort(strings.TrimSpace(line))
}

// watchSYNs reports, once each, the initial sequence numbers of the SYNs
// from src to dst that cross the lab's internet namespace (seen with a
// packet socket there): each new one is a new connect attempt that has
// left src's router. It stops when t ends.
func watchSYNs(t *testing.T, lab *netlab.Lab, src, dst netip.AddrPort) <-chan uint32 {
	t.Helper()
	var f *os.File
	err := lab.Internet.Do(func() error {
		proto := int(binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, unix.ETH_P_IP))) // htons
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		f = os.NewFile(uintptr(fd), "packet") // non-blocking: Close unblocks Read
		return nil
	})
	if err != nil {
		t.Fatalf("packet socket: %v", err)
	}
	seqs := make(chan uint32, 64)
	var wg sync.WaitGroup
	t.Cleanup(func() { f.Close(); wg.Wait() })
	wg.Go(func() {
		seen := map[uint32]bool{}
		buf := make([]byte, 128) // the IP and TCP headers are enough
		for {
			n, err := f.Read(buf)
			if err != nil {
				return
			}
			if seq, ok := synSeq(buf[:n], src, dst); ok && !seen[seq] {
				seen[seq] = true
				select {
				case seqs <- seq:
				default:
				}
			}
		}
	})
	return seqs
}

// synSeq returns the sequence number of p if it is an IPv4 TCP SYN
// (without ACK) from src to dst.
func synSeq(p []byte, src, dst netip.AddrPort) (uint32, bool) {
	if len(p) < 20 || p[0]>>4 != 4 || p[9] != unix.IPPROTO_TCP {
		return 0, false
	}
	ihl := int(p[0]&0x0f) * 4
	if len(p) < ihl+20 {
		return 0, false
	}
	tcp := p[ihl:]
	from := netip.AddrPortFrom(netip.AddrFrom4([4]byte(p[12:16])), binary.BigEndian.Uint16(tcp[0:2]))
	to := netip.AddrPortFrom(netip.AddrFrom4([4]byte(p[16:20])), binary.BigEndian.Uint16(tcp[2:4]))
	const syn, ack = 0x02, 0x10
	if from != src || to != dst || tcp[13]&(syn|ack) != syn {
		return 0, false
	}
	return binary.BigEndian.Uint32(tcp[4:8]), true
}

// TestPunchTCPNATLab punches TCP between two hosts behind port-restricted
// NATs whose routers drop all UDP, in the kernel NAT lab, six rounds on
// fresh ports. Each host opens its port inside its namespace and learns
// its public address from a server on the lab's internet over a
// connection from that port (dialed from the test's goroutine: the port
// dials in its own namespace); then both punch towards the other's public
// and private addresses, each punch run inside its host's namespace (its
// own goroutines are not: the port takes care of that). Rounds differ in
// when b starts, the moment told by a's SYNs crossing the internet:
//
//   - at once with a;
//   - once a's first SYN has crossed: b's router, which has seen nothing
//     from b, drops it, and b's SYN then meets a's waiting connect;
//   - once the SYN of a's second attempt has crossed, the first having
//     timed out: a peer more than an attempt late.
//
// Then framed datagrams cross the connection both ways through
// tcpCarriers.
func TestPunchTCPNATLab(t *testing.T) {
	t.Parallel()
	lab := netlab.NewLab(t, netlab.LabConfig{})
	echo := startAddrEcho(t, lab)
	spec := netlab.NATSpec{Kind: netlab.PortRestricted, DropUDP: true}
	a, b := lab.AddHost(t, "a", spec), lab.AddHost(t, "b", spec)
	type side struct {
		h       *netlab.Host
		port    *tcpPort
		public  netip.AddrPort
		auth    *testAuth
		remotes []netip.AddrPort
		hooks   tcpPunchHooks
		res     punchResult
		doErr   error
		carrier *tcpCarrier

		started, ended time.Time
	}
	modes := []string{"at once", "b after a's first SYN crossed", "b after a's second attempt's SYN crossed"}
	for round := range 2 * len(modes) {
		mode := round % len(modes)
		authA, authB := testAuthPair()
		sides := []*side{{h: a, auth: authA}, {h: b, auth: authB}}
		ctx, cancel := context.WithTimeout(context.Background(), testGuard)
		defer cancel()
		for _, s := range sides {
			err := s.h.NS.Do(func() (err error) {
				s.port, err = newTCPPort(ctx, "0.0.0.0:0")
				return err
			})
			if err != nil {
				t.Fatalf("%s: %v", s.h.Name, err)
			}
			t.Cleanup(func() { s.port.Close() })
			if s.public, err = publicAddr(ctx, s.port, echo); err != nil {
				t.Fatalf("%s: public address: %v", s.h.Name, err)
			}
			if want := netip.AddrPortFrom(s.h.Router(0).PublicIP(), s.port.Addr().Port()); s.public != want {
				t.Fatalf("%s: seen as %v, want %v", s.h.Name, s.public, want)
			}
		}
		sa, sb := sides[0], sides[1]
		sa.remotes = []netip.AddrPort{sb.public, netip.AddrPortFrom(b.IP(0), sb.port.Addr().Port())}
		sb.remotes = []netip.AddrPort{sa.public, netip.AddrPortFrom(a.IP(0), sa.port.Addr().Port())}
		synsA := watchSYNs(t, lab, sa.public, sb.public)

		var logMu sync.Mutex
		var failures []string // every failed attempt, reported if the round fails
		roundStart := time.Now()
		for _, s := range sides {
			s.hooks.dialFailed = func(_ netip.AddrPort, err error) {
				logMu.Lock()
				failures = append(failures, fmt.Sprintf("%v %s: %v", time.Since(roundStart).Round(time.Millisecond), s.h.Name, err))
				logMu.Unlock()
			}
			s.hooks.won = func(how string, _ net.Conn) { s.res.how = how }
		}
		var wg sync.WaitGroup
		run := func(s *side) {
			s.started = time.Now()
			wg.Go(func() {
				s.doErr = s.h.NS.Do(func() error {
					s.res.c, s.res.err = punchTCPWith(ctx, s.port, s.remotes, s.auth.auth, &s.hooks)
					s.ended = time.Now()
					return nil
				})
			})
		}
		run(sa)
		for range mode { // mode 1: a's first attempt's SYN; mode 2: its second's
			select {
			case <-synsA:
			case <-ctx.Done():
			}
		}
		run(sb)
		wg.Wait()
		cancel()
		for _, s := range sides {
			if s.res.c != nil {
				t.Cleanup(func() { s.res.c.Close() })
			}
			if s.doErr != nil || s.res.err != nil {
				t.Errorf("round %d (%s): %s: %v %v", round, modes[mode], s.h.Name, s.doErr, s.res.err)
			}
		}
		if t.Failed() {
			t.Fatalf("failed attempts:\n%s", strings.Join(failures, "\n"))
		}
		for _, s := range sides {
			s.carrier = newTCPCarrier(s.res.c)
		}
		// Through the NATs each end sees the other's public address.
		for i, s := range sides {
			if peer := sides[1-i]; s.carrier.RemoteAddr() != peer.public {
				t.Fatalf("round %d: %s's connection goes to %v, want %s's public %v", round, s.h.Name, s.carrier.RemoteAddr(), peer.h.Name, peer.public)
			}
		}
		exchangeDatagrams(t, sa.carrier, sb.carrier, []int{1, 2, 100, 1200, 1452, MaxRelayFrame, 700, 1})
		t.Logf("round %d (%s): a %v, b %v: a %s, b %s; connected %v after b started, %v after a",
			round, modes[mode], sa.public, sb.public, sa.res.how, sb.res.how,
			maxTime(sa.ended, sb.ended).Sub(sb.started).Round(time.Microsecond),
			maxTime(sa.ended, sb.ended).Sub(sa.started).Round(time.Microsecond))
		for _, s := range sides {
			s.carrier.Close()
		}
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
