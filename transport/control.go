package transport

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// ControlType is the kind of a ferry control packet. Its value is the packet's
// first byte, in the range reserved for ferry (0x20-0x2f), below QUIC's 0x40
// bit and away from STUN's 0x00-0x03.
type ControlType byte

// Control packet types.
const (
	// CtrlPing asks the peer for a CtrlPong on the same path: keepalive, RTT
	// and reachability probe.
	CtrlPing ControlType = 0x21
	// CtrlPong answers a CtrlPing, echoing its data and the source address
	// the ping was seen from.
	CtrlPong ControlType = 0x22
	// CtrlPathChallenge asks the peer to prove it receives on a path.
	CtrlPathChallenge ControlType = 0x23
	// CtrlPathResponse echoes a CtrlPathChallenge's data from the path it
	// arrived on.
	CtrlPathResponse ControlType = 0x24
	// CtrlPunch opens NAT mappings; it is answered like a ping.
	CtrlPunch ControlType = 0x25
)

func (t ControlType) String() string {
	switch t {
	case CtrlPing:
		return "PING"
	case CtrlPong:
		return "PONG"
	case CtrlPathChallenge:
		return "PATH_CHALLENGE"
	case CtrlPathResponse:
		return "PATH_RESPONSE"
	case CtrlPunch:
		return "PUNCH"
	}
	return fmt.Sprintf("CONTROL(0x%02x)", byte(t))
}

// carriesAddr reports whether packets of this type carry the observed source
// address of the packet they answer.
func (t ControlType) carriesAddr() bool { return t == CtrlPong || t == CtrlPathResponse }

// Control packet flag bits.
const (
	// FlagFromAcceptor is set when the sender is the accepting (QUIC server) side.
	FlagFromAcceptor byte = 1 << 0
	// FlagPrimary is set when the packet leaves on the sender's active path
	// (its current carrier for this peer). Only primary packets from a new
	// address start passive migration, and a PATH_RESPONSE moves the path only
	// when it is primary.
	FlagPrimary byte = 1 << 1
	flagsKnown       = FlagFromAcceptor | FlagPrimary
)

// Wire layout of a control packet (all integers big-endian):
//
//	0      type (ControlType)
//	1..3   magic "FRY"
//	4      version (1)
//	5      flags
//	6..13  session ID: names the peer endpoint, derived from the shared key
//	14..21 data: challenge data, ping transaction ID or punch nonce
//	22..   PONG and PATH_RESPONSE only: observed address, 1 byte family (4 or 6), IP, 2 bytes port
//	last 16 bytes: HMAC-SHA256 over everything before it, keyed with the control key, truncated
const (
	controlMagic0, controlMagic1, controlMagic2 = 'F', 'R', 'Y'
	controlVersion                              = 1
	controlHeaderLen                            = 22
	controlMACLen                               = 16
	// MinControlLen is the length of the shortest valid control packet.
	MinControlLen = controlHeaderLen + controlMACLen
	// MaxControlLen is the length of the longest valid control packet.
	MaxControlLen = controlHeaderLen + 1 + 16 + 2 + controlMACLen
)

// SessionID names one peer endpoint inside control packets. Both peers derive
// the same value from their shared key.
type SessionID [8]byte

// ControlPacket is a parsed ferry control packet.
type ControlPacket struct {
	Type    ControlType
	Flags   byte
	Session SessionID
	Data    [8]byte
	// Observed is the source address the answered packet was seen from
	// (PONG and PATH_RESPONSE only): a free reflexive-address hint.
	Observed netip.AddrPort
}

// Errors returned by ParseControl. They are sentinel values so callers (and
// counters) can tell malformed input from forgery.
var (
	ErrNotControl     = errors.New("transport: not a ferry control packet")
	ErrControlVersion = errors.New("transport: unsupported control packet version")
	ErrControlFormat  = errors.New("transport: malformed control packet")
	ErrControlAuth    = errors.New("transport: control packet failed authentication")
)

// IsControl reports whether b looks like a ferry control packet (type range and
// magic); it does not authenticate it.
func IsControl(b []byte) bool {
	return len(b) >= 4 && b[0]&0xf0 == 0x20 && b[1] == controlMagic0 && b[2] == controlMagic1 && b[3] == controlMagic2
}

// AppendControl appends the wire form of p, authenticated with key, to dst.
func AppendControl(dst []byte, p *ControlPacket, key *ControlKey) []byte {
	start := len(dst)
	dst = append(dst, byte(p.Type), controlMagic0, controlMagic1, controlMagic2, controlVersion, p.Flags&flagsKnown)
	dst = append(dst, p.Session[:]...)
	dst = append(dst, p.Data[:]...)
	if p.Type.carriesAddr() {
		dst = appendAddrPort(dst, p.Observed)
	}
	mac := key.sum(dst[start:])
	return append(dst, mac[:controlMACLen]...)
}

// ParseControl parses and authenticates a control packet. The key is looked up
// by session ID through keyFor, which returns nil for unknown sessions.
func ParseControl(b []byte, keyFor func(SessionID) *ControlKey) (*ControlPacket, error) {
	if !IsControl(b) {
		return nil, ErrNotControl
	}
	if len(b) < 5 {
		return nil, ErrControlFormat
	}
	if b[4] != controlVersion {
		return nil, fmt.Errorf("%w: %d", ErrControlVersion, b[4])
	}
	if len(b) < MinControlLen || len(b) > MaxControlLen {
		return nil, fmt.Errorf("%w: length %d", ErrControlFormat, len(b))
	}
	p := &ControlPacket{Type: ControlType(b[0]), Flags: b[5]}
	switch p.Type {
	case CtrlPing, CtrlPong, CtrlPathChallenge, CtrlPathResponse, CtrlPunch:
	default:
		return nil, fmt.Errorf("%w: unknown type 0x%02x", ErrControlFormat, b[0])
	}
	if p.Flags&^flagsKnown != 0 {
		return nil, fmt.Errorf("%w: unknown flags 0x%02x", ErrControlFormat, p.Flags)
	}
	copy(p.Session[:], b[6:14])
	copy(p.Data[:], b[14:22])
	body := b[:len(b)-controlMACLen]
	rest := body[controlHeaderLen:]
	if p.Type.carriesAddr() {
		ap, n, err := parseAddrPort(rest)
		if err != nil {
			return nil, err
		}
		p.Observed = ap
		rest = rest[n:]
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrControlFormat, len(rest))
	}
	key := keyFor(p.Session)
	if key == nil {
		return nil, fmt.Errorf("%w: unknown session", ErrControlAuth)
	}
	mac := key.sum(body)
	if !hmac.Equal(mac[:controlMACLen], b[len(body):]) {
		return nil, ErrControlAuth
	}
	return p, nil
}

func appendAddrPort(dst []byte, ap netip.AddrPort) []byte {
	a := ap.Addr().Unmap()
	switch {
	case a.Is4():
		ip := a.As4()
		dst = append(dst, 4)
		dst = append(dst, ip[:]...)
	case a.Is6():
		ip := a.As16()
		dst = append(dst, 6)
		dst = append(dst, ip[:]...)
	default:
		// unknown address: an IPv4 zero address says "not observed"
		dst = append(dst, 4, 0, 0, 0, 0)
	}
	return binary.BigEndian.AppendUint16(dst, ap.Port())
}

func parseAddrPort(b []byte) (netip.AddrPort, int, error) {
	if len(b) < 1 {
		return netip.AddrPort{}, 0, fmt.Errorf("%w: missing address", ErrControlFormat)
	}
	var ipLen int
	switch b[0] {
	case 4:
		ipLen = 4
	case 6:
		ipLen = 16
	default:
		return netip.AddrPort{}, 0, fmt.Errorf("%w: address family %d", ErrControlFormat, b[0])
	}
	n := 1 + ipLen + 2
	if len(b) < n {
		return netip.AddrPort{}, 0, fmt.Errorf("%w: short address", ErrControlFormat)
	}
	addr, _ := netip.AddrFromSlice(b[1 : 1+ipLen])
	port := binary.BigEndian.Uint16(b[1+ipLen:])
	return netip.AddrPortFrom(addr, port), n, nil
}

// ControlKey authenticates control packets for one peer endpoint.
type ControlKey struct {
	key [32]byte
}

func (k *ControlKey) sum(b []byte) [sha256.Size]byte {
	m := hmac.New(sha256.New, k.key[:])
	m.Write(b)
	var out [sha256.Size]byte
	m.Sum(out[:0])
	return out
}
