package transport

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"net/netip"
)

// The CANDIDATES packet's payload: where this side can be reached now,
// after its network changed (announce.go). It follows the control header
// and is encrypted, then the whole packet is authenticated by the control
// MAC (encrypt-then-MAC): the relay and anyone on the path see only its
// length. Plaintext layout:
//
//	0      count (at most maxAnnounced)
//	then per candidate:
//	  flags  bit 0: a TCP punching address (else UDP); bits 4-7: CandidateType
//	  family 4 or 6
//	  addr   4 or 16 bytes
//	  port   2 bytes, big-endian
//
// The cipher is AES-256-CTR under the attempt's candidates key for the
// direction (keys.go) with the IV session ID || counter: the counter never
// repeats in one direction of one attempt, so neither does the key stream.

// maxAnnounced bounds the candidates in one CANDIDATES packet: the host
// and reflexive addresses of a few interfaces, UDP and TCP.
const maxAnnounced = 24

// candidatesHeaderLen is the payload's fixed part: the count.
const candidatesHeaderLen = 1

// maxCandidatesPayload is the longest payload: every candidate IPv6.
const maxCandidatesPayload = candidatesHeaderLen + maxAnnounced*(1+1+16+2)

// Announced is one candidate address of a CANDIDATES packet.
type Announced struct {
	Addr netip.AddrPort
	// TCP marks a TCP punching address; otherwise the address takes UDP.
	TCP  bool
	Type CandidateType
}

// appendCandidatesPlain appends the plaintext payload of cands (at most
// maxAnnounced; the rest are dropped) to dst.
func appendCandidatesPlain(dst []byte, cands []Announced) []byte {
	cands = cands[:min(len(cands), maxAnnounced)]
	dst = append(dst, byte(len(cands)))
	for _, c := range cands {
		flags := byte(c.Type&0x0f) << 4
		if c.TCP {
			flags |= 1
		}
		a := c.Addr.Addr().Unmap()
		dst = append(dst, flags)
		if a.Is4() {
			b := a.As4()
			dst = append(append(dst, 4), b[:]...)
		} else {
			b := a.As16()
			dst = append(append(dst, 6), b[:]...)
		}
		dst = binary.BigEndian.AppendUint16(dst, c.Addr.Port())
	}
	return dst
}

// parseCandidatesPlain parses a plaintext payload. Every candidate must be
// well formed and usable (UsableCandidate), and nothing may follow the
// last: a payload either parses whole or is refused.
func parseCandidatesPlain(b []byte) ([]Announced, error) {
	if len(b) < candidatesHeaderLen {
		return nil, fmt.Errorf("%w: empty candidate list", ErrControlFormat)
	}
	n := int(b[0])
	if n > maxAnnounced {
		return nil, fmt.Errorf("%w: %d candidates", ErrControlFormat, n)
	}
	b = b[1:]
	out := make([]Announced, 0, n)
	for i := range n {
		if len(b) < 2 {
			return nil, fmt.Errorf("%w: candidate %d truncated", ErrControlFormat, i)
		}
		flags, family := b[0], b[1]
		if flags&0x0e != 0 {
			return nil, fmt.Errorf("%w: candidate %d has unknown flags 0x%02x", ErrControlFormat, i, flags)
		}
		t := CandidateType(flags >> 4)
		if !t.peerMayAnnounce() {
			return nil, fmt.Errorf("%w: candidate %d has type %d", ErrControlFormat, i, t)
		}
		var alen int
		switch family {
		case 4:
			alen = 4
		case 6:
			alen = 16
		default:
			return nil, fmt.Errorf("%w: candidate %d has family %d", ErrControlFormat, i, family)
		}
		if len(b) < 2+alen+2 {
			return nil, fmt.Errorf("%w: candidate %d truncated", ErrControlFormat, i)
		}
		addr, _ := netip.AddrFromSlice(b[2 : 2+alen])
		if family == 6 && addr.Is4In6() {
			// One address, one encoding: an IPv4 address comes as family 4.
			return nil, fmt.Errorf("%w: candidate %d is IPv4 sent as family 6", ErrControlFormat, i)
		}
		ap := netip.AddrPortFrom(addr, binary.BigEndian.Uint16(b[2+alen:]))
		if !UsableCandidate(ap) {
			return nil, fmt.Errorf("%w: candidate %d (%v) is not usable", ErrControlFormat, i, ap)
		}
		out = append(out, Announced{Addr: ap, TCP: flags&1 != 0, Type: t})
		b = b[2+alen+2:]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the candidates", ErrControlFormat, len(b))
	}
	return out, nil
}

// candidatesStream XORs b with the key stream of (key, session, counter).
func candidatesStream(key *[32]byte, session SessionID, counter uint64, b []byte) {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic(fmt.Sprintf("transport: candidates cipher: %v", err)) // a 32-byte key never fails
	}
	var iv [aes.BlockSize]byte
	copy(iv[:8], session[:])
	binary.BigEndian.PutUint64(iv[8:], counter)
	cipher.NewCTR(block, iv[:]).XORKeyStream(b, b)
}

// sealCandidates returns the encrypted payload of cands for a packet to
// session with counter.
func sealCandidates(cands []Announced, key *[32]byte, session SessionID, counter uint64) []byte {
	b := appendCandidatesPlain(make([]byte, 0, maxCandidatesPayload), cands)
	candidatesStream(key, session, counter, b)
	return b
}

// openCandidates decrypts and parses the payload of a CANDIDATES packet
// whose MAC was verified.
func openCandidates(p *ControlPacket, key *[32]byte) ([]Announced, error) {
	b := append([]byte(nil), p.Payload...)
	candidatesStream(key, p.Session, p.Counter, b)
	return parseCandidatesPlain(b)
}
