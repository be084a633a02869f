package portmap

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"net/netip"
	"time"
)

// PCP wire format (RFC 6887), the subset this package speaks: ANNOUNCE
// to learn whether the gateway answers PCP, and MAP to create, renew and
// delete a mapping. Addresses are 16 bytes, IPv4 as IPv4-mapped IPv6.
//
//	request header (24)   0: version 2  1: R=0 | opcode  2-3: reserved
//	                      4-7: requested lifetime  8-23: client's address
//	response header (24)  0: version 2  1: R=1 | opcode  2: reserved
//	                      3: result code  4-7: lifetime  8-11: epoch
//	                      12-23: reserved
//	MAP data (36)         0-11: mapping nonce  12: IANA protocol
//	                      13-15: reserved  16-17: internal port
//	                      18-19: suggested (request) or assigned
//	                      (response) external port
//	                      20-35: suggested or assigned external address
//
// Options after the opcode data are neither sent nor read. Responses are
// checked against the request: the opcode, and for MAP the nonce,
// protocol and internal port, so a stray or forged answer for another
// mapping is rejected (Section 11.3).
const (
	pcpVersion    = 2
	pcpOpAnnounce = 0
	pcpOpMap      = 1
	pcpReplyBit   = 0x80

	pcpHeaderLen  = 24
	pcpMapDataLen = 36
	pcpNonceLen   = 12

	protoUDP = 17
	protoTCP = 6
)

// pcpNonce identifies one mapping to the server: renewals and the
// deletion must repeat it (Section 11.1).
type pcpNonce [pcpNonceLen]byte

func newPCPNonce() pcpNonce {
	var n pcpNonce
	_, _ = rand.Read(n[:])
	return n
}

// appendPCPHeader appends a request header for opcode op.
func appendPCPHeader(dst []byte, op byte, lifetime time.Duration, client netip.Addr) []byte {
	dst = append(dst, pcpVersion, op, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, seconds(lifetime))
	a := client.As16() // IPv4-mapped for an IPv4 address
	return append(dst, a[:]...)
}

// appendPCPAnnounce appends an ANNOUNCE request (Section 14.1): a header
// with lifetime 0 and no data, answered by any PCP server.
func appendPCPAnnounce(dst []byte, client netip.Addr) []byte {
	return appendPCPHeader(dst, pcpOpAnnounce, 0, client)
}

// pcpMapRequest is the content of a MAP request.
type pcpMapRequest struct {
	nonce    pcpNonce
	proto    byte // IANA protocol number
	internal uint16
	ext      netip.AddrPort // suggested; the zero value suggests nothing
	lifetime time.Duration  // 0 deletes
	client   netip.Addr     // the source address of the request
}

// appendPCPMap appends a MAP request.
func appendPCPMap(dst []byte, r pcpMapRequest) []byte {
	dst = appendPCPHeader(dst, pcpOpMap, r.lifetime, r.client)
	dst = append(dst, r.nonce[:]...)
	dst = append(dst, r.proto, 0, 0, 0)
	dst = binary.BigEndian.AppendUint16(dst, r.internal)
	dst = binary.BigEndian.AppendUint16(dst, r.ext.Port())
	ext := netip.IPv4Unspecified() // "no preference" for IPv4 is ::ffff:0.0.0.0
	if r.ext.Addr().IsValid() {
		ext = r.ext.Addr()
	}
	a := ext.As16()
	return append(dst, a[:]...)
}

// pcpResponse is a parsed response header.
type pcpResponse struct {
	op       byte
	lifetime time.Duration
	epoch    uint32
}

// parsePCPHeader checks a response header for opcode op. A NAT-PMP-only
// server answers a PCP request with a version 0 "unsupported version"
// (RFC 6887 Section 9): that is an error, not PCP.
func parsePCPHeader(b []byte, op byte) (pcpResponse, error) {
	if len(b) < 4 || b[0] != pcpVersion || b[1] != op|pcpReplyBit {
		return pcpResponse{}, errMalformed
	}
	if code := b[3]; code != 0 {
		return pcpResponse{}, &ResultError{Protocol: PCP, Code: int(code)}
	}
	if len(b) < pcpHeaderLen {
		return pcpResponse{}, errMalformed
	}
	return pcpResponse{
		op:       op,
		lifetime: time.Duration(binary.BigEndian.Uint32(b[4:8])) * time.Second,
		epoch:    binary.BigEndian.Uint32(b[8:12]),
	}, nil
}

// parsePCPAnnounce parses the response to ANNOUNCE.
func parsePCPAnnounce(b []byte) (pcpResponse, error) {
	return parsePCPHeader(b, pcpOpAnnounce)
}

// pcpMapping is a parsed MAP response.
type pcpMapping struct {
	external netip.AddrPort
	lifetime time.Duration
	epoch    uint32
}

// parsePCPMap parses the response to MAP request r.
func parsePCPMap(b []byte, r pcpMapRequest) (pcpMapping, error) {
	h, err := parsePCPHeader(b, pcpOpMap)
	if err != nil {
		return pcpMapping{}, err
	}
	if len(b) < pcpHeaderLen+pcpMapDataLen {
		return pcpMapping{}, errMalformed
	}
	d := b[pcpHeaderLen : pcpHeaderLen+pcpMapDataLen]
	if pcpNonce(d[0:12]) != r.nonce || d[12] != r.proto || binary.BigEndian.Uint16(d[16:18]) != r.internal {
		return pcpMapping{}, errMalformed
	}
	ext := netip.AddrFrom16([16]byte(d[20:36])).Unmap()
	return pcpMapping{
		external: netip.AddrPortFrom(ext, binary.BigEndian.Uint16(d[18:20])),
		lifetime: h.lifetime,
		epoch:    h.epoch,
	}, nil
}

func ianaProto(proto string) (byte, bool) {
	switch proto {
	case "udp":
		return protoUDP, true
	case "tcp":
		return protoTCP, true
	}
	return 0, false
}

// pcpAnnounce asks whether the gateway speaks PCP.
func pcpAnnounce(ctx context.Context, cfg Config, gw Gateway) error {
	return exchange(ctx, cfg, gw, appendPCPAnnounce(nil, gw.Local), func(b []byte) error {
		_, err := parsePCPAnnounce(b)
		return err
	})
}

// pcpMap sends MAP request r (r.client is set to gw.Local).
func pcpMap(ctx context.Context, cfg Config, gw Gateway, r pcpMapRequest) (pcpMapping, error) {
	r.client = gw.Local
	var m pcpMapping
	err := exchange(ctx, cfg, gw, appendPCPMap(nil, r), func(b []byte) (err error) {
		m, err = parsePCPMap(b, r)
		return err
	})
	return m, err
}
