package portmap

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ferry/internal/netlab"
)

// portLab is a host behind a lab NAT router, with a STUN server on the
// lab's internet for the router's port mapping daemon.
type portLab struct {
	lab    *netlab.Lab
	host   *netlab.Host
	router *netlab.Router
	stun   netip.AddrPort
	cfg    Config
}

func newPortLab(t *testing.T) *portLab {
	t.Helper()
	lab := netlab.NewLab(t, netlab.LabConfig{})
	host := lab.AddHost(t, "h", netlab.NATSpec{Kind: netlab.PortRestricted})
	pl := &portLab{lab: lab, host: host, router: host.Router(0)}
	pl.stun = lab.StartFullSTUN(t)
	pl.cfg = nsConfig(t, host.NS)
	return pl
}

// startPortMapper runs miniupnpd on the router with the given protocols.
func (pl *portLab) startPortMapper(t *testing.T, natpmp, upnp bool) *netlab.PortMapper {
	t.Helper()
	return pl.router.StartPortMapper(t, netlab.PortMapConfig{NATPMP: natpmp, UPnP: upnp, STUN: pl.stun})
}

// nsConfig makes Probe, Map and Keep run from inside ns: the gateway
// lookup and every socket are made on a thread in the namespace.
func nsConfig(t *testing.T, ns *netlab.Namespace) Config {
	return Config{
		Logger: testLogger(t),
		gateway: func() (gw Gateway, err error) {
			if derr := ns.Do(func() error { gw, err = DefaultGateway(); return nil }); derr != nil {
				return Gateway{}, derr
			}
			return gw, err
		},
		dialUDP: func(local netip.Addr, remote netip.AddrPort) (c *net.UDPConn, err error) {
			err = ns.Do(func() (err error) {
				c, err = net.DialUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, 0)), net.UDPAddrFromAddrPort(remote))
				return err
			})
			return c, err
		},
		listenUDP: func(local netip.Addr) (c *net.UDPConn, err error) {
			err = ns.Do(func() (err error) {
				c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, 0)))
				return err
			})
			return c, err
		},
		dialTCP: func(ctx context.Context, addr string) (c net.Conn, err error) {
			err = ns.Do(func() (err error) {
				var d net.Dialer
				c, err = d.DialContext(ctx, "tcp4", addr)
				return err
			})
			return c, err
		},
	}
}

// testLogger logs through t.Log when the test runs with -v.
func testLogger(t *testing.T) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

// udpSocket opens a UDP socket on a free port in ns.
func udpSocket(t *testing.T, ns *netlab.Namespace, addr string) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := ns.Do(func() (err error) {
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// reaches sends one datagram from the lab's internet to ext and reports
// whether the host's socket receives it within wait.
func (pl *portLab) reaches(t *testing.T, host *net.UDPConn, ext netip.AddrPort, wait time.Duration) bool {
	t.Helper()
	from := udpSocket(t, pl.lab.Internet, netip.AddrPortFrom(pl.lab.AltServerIP(), 0).String())
	msg := []byte("through the mapping " + strconv.Itoa(int(time.Now().UnixNano()%1e9)))
	if _, err := from.WriteToUDPAddrPort(msg, ext); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	deadline := time.Now().Add(wait)
	for {
		_ = host.SetReadDeadline(deadline)
		n, src, err := host.ReadFromUDPAddrPort(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return false
			}
			t.Fatal(err)
		}
		if string(buf[:n]) == string(msg) {
			if src.Addr() != pl.lab.AltServerIP() {
				t.Errorf("datagram arrived from %v, want the sender %v", src, pl.lab.AltServerIP())
			}
			return true
		}
	}
}

func TestLabDefaultGateway(t *testing.T) {
	pl := newPortLab(t)
	gw, err := pl.cfg.gateway()
	if err != nil {
		t.Fatal(err)
	}
	want := Gateway{IP: netip.MustParseAddr("10.1.0.1"), Local: pl.host.IP(0), Interface: "up0"}
	if gw != want {
		t.Errorf("DefaultGateway() = %+v, want %+v", gw, want)
	}
}

// TestLabProbe probes a router whose daemon serves the given protocols
// (miniupnpd answers PCP wherever it answers NAT-PMP), or none at all.
func TestLabProbe(t *testing.T) {
	for _, c := range []struct {
		name         string
		natpmp, upnp bool
		want         []Protocol
	}{
		{"pmp-and-upnp", true, true, []Protocol{PCP, NATPMP, UPnP}},
		{"pmp-only", true, false, []Protocol{PCP, NATPMP}},
		{"upnp-only", false, true, []Protocol{UPnP}},
		{"off", false, false, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			pl := newPortLab(t)
			if c.natpmp || c.upnp {
				pl.startPortMapper(t, c.natpmp, c.upnp)
			}
			res, err := Probe(context.Background(), pl.cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("probe: %+v", res)
			wantProto, wantExt := None, netip.Addr{}
			if len(c.want) > 0 {
				wantProto, wantExt = c.want[0], pl.router.PublicIP()
			}
			if !slices.Equal(res.Answered, c.want) || res.Protocol != wantProto {
				t.Errorf("answered %v (protocol %v), want %v", res.Answered, res.Protocol, c.want)
			}
			if res.External != wantExt {
				t.Errorf("external address %v, want %v", res.External, wantExt)
			}
			if res.Gateway != netip.MustParseAddr("10.1.0.1") {
				t.Errorf("gateway %v, want 10.1.0.1", res.Gateway)
			}
		})
	}
}

func TestLabMap(t *testing.T) {
	for _, p := range []Protocol{PCP, NATPMP, UPnP} {
		t.Run(string(p), func(t *testing.T) {
			pl := newPortLab(t)
			pm := pl.startPortMapper(t, true, true)
			cfg := pl.cfg
			cfg.protocols = []Protocol{p}
			sock := udpSocket(t, pl.host.NS, "0.0.0.0:0")
			port := uint16(sock.LocalAddr().(*net.UDPAddr).Port)
			ctx := context.Background()
			m, err := Map(ctx, cfg, "udp", port, time.Minute)
			if err != nil {
				t.Fatalf("Map: %v\nminiupnpd:\n%s", err, pm.Log())
			}
			t.Logf("%s mapping: %v (lifetime %v)", p, m.External, m.Lifetime)
			if m.Protocol != p || m.External.Addr() != pl.router.PublicIP() || m.External.Port() == 0 {
				t.Fatalf("mapping %+v, want %s on %v", m, p, pl.router.PublicIP())
			}
			if !pl.reaches(t, sock, m.External, 5*time.Second) {
				t.Fatalf("a datagram to %v did not reach the host; rules %q", m.External, pm.Redirects(ctx, t))
			}
			if err := m.Delete(ctx); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if r := pm.Redirects(ctx, t); len(r) != 0 {
				t.Errorf("rules left after Delete: %q", r)
			}
			if pl.reaches(t, sock, m.External, 500*time.Millisecond) {
				t.Errorf("a datagram to %v still reaches the host after Delete", m.External)
			}
		})
	}
}

func TestLabKeep(t *testing.T) {
	pl := newPortLab(t)
	pm := pl.startPortMapper(t, true, true)
	sock := udpSocket(t, pl.host.NS, "0.0.0.0:0")
	port := uint16(sock.LocalAddr().(*net.UDPAddr).Port)
	ctx := context.Background()
	k := Keep(ctx, pl.cfg, "udp", port, 4*time.Second)
	var closeOnce sync.Once
	t.Cleanup(func() { closeOnce.Do(k.Close) })

	await := func(what string, ok func(Update) bool) Update {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for {
			select {
			case u, open := <-k.Updates():
				if !open {
					t.Fatalf("updates closed while waiting for %s", what)
				}
				t.Logf("update: %+v", u)
				if ok(u) {
					return u
				}
			case <-timeout:
				t.Fatalf("no update with %s within 20 s\nminiupnpd:\n%s", what, pm.Log())
			}
		}
	}
	first := await("a mapping", func(u Update) bool { return u.External.IsValid() })
	if first.External.Addr() != pl.router.PublicIP() {
		t.Fatalf("external %v, want the router's %v", first.External, pl.router.PublicIP())
	}
	if !pl.reaches(t, sock, first.External, 5*time.Second) {
		t.Fatalf("a datagram to %v did not reach the host", first.External)
	}
	renewed := await("a renewal", func(u Update) bool { return u.Renewals >= 1 })
	if renewed.External != first.External {
		t.Errorf("renewal moved the mapping from %v to %v", first.External, renewed.External)
	}
	if !pl.reaches(t, sock, renewed.External, 5*time.Second) {
		t.Fatalf("a datagram to %v did not reach the host after renewal", renewed.External)
	}

	closeOnce.Do(k.Close)
	last := await("the end", func(u Update) bool { return !u.External.IsValid() })
	if last.Protocol != None {
		t.Errorf("last update %+v", last)
	}
	if _, open := <-k.Updates(); open {
		t.Errorf("updates not closed after Close")
	}
	port16 := strconv.Itoa(int(first.External.Port()))
	for _, r := range pm.Redirects(ctx, t) {
		if strings.Contains(r, "dport "+port16) {
			t.Errorf("rule left after Close: %s", r)
		}
	}
	if pl.reaches(t, sock, first.External, 500*time.Millisecond) {
		t.Errorf("a datagram to %v still reaches the host after Close", first.External)
	}
}
