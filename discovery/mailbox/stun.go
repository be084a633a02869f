package mailbox

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/pion/stun/v2"
)

// ServeSTUN answers STUN Binding requests on pc, ignoring everything else,
// until ctx is done or Shutdown. It closes pc when it returns, and returns
// nil then (ErrServerClosed if called after Shutdown).
//
// Since a request's source can be forged, the server must not be an
// amplifier: an answer carries XOR-MAPPED-ADDRESS only (no MAPPED-ADDRESS,
// SOFTWARE or FINGERPRINT), and each source address gets a token bucket
// (stunBurst, stunRate, shared by every ServeSTUN of the Server), so a
// flood from one source gets back fewer bytes than it sent. Requests over
// a source's budget are dropped silently, as a client retransmits anyway.
func (s *Server) ServeSTUN(ctx context.Context, pc net.PacketConn) error {
	return s.serveSTUN(ctx, pc, nil)
}

// ServeSTUNPair answers STUN on two sockets of this server, normally the
// listen port and the one above it, as ServeSTUN does on each, and lets a
// client tell how its NAT behaves (RFC 5780, with one address): a Binding
// request to either port from one client socket shows whether its NAT
// maps per destination, and one carrying CHANGE-REQUEST with the
// change-port flag is answered from the other port, which shows whether
// its NAT lets in a packet from a port it never sent to. A request asking
// to change the IP address is not answered (there is no other address).
// Both sockets are closed when it returns.
func (s *Server) ServeSTUNPair(ctx context.Context, a, b net.PacketConn) error {
	errc := make(chan error, 1)
	go func() { errc <- s.serveSTUN(ctx, b, a) }()
	err := s.serveSTUN(ctx, a, b)
	// The second loop ends with the first: Shutdown or ctx closes both
	// sockets; an early return (after Shutdown) closes only a.
	b.Close()
	if berr := <-errc; err == nil {
		err = berr
	}
	return err
}

// serveSTUN is ServeSTUN on pc; a change-port request is answered from
// other, or not at all when other is nil.
func (s *Server) serveSTUN(ctx context.Context, pc, other net.PacketConn) error {
	defer pc.Close()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.packets[pc] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.packets, pc)
		s.mu.Unlock()
	}()
	stop := context.AfterFunc(ctx, func() { pc.Close() })
	defer stop()

	buf := make([]byte, 1500)
	req, resp := new(stun.Message), new(stun.Message)
	var backoff time.Duration
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || s.isClosed() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Transient errors (on Windows, ICMP port unreachable surfaces
			// as a read error on UDP sockets): back off and go on.
			backoff = min(max(2*backoff, time.Millisecond), time.Second)
			s.log.Debug("stun read failed", "err", err)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			}
			continue
		}
		backoff = 0
		ua, ok := from.(*net.UDPAddr)
		if !ok || !parseBindingRequest(req, buf[:n]) {
			continue
		}
		src := ua.AddrPort()
		out := pc
		switch changeRequested(req) {
		case changePort:
			if other == nil {
				continue
			}
			out = other
		case changeIP:
			continue
		}
		if !s.stunLimit.allow(src.Addr(), time.Now()) {
			s.stats.stunRefused.Add(1)
			continue
		}
		if err := buildBindingSuccess(resp, req.TransactionID, src); err != nil {
			continue
		}
		// Counted before it is sent, so that a client that has the
		// answer finds it counted.
		s.stats.stunAnswered.Add(1)
		if _, err := out.WriteTo(resp.Raw, from); err != nil {
			s.log.Debug("stun write failed", "err", err)
		}
	}
}

// parseBindingRequest decodes data into req and reports whether it is a
// well-formed STUN Binding request.
func parseBindingRequest(req *stun.Message, data []byte) bool {
	if !stun.IsMessage(data) {
		return false
	}
	req.Reset()
	req.Raw = append(req.Raw[:0], data...)
	return req.Decode() == nil && req.Type == stun.BindingRequest
}

// buildBindingSuccess builds into resp the answer to transaction tid from
// src: a Binding success response with XOR-MAPPED-ADDRESS and nothing else
// (32 bytes for IPv4, 44 for IPv6). An IPv4-mapped IPv6 source (a
// dual-stack socket) is reported as IPv4.
func buildBindingSuccess(resp *stun.Message, tid [stun.TransactionIDSize]byte, src netip.AddrPort) error {
	ip := src.Addr().Unmap()
	return resp.Build(
		stun.NewTransactionIDSetter(tid),
		stun.BindingSuccess,
		&stun.XORMappedAddress{IP: ip.AsSlice(), Port: int(src.Port())},
	)
}

// What a Binding request's CHANGE-REQUEST attribute (RFC 5780 7.2) asks.
type changeRequest int

const (
	changeNone changeRequest = iota // no attribute, or no flag set
	changePort                      // answer from the other port
	changeIP                        // answer from another IP address (with or without the port)
)

// CHANGE-REQUEST flags.
const (
	changeIPFlag   = 0x04
	changePortFlag = 0x02
)

// changeRequested reads req's CHANGE-REQUEST. A malformed attribute counts
// as asking for an IP change, which is never answered.
func changeRequested(req *stun.Message) changeRequest {
	v, err := req.Get(stun.AttrChangeRequest)
	switch {
	case errors.Is(err, stun.ErrAttributeNotFound):
		return changeNone
	case err != nil || len(v) != 4:
		return changeIP
	case v[3]&changeIPFlag != 0:
		return changeIP
	case v[3]&changePortFlag != 0:
		return changePort
	}
	return changeNone
}
