package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"ferry/internal/netlab"
)

// netcheckResult is `ferry netcheck --json`'s object (a public contract).
type netcheckResult struct {
	UDP            bool     `json:"udp"`
	Reflexive      []string `json:"reflexive"`
	Mapping        string   `json:"mapping"`
	Filtering      string   `json:"filtering"`
	TCP            bool     `json:"tcp"`
	TCPReflexive   string   `json:"tcp_reflexive"`
	PortMap        string   `json:"portmap"`
	PortMapAddress string   `json:"portmap_address"`
	RelayRTTMillis *int64   `json:"relay_rtt_ms"`
	Verdict        string   `json:"verdict"`
}

// runNetcheck runs the real `ferry netcheck --json` on a lab host.
func runNetcheck(t *testing.T, h *netlab.Host, rendezvous string) netcheckResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := h.NS.Command(ctx, ferryBinary, "netcheck", "--json", "--rendezvous", rendezvous).Output()
	if err != nil {
		t.Fatalf("netcheck on %s: %v", h.Name, err)
	}
	var r netcheckResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("netcheck output %q: %v", out, err)
	}
	return r
}

// TestNetcheckBehindLabNATs runs `ferry netcheck --json` behind each kind
// of real kernel NAT, against `ferry rendezvous` in the lab's internet
// with its second STUN port: a port-restricted cone maps independently of
// the destination and filters by port; a symmetric NAT maps per
// destination; a network that drops UDP still reports TCP.
func TestNetcheckBehindLabNATs(t *testing.T) {
	l := newNATLab(t)
	for _, tc := range []struct {
		spec               netlab.NATSpec
		udp                bool
		mapping, filtering string
		verdict            string
	}{
		{netlab.NATSpec{Kind: netlab.PortRestricted}, true, "endpoint-independent", "address-and-port-dependent",
			"Direct connections are likely with most peers."},
		{netlab.NATSpec{Kind: netlab.Symmetric}, true, "endpoint-dependent", "address-and-port-dependent",
			"Direct only with peers on easy NATs; others are relayed through your server."},
		{netlab.NATSpec{Kind: netlab.FullCone}, true, "endpoint-independent", "unknown",
			"Direct connections are likely with most peers."},
		{netlab.NATSpec{Kind: netlab.PortRestricted, DropUDP: true}, false, "unknown", "unknown",
			"UDP is blocked: TCP or the relay will be used."},
	} {
		name := tc.spec.Kind.String()
		if tc.spec.DropUDP {
			name += "-no-udp"
		}
		t.Run(name, func(t *testing.T) {
			l.hosts++
			h := l.AddHost(t, fmt.Sprintf("n%d", l.hosts), tc.spec)
			r := runNetcheck(t, h, l.rendezvous)
			t.Logf("%+v", r)
			public := h.Router(0).PublicIP().String()
			if r.UDP != tc.udp || r.Mapping != tc.mapping || r.Filtering != tc.filtering {
				t.Errorf("udp %v mapping %q filtering %q; want %v, %q, %q", r.UDP, r.Mapping, r.Filtering, tc.udp, tc.mapping, tc.filtering)
			}
			if !r.TCP || r.RelayRTTMillis == nil {
				t.Errorf("tcp %v, relay RTT %v: the server is reachable over TCP", r.TCP, r.RelayRTTMillis)
			}
			if tc.udp && (len(r.Reflexive) == 0 || r.Reflexive[0][:len(public)] != public) {
				t.Errorf("reflexive %v, want the router's %s", r.Reflexive, public)
			}
			if r.PortMap != "none" {
				t.Errorf("portmap %q with no port mapping daemon", r.PortMap)
			}
			if r.Verdict != tc.verdict {
				t.Errorf("verdict %q, want %q", r.Verdict, tc.verdict)
			}
		})
	}
}
