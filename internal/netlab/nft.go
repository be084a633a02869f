package netlab

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// natTable is the nftables table holding one router's NAT and firewall.
// It is replaced as a whole, in one transaction, when the router rebinds.
const natTable = "natlab"

// natRuleset renders a router's ruleset for spec, with the device names
// "wan" and "lan". ports is the masquerade port range ("2024-3023"), or ""
// to keep each connection's own source port where it is free.
//
// Masquerade alone maps each internal address and port to one public port
// and lets conntrack filter on the remote address and port
// (port-restricted cone); fully-random masquerade picks a new port per
// destination (symmetric). The two looser cones add a map from (protocol,
// public port) to the internal address and port, learned from outgoing
// packets after source NAT (priority srcnat + 1, when the packet already
// carries its public port), and a destination NAT of unknown incoming
// packets through it; address-restricted also learns the remote addresses
// contacted from each public port and admits only those.
//
// Every kind gets the router-style firewall: nothing new enters from the
// WAN, neither forwarded nor for the router itself, except what the
// router's own destination NAT forwards. Without the input
// drop a peer's early punch is confirmed by conntrack on the router, and
// the host's own punch to that peer then collides with the entry and is
// moved to another port: punching then fails between two port-restricted
// cones, and from port-restricted or symmetric to address-restricted.
func natRuleset(spec NATSpec, ports string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	cone := spec.Kind == FullCone || spec.Kind == AddressRestricted
	// Declaring the table first makes the delete valid on first use.
	w("table ip %s", natTable)
	w("delete table ip %s", natTable)
	w("table ip %s {", natTable)
	if cone {
		// Entries live while the host keeps sending (each packet
		// refreshes them), about as long as a conntrack UDP stream.
		w("  map pubmap { type inet_proto . inet_service : ipv4_addr . inet_service; flags dynamic,timeout; timeout 3m; }")
		w("  set contacted { type inet_proto . inet_service . ipv4_addr; flags dynamic,timeout; timeout 3m; }")
	}
	w("  chain prerouting {")
	w("    type nat hook prerouting priority dstnat; policy accept;")
	switch spec.Kind {
	case FullCone:
		w(`    iifname "wan" meta l4proto { tcp, udp } dnat ip to meta l4proto . th dport map @pubmap`)
	case AddressRestricted:
		w(`    iifname "wan" meta l4proto { tcp, udp } meta l4proto . th dport . ip saddr @contacted dnat ip to meta l4proto . th dport map @pubmap`)
	}
	w("  }")
	mode := ""
	if spec.Kind == Symmetric {
		mode = " fully-random"
	}
	w("  chain postrouting {")
	w("    type nat hook postrouting priority srcnat; policy accept;")
	// Only what the hosts behind it send (10.x) is translated, not the
	// router's own packets: a port mapping daemon on the router checks
	// its public address with STUN and gives up if it looks NATed itself.
	if ports != "" {
		// A port range needs a transport protocol match before it.
		w(`    ip saddr 10.0.0.0/8 oifname "wan" meta l4proto { tcp, udp } masquerade to :%s%s`, ports, mode)
	}
	w(`    ip saddr 10.0.0.0/8 oifname "wan" masquerade%s`, mode)
	w("  }")
	if cone {
		w("  chain learn {")
		w("    type filter hook postrouting priority srcnat + 1; policy accept;")
		w(`    oifname "wan" ct direction original ct status snat meta l4proto { tcp, udp } update @pubmap { meta l4proto . th sport : ct original ip saddr . ct original proto-src }`)
		if spec.Kind == AddressRestricted {
			w(`    oifname "wan" ct direction original ct status snat meta l4proto { tcp, udp } update @contacted { meta l4proto . th sport . ip daddr }`)
		}
		w("  }")
	}
	w("  chain input {")
	w("    type filter hook input priority filter; policy accept;")
	w(`    iifname "wan" ct state established,related accept`)
	w(`    iifname "wan" drop`)
	w("  }")
	w("  chain forward {")
	w("    type filter hook forward priority filter; policy accept;")
	if spec.DropUDP {
		w("    meta l4proto udp drop")
	}
	if spec.DropTCP {
		w("    meta l4proto tcp drop")
	}
	w(`    iifname "wan" ct state established,related accept`)
	// What the router itself forwards by destination NAT is let in: the
	// cones' learned mappings, and port mappings that a port mapping
	// daemon adds in its own table (StartPortMapper). Accepted here
	// because an accept in another base chain would not stop this
	// chain's drop. Without such a DNAT rule nothing new from the WAN
	// carries this status, so for the other kinds it admits nothing.
	w(`    iifname "wan" ct status dnat accept`)
	w(`    iifname "wan" drop`)
	w("  }")
	w("}")
	return b.String()
}

// lossRuleset renders a netdev table that drops percent of the packets
// arriving on each of devs.
func lossRuleset(percent int, devs ...string) string {
	drop := fmt.Sprintf("numgen random mod 100 < %d drop", percent)
	if percent >= 100 {
		drop = "drop" // numgen's comparison only takes 0-99
	}
	var b strings.Builder
	fmt.Fprintf(&b, "table netdev natlab_loss {\n")
	for _, d := range devs {
		fmt.Fprintf(&b, "  chain in_%s { type filter hook ingress device %q priority filter; policy accept; %s; }\n", d, d, drop)
	}
	fmt.Fprintf(&b, "}\n")
	return b.String()
}

// NFT loads an nftables ruleset (nft -f syntax) into the namespace, in
// one transaction, and fails t on error.
func (ns *Namespace) NFT(t testing.TB, ruleset string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns.Name, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft in %s: %v\n%s\nruleset:\n%s", ns.Name, err, out, ruleset)
	}
}

// requireNFT skips t unless the nft command exists.
func requireNFT(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs the nft command (Debian package nftables) to build NATs")
	}
}
