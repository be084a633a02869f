package transport

import "encoding/binary"

// PacketClass is what the shared socket decided a datagram is, from its first bytes.
type PacketClass int

// Packet classes, in the order the demultiplexer tests them.
const (
	// ClassUnknown is anything else: dropped and counted.
	ClassUnknown PacketClass = iota
	// ClassQUIC has the QUIC fixed bit 0x40 set in its first byte.
	ClassQUIC
	// ClassSTUN starts 0x00 or 0x01 and carries the STUN magic cookie at bytes 4..7.
	ClassSTUN
	// ClassControl is a ferry control packet: first byte 0x20-0x2f and the magic "FRY".
	ClassControl
)

func (c PacketClass) String() string {
	switch c {
	case ClassQUIC:
		return "quic"
	case ClassSTUN:
		return "stun"
	case ClassControl:
		return "control"
	}
	return "unknown"
}

// stunMagicCookie is RFC 5389's fixed value at bytes 4..7 of every STUN message.
const stunMagicCookie = 0x2112A442

// stunHeaderLen is the length of a STUN message header.
const stunHeaderLen = 20

// Classify sorts one datagram received on the shared socket by its first byte
// (and the magic that follows for STUN and control packets).
func Classify(b []byte) PacketClass {
	if len(b) == 0 {
		return ClassUnknown
	}
	switch {
	case b[0]&0x40 != 0:
		return ClassQUIC
	case b[0] <= 0x01:
		if len(b) >= stunHeaderLen && binary.BigEndian.Uint32(b[4:8]) == stunMagicCookie {
			return ClassSTUN
		}
	case IsControl(b):
		return ClassControl
	}
	return ClassUnknown
}
