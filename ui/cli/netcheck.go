package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"ferry/discovery"
	"ferry/discovery/code"
)

const netcheckUsage = `Usage: ferry netcheck [flags]

Checks in a few seconds what this network allows for transfers, against
the rendezvous server: UDP and the public address, how the NAT maps and
filters, TCP, the router's port mapping, the round trip to the relay,
and says in one sentence what follows. Exits 0 whatever it finds.

Flags:
`

// NetcheckOptions are what main gives the netcheck command beyond its
// flags.
type NetcheckOptions struct {
	// PortMap asks the router for a mapping (see
	// discovery.NetcheckConfig.PortMap); nil reports none.
	PortMap func(ctx context.Context, localPort uint16) (string, netip.AddrPort, error)
}

// Netcheck runs `ferry netcheck [--rendezvous HOST:PORT] [--json]`.
func Netcheck(ctx context.Context, args []string, env Env, opts NetcheckOptions) int {
	fs := newFlagSet("netcheck", netcheckUsage, env)
	rendezvous := fs.String("rendezvous", env.Getenv("FERRY_RENDEZVOUS"), "rendezvous server `HOST:PORT` to check against (default $FERRY_RENDEZVOUS)")
	asJSON := fs.Bool("json", false, "print one JSON object instead of words")
	verbose := fs.Bool("verbose", false, "log each check's failures on stderr")
	if err := fs.Parse(args); err != nil {
		return usageExit(err)
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(env.Stderr, "ferry netcheck: unexpected argument %q\n", fs.Arg(0))
		return ExitUsage
	}
	if *rendezvous != "" {
		if err := code.ValidateRendezvous(*rendezvous); err != nil {
			fmt.Fprintf(env.Stderr, "ferry netcheck: --rendezvous: %v\n", err)
			return ExitUsage
		}
	}
	r, err := discovery.Netcheck(ctx, discovery.NetcheckConfig{
		Rendezvous: *rendezvous,
		PortMap:    opts.PortMap,
		Logger:     logger(env, *verbose),
	})
	if err != nil {
		fmt.Fprintf(env.Stderr, "Error: %v\n", err)
		return ExitFailure
	}
	if *asJSON {
		b, err := json.Marshal(netcheckJSON(r))
		if err != nil {
			fmt.Fprintf(env.Stderr, "Error: %v\n", err)
			return ExitFailure
		}
		fmt.Fprintf(env.Stdout, "%s\n", b)
		return ExitOK
	}
	io.WriteString(env.Stdout, NetcheckWords(r))
	return ExitOK
}

// netcheckReport is the --json object, a public contract: fields are
// added, never renamed.
type netcheckReport struct {
	UDP              bool     `json:"udp"`
	Reflexive        []string `json:"reflexive"`
	Mapping          string   `json:"mapping"`
	Filtering        string   `json:"filtering"`
	TCP              bool     `json:"tcp"`
	TCPReflexive     string   `json:"tcp_reflexive"`
	PortMap          string   `json:"portmap"`
	PortMapAddress   string   `json:"portmap_address"`
	RelayRTTMillis   *int64   `json:"relay_rtt_ms"` // null when the server was not reached
	Verdict          string   `json:"verdict"`
	Rendezvous       string   `json:"rendezvous"`
	Local            string   `json:"local"`
	TCPPortPreserved bool     `json:"tcp_port_preserved"`
}

func netcheckJSON(r *discovery.NetReport) netcheckReport {
	out := netcheckReport{
		UDP:              r.UDP,
		Reflexive:        []string{},
		Mapping:          string(r.Mapping),
		Filtering:        string(r.Filtering),
		TCP:              r.TCP,
		TCPReflexive:     addrOrEmpty(r.TCPReflexive),
		PortMap:          r.PortMap,
		PortMapAddress:   addrOrEmpty(r.PortMapAddress),
		Verdict:          r.Verdict,
		Rendezvous:       r.Rendezvous,
		Local:            addrOrEmpty(r.Local),
		TCPPortPreserved: r.TCPPortPreserved,
	}
	for _, a := range r.Reflexive {
		out.Reflexive = append(out.Reflexive, a.String())
	}
	if r.RelayRTT > 0 {
		ms := max(r.RelayRTT.Round(time.Millisecond).Milliseconds(), 1)
		out.RelayRTTMillis = &ms
	}
	return out
}

func addrOrEmpty(a netip.AddrPort) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// NetcheckWords lays out a report in words, a line per check and the
// verdict last, as the CLI prints it and the desktop app shows it.
func NetcheckWords(r *discovery.NetReport) string {
	var b strings.Builder
	line := func(what, format string, args ...any) {
		fmt.Fprintf(&b, "%-14s %s\n", what+":", fmt.Sprintf(format, args...))
	}
	if r.Rendezvous != "" {
		line("Server", "%s", r.Rendezvous)
		switch {
		case r.UDP && len(r.Reflexive) > 1:
			line("UDP", "works; your public address is %s (and %s towards the server's second port)", r.Reflexive[0], r.Reflexive[1])
		case r.UDP && r.Public():
			line("UDP", "works; your address %s is public (no NAT)", r.Reflexive[0])
		case r.UDP:
			line("UDP", "works; your public address is %s", r.Reflexive[0])
		case r.TCP:
			line("UDP", "no answer while TCP works: UDP looks blocked")
		default:
			line("UDP", "no answer")
		}
		if r.UDP {
			line("NAT mapping", "%s", mappingWords(r.Mapping))
			line("NAT filtering", "%s", filteringWords(r.Filtering))
		}
		switch {
		case r.TCP && r.TCPPortPreserved:
			line("TCP", "works; the server sees %s (your port, kept)", r.TCPReflexive)
		case r.TCP:
			line("TCP", "works; the server sees %s (a new port)", r.TCPReflexive)
		default:
			line("TCP", "the server cannot be reached over TCP")
		}
	}
	if r.PortMap != discovery.PortMapNone && r.PortMapAddress.IsValid() {
		line("Port mapping", "your router answers %s and gave %s", portMapWords(r.PortMap), r.PortMapAddress)
	} else {
		line("Port mapping", "no answer from your router (NAT-PMP, PCP, UPnP)")
	}
	if r.RelayRTT > 0 {
		line("Relay", "%v round trip", r.RelayRTT.Round(100*time.Microsecond))
	}
	fmt.Fprintf(&b, "\n%s\n", r.Verdict)
	return b.String()
}

func mappingWords(m discovery.Mapping) string {
	switch m {
	case discovery.MappingIndependent:
		return "endpoint-independent (the same public port towards everyone: good for direct connections)"
	case discovery.MappingDependent:
		return "endpoint-dependent (a new public port per destination: a symmetric NAT, hard to punch)"
	}
	return "unknown (the server has no second STUN port to compare with)"
}

func filteringWords(f discovery.Filtering) string {
	switch f {
	case discovery.FilteringIndependent:
		return "endpoint-independent (anyone may send to your public port)"
	case discovery.FilteringAddress:
		return "address-dependent (only hosts you sent to may answer)"
	case discovery.FilteringAddressAndPort:
		return "address-and-port-dependent (only the exact address and port you sent to may answer)"
	}
	return "unknown (one server address cannot tell whether other hosts may send to you)"
}

func portMapWords(p string) string {
	switch p {
	case discovery.PortMapNATPMP:
		return "NAT-PMP"
	case discovery.PortMapPCP:
		return "PCP"
	case discovery.PortMapUPnP:
		return "UPnP IGD"
	}
	return p
}
