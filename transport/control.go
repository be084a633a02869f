package transport

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// ControlType is the kind of a ferry control packet. Its value is the packet's
// first byte, in the range reserved for ferry (0x20-0x2f), below QUIC's 0x40
// bit and away from STUN's 0x00-0x03.
type ControlType byte

// Control packet types. HELLO and PROBE belong to connecting (they
// carry both sides' attempt nonces); the others to an established connection.
const (
	// CtrlPing asks the peer for a CtrlPong on the same path: keepalive, RTT
	// and reachability probe of an established connection.
	CtrlPing ControlType = 0x21
	// CtrlPong answers a CtrlPing, echoing its data.
	CtrlPong ControlType = 0x22
	// CtrlPathChallenge asks the peer to prove it receives on a path.
	CtrlPathChallenge ControlType = 0x23
	// CtrlPathResponse echoes a CtrlPathChallenge's data from the path it
	// arrived on.
	CtrlPathResponse ControlType = 0x24
	// CtrlPunch opens NAT mappings; it is answered like a ping.
	CtrlPunch ControlType = 0x25
	// CtrlHello starts a connection attempt: it carries the sender's fresh
	// nonce and is authenticated with the pairing's hello key only, so it
	// proves nothing about freshness: it is answered (by one CtrlProbe),
	// never believed.
	CtrlHello ControlType = 0x26
	// CtrlProbe carries both attempt nonces under the attempt's keys (the
	// receiver's own nonce in it proves it fresh), a challenge of the sender
	// in Data and the answer to the receiver's challenge in Echo (either may
	// be zero). Echoing a challenge from the address it was sent to proves
	// that address for the attempt.
	CtrlProbe ControlType = 0x27
	// CtrlCandidates tells the peer where this side can be reached now,
	// after its network changed: a generation number in Data and the
	// candidate list, encrypted, after the header (control_candidates.go).
	// It is sent only on proven paths (the active path, the relay).
	CtrlCandidates ControlType = 0x28
	// CtrlCandidatesAck acknowledges the CtrlCandidates whose generation
	// it echoes in Data.
	CtrlCandidatesAck ControlType = 0x29
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
	case CtrlHello:
		return "HELLO"
	case CtrlProbe:
		return "PROBE"
	case CtrlCandidates:
		return "CANDIDATES"
	case CtrlCandidatesAck:
		return "CANDIDATES_ACK"
	}
	return fmt.Sprintf("CONTROL(0x%02x)", byte(t))
}

// connecting reports whether packets of this type belong to a connection
// attempt: they carry both nonces and are addressed to the pairing's
// session ID.
func (t ControlType) connecting() bool {
	return t == CtrlHello || t == CtrlProbe
}

func (t ControlType) known() bool { return t >= CtrlPing && t <= CtrlCandidatesAck }

// FlagActivePath is set when a control packet leaves on the sender's active
// path (the carrier it sends QUIC on). Only active-path packets from a new
// address start passive migration, and a PATH_RESPONSE moves the path only
// when it is flagged.
const FlagActivePath byte = 1 << 1

const flagsKnown = FlagActivePath

// Nonce is one side's fresh random contribution to a connection attempt.
type Nonce [16]byte

// Wire layout of a control packet (all integers big-endian):
//
//	0      type (ControlType)
//	1..3   magic "FRY"
//	4      version (2)
//	5      flags
//	6..13  session ID: the receiver's name for the endpoint (the pairing's
//	       while connecting, the attempt's once established)
//	14..21 counter: the sender's packet number in this attempt (replay window)
//	22..29 data: challenge data or ping ID (zero: none)
//	30..37 HELLO, PROBE only: echo, the receiver's challenge answered (zero: none)
//	38..53 HELLO, PROBE only: the sender's attempt nonce
//	54..69 HELLO, PROBE only: the receiver's attempt nonce (zero in HELLO)
//	30..   CANDIDATES only: the encrypted candidate list (control_candidates.go)
//	last 16 bytes: HMAC-SHA256 over everything before it, truncated, keyed
//	       with the sender-to-receiver key of the attempt (HELLO: of the pairing)
//
// Every answer is no longer than what it answers, so no answer amplifies.
const (
	controlMagic0, controlMagic1, controlMagic2 = 'F', 'R', 'Y'
	controlVersion                              = 2
	controlHeaderLen                            = 30
	controlConnectingLen                        = 8 + 2*len(Nonce{})
	controlMACLen                               = 16
	// MinControlLen is the length of an established connection's control packet.
	MinControlLen = controlHeaderLen + controlMACLen
	// MaxControlLen is the length of a connecting control packet.
	MaxControlLen = controlHeaderLen + controlConnectingLen + controlMACLen
	// MaxCandidatesLen is the longest CANDIDATES packet: the header, a
	// full list and the MAC.
	MaxCandidatesLen = controlHeaderLen + maxCandidatesPayload + controlMACLen
)

// SessionID names one peer endpoint inside control packets. Both peers derive
// the same value from their shared key (and, once established, the attempt's
// nonces).
type SessionID [8]byte

// ControlPacket is a parsed ferry control packet.
type ControlPacket struct {
	Type    ControlType
	Flags   byte
	Session SessionID
	Counter uint64
	Data    [8]byte
	// Echo answers the receiver's challenge (connecting types only).
	Echo [8]byte
	// Nonce and PeerNonce: the sender's and the receiver's attempt nonces
	// (connecting types only).
	Nonce, PeerNonce Nonce
	// Payload is what follows the header, before the MAC (CANDIDATES
	// only: the encrypted list). It aliases the parsed buffer.
	Payload []byte
}

// Errors returned by ParseControl and VerifyControl. They are sentinel
// values so callers (and counters) can tell malformed input from forgery.
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

// controlLen is the wire length of a packet of type t: CANDIDATES, the
// one type of variable length, at its shortest (an empty list).
func controlLen(t ControlType) int {
	switch {
	case t.connecting():
		return MaxControlLen
	case t == CtrlCandidates:
		return MinControlLen + candidatesHeaderLen
	}
	return MinControlLen
}

// controlLenOK reports whether n is a valid wire length for type t.
func controlLenOK(t ControlType, n int) bool {
	if t == CtrlCandidates {
		return n >= controlLen(t) && n <= MaxCandidatesLen
	}
	return n == controlLen(t)
}

// AppendControl appends the wire form of p, authenticated with key, to dst.
func AppendControl(dst []byte, p *ControlPacket, key *ControlKey) []byte {
	start := len(dst)
	dst = append(dst, byte(p.Type), controlMagic0, controlMagic1, controlMagic2, controlVersion, p.Flags&flagsKnown)
	dst = append(dst, p.Session[:]...)
	dst = binary.BigEndian.AppendUint64(dst, p.Counter)
	dst = append(dst, p.Data[:]...)
	if p.Type.connecting() {
		dst = append(dst, p.Echo[:]...)
		dst = append(dst, p.Nonce[:]...)
		dst = append(dst, p.PeerNonce[:]...)
	}
	if p.Type == CtrlCandidates {
		dst = append(dst, p.Payload...)
	}
	mac := key.sum(dst[start:])
	return append(dst, mac[:controlMACLen]...)
}

// ParseControl parses a control packet's fields without authenticating it:
// the receiver finds the endpoint by session ID and then checks the packet
// with VerifyControl under the key the type and nonces call for.
func ParseControl(b []byte) (*ControlPacket, error) {
	if !IsControl(b) {
		return nil, ErrNotControl
	}
	if len(b) < 5 {
		return nil, ErrControlFormat
	}
	if b[4] != controlVersion {
		return nil, fmt.Errorf("%w: %d", ErrControlVersion, b[4])
	}
	t := ControlType(b[0])
	if !t.known() {
		return nil, fmt.Errorf("%w: unknown type 0x%02x", ErrControlFormat, b[0])
	}
	if !controlLenOK(t, len(b)) {
		return nil, fmt.Errorf("%w: %v of length %d", ErrControlFormat, t, len(b))
	}
	p := &ControlPacket{Type: t, Flags: b[5]}
	if p.Flags&^flagsKnown != 0 {
		return nil, fmt.Errorf("%w: unknown flags 0x%02x", ErrControlFormat, p.Flags)
	}
	copy(p.Session[:], b[6:14])
	p.Counter = binary.BigEndian.Uint64(b[14:22])
	copy(p.Data[:], b[22:30])
	if t.connecting() {
		copy(p.Echo[:], b[30:38])
		copy(p.Nonce[:], b[38:54])
		copy(p.PeerNonce[:], b[54:70])
	}
	if t == CtrlCandidates {
		p.Payload = b[controlHeaderLen : len(b)-controlMACLen]
	}
	return p, nil
}

// VerifyControl checks the MAC of a packet that ParseControl accepted.
func VerifyControl(b []byte, key *ControlKey) error {
	if key == nil || len(b) < MinControlLen {
		return ErrControlAuth
	}
	body := b[:len(b)-controlMACLen]
	mac := key.sum(body)
	if !hmac.Equal(mac[:controlMACLen], b[len(body):]) {
		return ErrControlAuth
	}
	return nil
}

// ControlKey authenticates control packets in one direction.
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
