// Package portmap asks the local router to forward a UDP port to this
// host, with PCP (RFC 6887), NAT-PMP (RFC 6886) or UPnP IGD, so that a
// peer can reach the transport socket through the router's public address
// without hole punching. The mapped address is a candidate of the highest
// priority for the NAT-traversal machinery; everything here is an
// optimisation that pairing never waits for.
//
// What it owns: finding the default gateway and the local address used
// towards it (gateway.go), the three wire protocols (pcp.go, natpmp.go,
// upnp.go), probing which of them the gateway answers (probe.go), one
// mapping's creation, renewal and deletion (mapping.go) and the goroutine
// that keeps a mapping alive for the length of a transfer (keeper.go).
//
// What it must not touch: it sends only to the default gateway, and only
// when the local address towards it is private (RFC 1918) and the gateway
// is on-link; the UPnP search goes to the SSDP multicast group from that
// address alone, so the kernel sends it on the LAN interface with a TTL of
// one, and a device is used only if its description and control URLs name
// the gateway itself (no proxies, no redirects, no other hosts). Nothing is
// ever sent off the local network. It does not open or own the transport
// socket: callers pass the port, and the socket stays theirs. It does not
// decide how candidates are ranked or announced; that is the caller's
// (discovery and transport).
//
// Every network call is bounded by a short timeout (pmpTimeout for PCP and
// NAT-PMP, one UDP round trip on a LAN; upnpTimeout for the SSDP search
// and HTTP to the gateway), so a router that answers nothing costs a few
// hundred milliseconds at most. Router responses are untrusted input:
// the PCP and NAT-PMP parsers are fuzzed, UPnP bodies are size-limited.
package portmap
