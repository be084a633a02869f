package cli

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"ferry/discovery"
)

// TestNetcheckJSONContract: the --json object has exactly the keys the
// issue spells out (and the ones added since), with their types.
func TestNetcheckJSONContract(t *testing.T) {
	r := &discovery.NetReport{
		Rendezvous: "rv.example:7887", UDP: true,
		Reflexive: []netip.AddrPort{netip.MustParseAddrPort("198.51.100.7:40000"), netip.MustParseAddrPort("198.51.100.7:40001")},
		Local:     netip.MustParseAddrPort("10.0.0.2:5000"),
		Mapping:   discovery.MappingDependent, Filtering: discovery.FilteringAddressAndPort,
		TCP: true, TCPReflexive: netip.MustParseAddrPort("198.51.100.7:51000"),
		PortMap: discovery.PortMapNone, RelayRTT: 12300 * time.Microsecond,
		Verdict: "Direct only with peers on easy NATs; others are relayed through your server.",
	}
	b, err := json.Marshal(netcheckJSON(r))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"udp": true, "reflexive": []any{"198.51.100.7:40000", "198.51.100.7:40001"},
		"mapping": "endpoint-dependent", "filtering": "address-and-port-dependent",
		"tcp": true, "tcp_reflexive": "198.51.100.7:51000",
		"portmap": "none", "portmap_address": "", "relay_rtt_ms": float64(12),
		"verdict":    "Direct only with peers on easy NATs; others are relayed through your server.",
		"rendezvous": "rv.example:7887", "local": "10.0.0.2:5000", "tcp_port_preserved": false,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("JSON\n%s\nwant keys %v", b, slices.Sorted(func(yield func(string) bool) {
			for k := range want {
				if !yield(k) {
					return
				}
			}
		}))
	}

	// Nothing reached: the lists are empty, not null; the RTT is null.
	b, _ = json.Marshal(netcheckJSON(&discovery.NetReport{Mapping: discovery.MappingUnknown, Filtering: discovery.FilteringUnknown, PortMap: discovery.PortMapNone}))
	if !strings.Contains(string(b), `"reflexive":[]`) || !strings.Contains(string(b), `"relay_rtt_ms":null`) {
		t.Fatalf("empty report %s", b)
	}
}

func TestNetcheckWords(t *testing.T) {
	r := &discovery.NetReport{
		Rendezvous: "rv.example:7887", TCP: true, TCPReflexive: netip.MustParseAddrPort("198.51.100.7:51000"),
		Mapping: discovery.MappingUnknown, Filtering: discovery.FilteringUnknown,
		PortMap: discovery.PortMapNATPMP, PortMapAddress: netip.MustParseAddrPort("198.51.100.7:40000"),
		Verdict: "UDP is blocked: TCP or the relay will be used.",
	}
	words := NetcheckWords(r)
	for _, want := range []string{
		"UDP:           no answer while TCP works: UDP looks blocked\n",
		"TCP:           works; the server sees 198.51.100.7:51000 (a new port)\n",
		"Port mapping:  your router answers NAT-PMP and gave 198.51.100.7:40000\n",
		"\nUDP is blocked: TCP or the relay will be used.\n",
	} {
		if !strings.Contains(words, want) {
			t.Errorf("missing %q in\n%s", want, words)
		}
	}
	if strings.Contains(words, "NAT mapping") {
		t.Errorf("NAT behaviour shown without UDP:\n%s", words)
	}
}
