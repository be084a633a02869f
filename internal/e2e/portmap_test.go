package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"ferry/internal/netlab"
)

// TestNATPortMapSymmetricPair: two hosts behind symmetric NATs, which no
// punching connects (the matrix relays them), one of whose routers runs a
// real port mapping daemon (miniupnpd: PCP, NAT-PMP, UPnP IGD). The
// sender's ferry maps its socket's port, offers the mapped address, and
// the transfer goes direct over UDP instead of through the relay; when it
// ends, the mapping is gone from the router.
func TestNATPortMapSymmetricPair(t *testing.T) {
	l := newNATLab(t)
	stun := l.StartFullSTUN(t)
	send, recv := l.pair(t, netlab.NATSpec{Kind: netlab.Symmetric}, netlab.NATSpec{Kind: netlab.Symmetric})
	pm := send.Router(0).StartPortMapper(t, netlab.PortMapConfig{NATPMP: true, UPnP: true, STUN: stun})
	s, r := l.transfer(t, send, recv, 2<<20, "--verbose")
	defer func() {
		if t.Failed() {
			t.Logf("sender stderr:\n%s", lastLines(s.stderr.String(), 60))
		}
	}()
	if s.exit != 0 || r.exit != 0 {
		t.Fatalf("exit: send %d, receive %d\nsend stderr:\n%s\nreceive stderr:\n%s", s.exit, r.exit, s.stderr.String(), r.stderr.String())
	}
	for side, p := range map[string]*ferryProc{"sender": s, "receiver": r} {
		if got := finalPath(p); got != "direct-udp" {
			t.Errorf("%s ended on %q, want direct-udp through the mapped port", side, got)
		}
	}
	// The sender deleted its mapping before it exited.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if rules := pm.Redirects(ctx, t); len(rules) != 0 {
		t.Errorf("the router still forwards after the transfer: %v\ndaemon log:\n%s", rules, lastLines(pm.Log(), 20))
	}
}

// TestNetcheckPortMap runs `ferry netcheck --json` behind a port-restricted
// lab NAT whose router answers port mapping as configured: the protocol
// ferry uses (PCP where the router speaks it: miniupnpd's NAT-PMP switch
// serves PCP too), the mapped public address, and a verdict that counts
// on it; and the trial mapping is deleted.
func TestNetcheckPortMap(t *testing.T) {
	l := newNATLab(t)
	stun := l.StartFullSTUN(t)
	for _, tc := range []struct {
		name    string
		cfg     netlab.PortMapConfig
		portmap string
	}{
		{"nat-pmp-and-pcp", netlab.PortMapConfig{NATPMP: true}, "pcp"},
		{"upnp", netlab.PortMapConfig{UPnP: true}, "upnp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l.hosts++
			h := l.AddHost(t, fmt.Sprintf("m%d", l.hosts), netlab.NATSpec{Kind: netlab.PortRestricted})
			tc.cfg.STUN = stun
			pm := h.Router(0).StartPortMapper(t, tc.cfg)
			res := runNetcheck(t, h, l.rendezvous)
			t.Logf("%+v", res)
			public := h.Router(0).PublicIP().String() + ":"
			if res.PortMap != tc.portmap || !strings.HasPrefix(res.PortMapAddress, public) {
				t.Errorf("portmap %q at %q, want %q at %s*", res.PortMap, res.PortMapAddress, tc.portmap, public)
			}
			if want := "Direct connections are likely with most peers: your router maps a port for ferry."; res.Verdict != want {
				t.Errorf("verdict %q, want %q", res.Verdict, want)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if rules := pm.Redirects(ctx, t); len(rules) != 0 {
				t.Errorf("netcheck left a mapping: %v", rules)
			}
		})
	}
}
