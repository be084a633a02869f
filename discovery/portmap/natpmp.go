package portmap

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"
)

// NAT-PMP wire format (RFC 6886). All fields are big-endian.
//
//	external address request  0: version 0   1: opcode 0
//	external address response 0: version 0   1: opcode 128  2-3: result
//	                          4-7: epoch     8-11: external IPv4 address
//	mapping request           0: version 0   1: opcode 1 (UDP) or 2 (TCP)
//	                          2-3: reserved  4-5: internal port
//	                          6-7: suggested external port
//	                          8-11: lifetime in seconds (0 deletes)
//	mapping response          0: version 0   1: opcode 128+op  2-3: result
//	                          4-7: epoch     8-9: internal port
//	                          10-11: mapped external port  12-15: lifetime
//
// A response with a non-zero result may be cut after the result; its other
// fields mean nothing (Section 3.5). Longer responses are accepted, and the
// extra bytes ignored, as the RFC's clients do.
const (
	pmpPort    = 5351 // the server's port, shared with PCP
	pmpVersion = 0

	pmpOpExternal = 0
	pmpOpMapUDP   = 1
	pmpOpMapTCP   = 2
	pmpOpReply    = 128

	pmpExternalLen = 12
	pmpMapLen      = 16
)

// pmpExternalRequest is the 2-byte external address request.
func pmpExternalRequest() []byte { return []byte{pmpVersion, pmpOpExternal} }

// appendPMPMap appends a mapping request for internal port on proto
// ("udp" or "tcp"), asking for external port ext (0: any) for lifetime
// (whole seconds; 0 deletes the mapping).
func appendPMPMap(dst []byte, proto string, internal, ext uint16, lifetime time.Duration) ([]byte, error) {
	op, err := pmpOpcode(proto)
	if err != nil {
		return nil, err
	}
	dst = append(dst, pmpVersion, op, 0, 0)
	dst = binary.BigEndian.AppendUint16(dst, internal)
	dst = binary.BigEndian.AppendUint16(dst, ext)
	return binary.BigEndian.AppendUint32(dst, seconds(lifetime)), nil
}

func pmpOpcode(proto string) (byte, error) {
	switch proto {
	case "udp":
		return pmpOpMapUDP, nil
	case "tcp":
		return pmpOpMapTCP, nil
	}
	return 0, fmt.Errorf("portmap: unknown protocol %q", proto)
}

// pmpHeader checks a response's version, opcode (the request's op with
// the reply bit) and result code, and its length for a success.
func pmpHeader(b []byte, op byte, size int) error {
	if len(b) < 4 || b[0] != pmpVersion || b[1] != op|pmpOpReply {
		return errMalformed
	}
	if code := binary.BigEndian.Uint16(b[2:4]); code != 0 {
		return &ResultError{Protocol: NATPMP, Code: int(code)}
	}
	if len(b) < size {
		return errMalformed
	}
	return nil
}

// parsePMPExternal parses an external address response.
func parsePMPExternal(b []byte) (netip.Addr, error) {
	if err := pmpHeader(b, pmpOpExternal, pmpExternalLen); err != nil {
		return netip.Addr{}, err
	}
	return netip.AddrFrom4([4]byte(b[8:12])), nil
}

// pmpMapping is a parsed mapping response.
type pmpMapping struct {
	internal, external uint16
	lifetime           time.Duration
}

// parsePMPMap parses the response to a mapping request with opcode op
// for internal port internal. A response for another internal port is
// malformed: it answers some other request.
func parsePMPMap(b []byte, op byte, internal uint16) (pmpMapping, error) {
	if err := pmpHeader(b, op, pmpMapLen); err != nil {
		return pmpMapping{}, err
	}
	m := pmpMapping{
		internal: binary.BigEndian.Uint16(b[8:10]),
		external: binary.BigEndian.Uint16(b[10:12]),
		lifetime: time.Duration(binary.BigEndian.Uint32(b[12:16])) * time.Second,
	}
	if m.internal != internal {
		return pmpMapping{}, errMalformed
	}
	return m, nil
}

// seconds converts a lifetime to whole seconds, rounding up so that a
// positive lifetime never becomes 0 (a deletion).
func seconds(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	s := (d + time.Second - 1) / time.Second
	if s > 1<<32-1 {
		return 1<<32 - 1
	}
	return uint32(s)
}

// pmpExternal asks the gateway for its external address.
func pmpExternal(ctx context.Context, cfg Config, gw Gateway) (netip.Addr, error) {
	var ext netip.Addr
	err := exchange(ctx, cfg, gw, pmpExternalRequest(), func(b []byte) (err error) {
		ext, err = parsePMPExternal(b)
		return err
	})
	return ext, err
}

// pmpMap asks the gateway to map (lifetime > 0) or unmap (lifetime 0)
// internal port on proto, preferring external port ext.
func pmpMap(ctx context.Context, cfg Config, gw Gateway, proto string, internal, ext uint16, lifetime time.Duration) (pmpMapping, error) {
	req, err := appendPMPMap(nil, proto, internal, ext, lifetime)
	if err != nil {
		return pmpMapping{}, err
	}
	var m pmpMapping
	err = exchange(ctx, cfg, gw, req, func(b []byte) (err error) {
		m, err = parsePMPMap(b, req[1], internal)
		return err
	})
	return m, err
}
