package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"ferry/internal/netlab"
)

// natLab is a NAT lab with `ferry rendezvous` (mailbox, STUN and relay)
// running in its internet namespace.
type natLab struct {
	*netlab.Lab
	rendezvous string
	hosts      int
}

var labListeningRE = regexp.MustCompile(`tcp=(198\.18\.0\.10:\d+)`)

func newNATLab(t *testing.T) *natLab {
	t.Helper()
	lab := netlab.NewLab(t, netlab.LabConfig{})
	listen := netip.AddrPortFrom(lab.ServerIP(), 7887).String()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cmd := lab.Internet.Command(ctx, ferryBinary, "rendezvous", "--listen", listen)
	addr, _ := startRendezvousCmd(t, cmd, labListeningRE)
	return &natLab{Lab: lab, rendezvous: addr}
}

// pair adds two hosts, a sender behind a NAT of kind a and a receiver
// behind one of kind b.
func (l *natLab) pair(t *testing.T, a, b netlab.NATSpec) (send, recv *netlab.Host) {
	l.hosts += 2
	send = l.AddHost(t, fmt.Sprintf("s%d", l.hosts), a)
	recv = l.AddHost(t, fmt.Sprintf("r%d", l.hosts), b)
	return send, recv
}

// transfer sends a file of size bytes from one lab host to another with
// the real binaries and extra flags on both sides, and returns both sides'
// processes once they exited.
func (l *natLab) transfer(t *testing.T, from, to *netlab.Host, size int64, extra ...string) (s, r *ferryProc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	src := filepath.Join(t.TempDir(), "payload.bin")
	writeRandom(t, src, size)
	out := t.TempDir()
	args := func(verb string) []string {
		return append([]string{verb, "--json", "--no-lan", "--rendezvous", l.rendezvous}, extra...)
	}
	s = startFerryCmd(t, from.NS.Command(ctx, ferryBinary, append(args("send"), src)...))
	code := s.waitEvent(t, "the code", func(e jsonEvent) bool { return e.Event == "code" }).Code
	rcmd := to.NS.Command(ctx, ferryBinary, append(args("receive"), "--yes", "--out", out, code)...)
	r = startFerryCmd(t, rcmd)
	r.wait(t)
	s.wait(t)
	if r.exit == 0 {
		if err := sameFile(src, filepath.Join(out, "payload.bin")); err != nil {
			t.Fatal(err)
		}
	}
	return s, r
}

// finalPath is the path a side ended on: the connected event's, or that of
// the last path event after it.
func finalPath(p *ferryProc) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	path := ""
	for _, e := range p.events {
		if e.Event == "connected" || e.Event == "path" {
			path = e.Path
		}
	}
	return path
}

// punchable says whether theory (and the lab's own sanity matrix) gives a
// direct UDP path between two NAT kinds: everything but a port-restricted
// or symmetric NAT facing a symmetric one.
func punchable(a, b netlab.NATKind) bool {
	hard := func(k netlab.NATKind) bool { return k == netlab.PortRestricted || k == netlab.Symmetric }
	return !(a == netlab.Symmetric && hard(b) || b == netlab.Symmetric && hard(a))
}

// TestNATMatrix sends a file with the real binaries between two hosts
// behind every pair of NAT kinds (real kernel NATs, `ferry rendezvous` in
// the lab's internet): every transfer is byte-exact, on a direct UDP path
// wherever the NATs allow punching and through the relay elsewhere.
func TestNATMatrix(t *testing.T) {
	lab := newNATLab(t)
	for _, a := range netlab.NATKinds {
		for _, b := range netlab.NATKinds {
			t.Run(fmt.Sprintf("%v to %v", a, b), func(t *testing.T) {
				from, to := lab.pair(t, netlab.NATSpec{Kind: a}, netlab.NATSpec{Kind: b})
				start := time.Now()
				s, r := lab.transfer(t, from, to, 2<<20)
				if s.exit != 0 || r.exit != 0 {
					t.Fatalf("exit: send %d, receive %d\nsend stderr:\n%s\nreceive stderr:\n%s", s.exit, r.exit, s.stderr.String(), r.stderr.String())
				}
				want := "relay"
				if punchable(a, b) {
					want = "direct-udp"
				}
				for side, p := range map[string]*ferryProc{"sender": s, "receiver": r} {
					if got := finalPath(p); got != want {
						t.Errorf("%s ended on %q, want %q", side, got, want)
					}
				}
				// Time to the first byte: from starting the receiver
				// (the code known, pairing ahead) to its first progress.
				ttfb := time.Duration(0)
				if ev, ok := r.firstAfter("progress"); ok {
					ttfb = ev.At.Sub(r.started)
				}
				t.Logf("%v -> %v: %s, first byte %v after the receiver started, %v from start to both exits", a, b, want,
					ttfb.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
			})
		}
	}
}

// TestNATPathFlags: --relay-only stays on the relay between two NATs that
// punch; --no-relay between two that cannot fails with no_path.
func TestNATPathFlags(t *testing.T) {
	lab := newNATLab(t)
	t.Run("relay only", func(t *testing.T) {
		from, to := lab.pair(t, netlab.NATSpec{Kind: netlab.PortRestricted}, netlab.NATSpec{Kind: netlab.PortRestricted})
		s, r := lab.transfer(t, from, to, 1<<20, "--relay-only")
		if s.exit != 0 || r.exit != 0 {
			t.Fatalf("exit: send %d, receive %d\n%s\n%s", s.exit, r.exit, s.stderr.String(), r.stderr.String())
		}
		for side, p := range map[string]*ferryProc{"sender": s, "receiver": r} {
			if got := finalPath(p); got != "relay" {
				t.Errorf("%s ended on %q with --relay-only", side, got)
			}
		}
	})
	t.Run("no relay", func(t *testing.T) {
		from, to := lab.pair(t, netlab.NATSpec{Kind: netlab.Symmetric}, netlab.NATSpec{Kind: netlab.Symmetric})
		s, r := lab.transfer(t, from, to, 1<<20, "--no-relay")
		for side, p := range map[string]*ferryProc{"sender": s, "receiver": r} {
			ev, ok := p.find("error")
			if p.exit != 1 || !ok || ev.Kind != "no_path" {
				t.Errorf("%s: exit %d, error %+v; want exit 1 with no_path", side, p.exit, ev)
			}
		}
	})
}

// TestNATTCPPunch: between two port-restricted NATs whose routers drop all
// UDP (no STUN, no direct UDP), the real binaries punch a TCP connection
// by simultaneous open and send over it, byte-exact.
func TestNATTCPPunch(t *testing.T) {
	lab := newNATLab(t)
	for round := range 3 {
		t.Run(fmt.Sprintf("round %d", round), func(t *testing.T) {
			spec := netlab.NATSpec{Kind: netlab.PortRestricted, DropUDP: true}
			from, to := lab.pair(t, spec, spec)
			s, r := lab.transfer(t, from, to, 2<<20)
			if s.exit != 0 || r.exit != 0 {
				t.Fatalf("exit: send %d, receive %d\nsend stderr:\n%s\nreceive stderr:\n%s", s.exit, r.exit, s.stderr.String(), r.stderr.String())
			}
			for side, p := range map[string]*ferryProc{"sender": s, "receiver": r} {
				if got := finalPath(p); got != "direct-tcp" {
					t.Errorf("%s ended on %q, want direct-tcp", side, got)
				}
			}
		})
	}
}

// BenchmarkNATRelayVsDirect sends 32 MiB of random data between two hosts
// behind port-restricted NATs in a lab whose links to the internet are
// rate-limited (tbf), once directly and once with --relay-only through
// `ferry rendezvous` in the lab's internet, and reports MB/s from starting
// the receiver to both exiting.
func BenchmarkNATRelayVsDirect(b *testing.B) {
	for _, rate := range []string{"100mbit", "1gbit"} {
		for _, mode := range []string{"direct", "relay"} {
			b.Run(rate+"/"+mode, func(b *testing.B) {
				lab := netlab.NewLab(b, netlab.LabConfig{Rate: rate})
				listen := netip.AddrPortFrom(lab.ServerIP(), 7887).String()
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				addr, _ := startRendezvousCmd(b, lab.Internet.Command(ctx, ferryBinary, "rendezvous", "--listen", listen, "--relay-rate", "-1"), labListeningRE)
				spec := netlab.NATSpec{Kind: netlab.PortRestricted}
				from := lab.AddHost(b, "s", spec)
				to := lab.AddHost(b, "r", spec)
				const size = 32 << 20
				src := filepath.Join(b.TempDir(), "payload.bin")
				writeRandomFile(b, src, size)
				var extra []string
				if mode == "relay" {
					extra = []string{"--relay-only"}
				}
				b.SetBytes(size)
				b.ResetTimer()
				var elapsed time.Duration
				for range b.N {
					out := b.TempDir()
					args := func(verb string) []string {
						return append([]string{verb, "--json", "--no-lan", "--rendezvous", addr}, extra...)
					}
					s := startFerryCmd(b, from.NS.Command(ctx, ferryBinary, append(args("send"), src)...))
					code := s.waitEvent(b, "the code", func(e jsonEvent) bool { return e.Event == "code" }).Code
					start := time.Now()
					r := startFerryCmd(b, to.NS.Command(ctx, ferryBinary, append(args("receive"), "--yes", "--out", out, code)...))
					if r.wait(b) != 0 || s.wait(b) != 0 {
						b.Fatalf("transfer failed:\n%s\n%s", s.stderr.String(), r.stderr.String())
					}
					elapsed += time.Since(start)
					if got := finalPath(r); (mode == "relay") != (got == "relay") {
						b.Fatalf("%s transfer went %q", mode, got)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(size*int64(b.N))/1e6/elapsed.Seconds(), "MB/s")
			})
		}
	}
}

// midTransfer runs a 48 MiB transfer over 100 Mbit/s lab links from one
// host to the other with the real binaries and calls during once the
// receiver has a quarter of it; it returns both sides once they exited
// with the file checked byte for byte.
func (l *natLab) midTransfer(t *testing.T, from, to *netlab.Host, during func()) (s, r *ferryProc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	const size = 48 << 20
	src := filepath.Join(t.TempDir(), "payload.bin")
	writeRandom(t, src, size)
	out := t.TempDir()
	args := func(verb string) []string { return []string{verb, "--json", "--no-lan", "--rendezvous", l.rendezvous} }
	s = startFerryCmd(t, from.NS.Command(ctx, ferryBinary, append(args("send"), src)...))
	code := s.waitEvent(t, "the code", func(e jsonEvent) bool { return e.Event == "code" }).Code
	r = startFerryCmd(t, to.NS.Command(ctx, ferryBinary, append(args("receive"), "--yes", "--out", out, code)...))
	r.waitEvent(t, "a quarter", func(e jsonEvent) bool { return e.Event == "progress" && e.Bytes >= size/4 })
	during()
	if r.wait(t) != 0 || s.wait(t) != 0 {
		t.Fatalf("exit: send %d, receive %d\nsend stderr:\n%s\nreceive stderr:\n%s", s.exit, r.exit, s.stderr.String(), r.stderr.String())
	}
	if err := sameFile(src, filepath.Join(out, "payload.bin")); err != nil {
		t.Fatal(err)
	}
	return s, r
}

// firstAfter returns p's first event of kind whose bytes are above zero
// (for progress: the first byte), or the first of kind for other kinds.
func (p *ferryProc) firstAfter(kind string) (jsonEvent, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.events {
		if e.Event == kind && (kind != "progress" || e.Bytes > 0) {
			return e, true
		}
	}
	return jsonEvent{}, false
}

// hasPath reports whether p reported a path event with reason on path.
func hasPath(p *ferryProc, path, reason string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.events {
		if e.Event == "path" && e.Path == path && e.Reason == reason {
			return true
		}
	}
	return false
}

// TestNATUpgradeMidTransfer: two hosts behind port-restricted NATs start
// relayed because their routers drop everything to each other; half way
// through, the routers stop dropping and the transfer moves to direct UDP
// ("upgraded" on both sides) and completes byte-exact.
func TestNATUpgradeMidTransfer(t *testing.T) {
	lab := netlab.NewLab(t, netlab.LabConfig{Rate: "100mbit"})
	listen := netip.AddrPortFrom(lab.ServerIP(), 7887).String()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	addr, _ := startRendezvousCmd(t, lab.Internet.Command(ctx, ferryBinary, "rendezvous", "--listen", listen), labListeningRE)
	l := &natLab{Lab: lab, rendezvous: addr}
	spec := netlab.NATSpec{Kind: netlab.PortRestricted}
	from, to := l.pair(t, spec, spec)
	block := func(h, other *netlab.Host) {
		h.Router(0).NS.NFT(t, fmt.Sprintf("table inet blockpeer {\n chain f {\n  type filter hook forward priority -10; policy accept;\n  ip daddr %s drop\n  ip saddr %s drop\n }\n}\n",
			other.Router(0).PublicIP(), other.Router(0).PublicIP()))
	}
	block(from, to)
	block(to, from)
	s, r := l.midTransfer(t, from, to, func() {
		for _, h := range []*netlab.Host{from, to} {
			h.Router(0).NS.NFT(t, "delete table inet blockpeer")
		}
	})
	for side, p := range map[string]*ferryProc{"sender": s, "receiver": r} {
		if ev, _ := p.find("connected"); ev.Path != "relay" {
			t.Errorf("%s connected on %q, want relay", side, ev.Path)
		}
		if !hasPath(p, "direct-udp", "upgraded") {
			t.Errorf("%s never reported the upgrade to direct-udp", side)
		}
	}
}

// TestNATRelayRestartMidTransfer: a transfer that must be relayed
// (port-restricted to symmetric) carries on when `ferry rendezvous` is
// killed half way and started again on the same address: both sides join
// the new relay and the transfer completes byte-exact.
func TestNATRelayRestartMidTransfer(t *testing.T) {
	lab := netlab.NewLab(t, netlab.LabConfig{Rate: "100mbit"})
	listen := netip.AddrPortFrom(lab.ServerIP(), 7887).String()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	first := lab.Internet.Command(ctx, ferryBinary, "rendezvous", "--listen", listen)
	addr, _ := startRendezvousCmd(t, first, labListeningRE)
	l := &natLab{Lab: lab, rendezvous: addr}
	from, to := l.pair(t, netlab.NATSpec{Kind: netlab.PortRestricted}, netlab.NATSpec{Kind: netlab.Symmetric})
	s, r := l.midTransfer(t, from, to, func() {
		first.Process.Kill()
		first.Wait()
		startRendezvousCmd(t, lab.Internet.Command(ctx, ferryBinary, "rendezvous", "--listen", listen), labListeningRE)
	})
	for side, p := range map[string]*ferryProc{"sender": s, "receiver": r} {
		if !hasPath(p, "relay", "migrated") {
			t.Errorf("%s never reported moving to the new relay session", side)
		}
	}
}
