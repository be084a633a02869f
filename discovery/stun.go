package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/stun/v2"

	"ferry/transport"
)

// STUNSocket is the part of the transport's socket a STUN client needs: it
// sends from, and receives on, the very socket the transport's paths use, so
// the reflexive address learned is the transport's own. *transport.Socket
// satisfies it.
type STUNSocket interface {
	WriteSTUN(msg []byte, to netip.AddrPort) error
	SetSTUNHandler(h func(msg []byte, from netip.AddrPort))
}

// ErrSTUNTimeout is returned when no STUN server answered in time.
var ErrSTUNTimeout = errors.New("discovery: no answer from the STUN server")

// stunRetransmits are the send times of one query, relative to its start
// (RFC 5389 style, shortened: a desktop user waits seconds, not 39 s).
var stunRetransmits = []time.Duration{0, 250 * time.Millisecond, 750 * time.Millisecond, 1750 * time.Millisecond}

// STUNClient asks STUN servers for the server-reflexive address of a
// transport socket. It installs itself as the socket's STUN handler and
// matches answers to queries by transaction ID and by source: only the
// server a query asked may answer it. ferry queries only the servers it is
// given (the rendezvous server's STUN port and any the user configured):
// never a third-party server by default.
type STUNClient struct {
	sock    STUNSocket
	mu      sync.Mutex
	pending map[[stun.TransactionIDSize]byte]stunQuery
}

// stunQuery is one query waiting for its answer.
type stunQuery struct {
	server netip.AddrPort        // the server asked, unmapped
	answer chan<- netip.AddrPort // capacity 1; the first answer wins
}

// NewSTUNClient takes over sock's STUN handler.
func NewSTUNClient(sock STUNSocket) *STUNClient {
	c := &STUNClient{sock: sock, pending: make(map[[stun.TransactionIDSize]byte]stunQuery)}
	sock.SetSTUNHandler(c.handle)
	return c
}

// Close releases the socket's STUN handler.
func (c *STUNClient) Close() { c.sock.SetSTUNHandler(nil) }

// handle takes an answer from the socket. Only the server a query asked may
// answer it: an answer from any other address is ignored, whatever it says,
// or anyone who learns a transaction ID (a host that sees the request go by)
// could plant a reflexive address, and with it a candidate in the offer.
func (c *STUNClient) handle(msg []byte, from netip.AddrPort) {
	m := &stun.Message{Raw: msg}
	if err := m.Decode(); err != nil || m.Type != stun.BindingSuccess {
		return
	}
	c.mu.Lock()
	q, ok := c.pending[m.TransactionID]
	c.mu.Unlock()
	if !ok || transport.UnmapAddrPort(from) != q.server {
		return
	}
	var xor stun.XORMappedAddress
	if err := xor.GetFrom(m); err != nil {
		var mapped stun.MappedAddress
		if err := mapped.GetFrom(m); err != nil {
			return
		}
		xor.IP, xor.Port = mapped.IP, mapped.Port
	}
	ip, ok := netip.AddrFromSlice(xor.IP)
	if !ok || xor.Port <= 0 || xor.Port > 0xffff {
		return
	}
	select {
	case q.answer <- netip.AddrPortFrom(ip.Unmap(), uint16(xor.Port)):
	default:
	}
}

// Query asks one STUN server for the reflexive address, retransmitting
// until an answer arrives or ctx ends (give ctx a deadline; a few seconds).
func (c *STUNClient) Query(ctx context.Context, server netip.AddrPort) (netip.AddrPort, error) {
	return c.query(ctx, server, server)
}

// QueryChangePort asks server to answer from its other port, alt (RFC
// 5780's CHANGE-REQUEST; ferry's rendezvous server announces alt in its
// mailbox welcome). Only an answer from alt counts. No answer means the
// NAT dropped a packet from a port this socket never sent to, or the
// server does not answer such requests: ctx's deadline decides how long
// to wait for it.
func (c *STUNClient) QueryChangePort(ctx context.Context, server, alt netip.AddrPort) (netip.AddrPort, error) {
	return c.query(ctx, server, alt, stun.RawAttribute{Type: stun.AttrChangeRequest, Value: []byte{0, 0, 0, 0x02}})
}

// query sends a Binding request with setters to server and waits for the
// answer from from.
func (c *STUNClient) query(ctx context.Context, server, from netip.AddrPort, setters ...stun.Setter) (netip.AddrPort, error) {
	req, err := stun.Build(append(append([]stun.Setter{stun.TransactionID, stun.BindingRequest}, setters...), stun.Fingerprint)...)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("discovery: build STUN request: %w", err)
	}
	ch := make(chan netip.AddrPort, 1)
	c.mu.Lock()
	c.pending[req.TransactionID] = stunQuery{server: transport.UnmapAddrPort(from), answer: ch}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, req.TransactionID)
		c.mu.Unlock()
	}()
	start := time.Now()
	var lastErr error
	for i := 0; ; i++ {
		if i < len(stunRetransmits) {
			if err := c.sock.WriteSTUN(req.Raw, server); err != nil {
				lastErr = err
			}
		}
		var next <-chan time.Time
		if i+1 < len(stunRetransmits) {
			t := time.NewTimer(time.Until(start.Add(stunRetransmits[i+1])))
			next = t.C
			defer t.Stop()
		}
		select {
		case addr := <-ch:
			return addr, nil
		case <-next:
		case <-ctx.Done():
			if lastErr != nil {
				return netip.AddrPort{}, fmt.Errorf("%w %s: %w (last send error: %v)", ErrSTUNTimeout, server, ctx.Err(), lastErr)
			}
			return netip.AddrPort{}, fmt.Errorf("%w %s: %w", ErrSTUNTimeout, server, ctx.Err())
		}
	}
}

// Reflexive queries every address of every server (host:port; names are
// resolved, IPv4 and IPv6) in parallel and returns the distinct reflexive
// addresses learned. Servers that do not answer are skipped; the error
// reports them only if nothing answered.
func (c *STUNClient) Reflexive(ctx context.Context, servers []string) ([]netip.AddrPort, error) {
	var targets []netip.AddrPort
	var errs []error
	for _, s := range servers {
		addrs, err := resolveAddrPorts(ctx, s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		targets = append(targets, addrs...)
	}
	type res struct {
		addr netip.AddrPort
		err  error
	}
	out := make(chan res, len(targets))
	for _, t := range targets {
		go func() {
			a, err := c.Query(ctx, t)
			out <- res{a, err}
		}()
	}
	seen := map[netip.AddrPort]bool{}
	var found []netip.AddrPort
	for range targets {
		r := <-out
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		if !seen[r.addr] {
			seen[r.addr] = true
			found = append(found, r.addr)
		}
	}
	if len(found) == 0 && len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return found, nil
}

// resolveAddrPorts turns "host:port" into addresses; literal IPs need no
// resolver.
func resolveAddrPorts(ctx context.Context, hostport string) ([]netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		return []netip.AddrPort{transport.UnmapAddrPort(ap)}, nil
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, fmt.Errorf("discovery: bad server address %q: %w", hostport, err)
	}
	pn, err := net.DefaultResolver.LookupPort(ctx, "udp", port)
	if err != nil {
		return nil, fmt.Errorf("discovery: bad port in %q: %w", hostport, err)
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("discovery: resolve %q: %w", host, err)
	}
	out := make([]netip.AddrPort, 0, len(ips))
	for _, ip := range ips {
		out = append(out, netip.AddrPortFrom(ip.Unmap(), uint16(pn)))
	}
	return out, nil
}
