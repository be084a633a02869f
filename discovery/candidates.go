package discovery

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"ferry/transport"
)

// stunGatherTimeout bounds the STUN queries of one gathering: a server that
// answers does so within a few retransmissions; one that does not (UDP
// blocked) must not hold the code back for long.
const stunGatherTimeout = 2 * time.Second

// GatherOptions says where candidates are learned.
type GatherOptions struct {
	// Rendezvous is the rendezvous server ("host:port"), asked by STUN for
	// the UDP socket's public address and by an address query for the TCP
	// punching port's; empty for none.
	Rendezvous string
	// STUNServers are further STUN servers the user listed; ferry asks no
	// other.
	STUNServers []string
	// RelayOnly gathers nothing: the peer never learns this side's
	// addresses (`--relay-only`).
	RelayOnly bool
	// Logger receives what could not be learned; default slog.Default().
	Logger *slog.Logger
}

// GatherCandidates lists where a peer may reach sock, for the offer: the
// UDP socket's host addresses and the server-reflexive addresses STUN
// reports for that very socket, and the TCP punching port's host addresses
// and the public address the rendezvous server sees it come from; and the
// type of each.
func GatherCandidates(ctx context.Context, sock *transport.Socket, o GatherOptions) (udp, tcp []netip.AddrPort, types map[netip.AddrPort]transport.CandidateType) {
	if o.RelayOnly {
		return nil, nil, nil
	}
	types = make(map[netip.AddrPort]transport.CandidateType)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	udp = sock.LocalCandidates()
	for _, a := range udp {
		types[a] = transport.CandidateHost
	}
	servers := slices.Clone(o.STUNServers)
	if o.Rendezvous != "" {
		servers = append(servers, o.Rendezvous)
	}
	if len(servers) > 0 {
		c := NewSTUNClient(sock)
		defer c.Close()
		sctx, cancel := context.WithTimeout(ctx, stunGatherTimeout)
		defer cancel()
		refl, err := c.Reflexive(sctx, servers)
		if err != nil {
			o.Logger.Info("no reflexive address", "err", err)
		}
		for _, a := range refl {
			if !slices.Contains(udp, a) {
				udp = append(udp, a)
				types[a] = transport.CandidateServerReflexive
			}
		}
	}
	if o.Rendezvous != "" {
		// TCP punching needs the server to tell the port's public address.
		host, public := sock.TCPCandidates(ctx, o.Rendezvous)
		for _, a := range host {
			tcp = append(tcp, a)
			types[a] = transport.CandidateHost
		}
		if public.IsValid() && !slices.Contains(tcp, public) {
			tcp = append(tcp, public)
			types[public] = transport.CandidateServerReflexive
		}
	}
	return udp, tcp, types
}
