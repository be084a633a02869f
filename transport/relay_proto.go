package transport

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// The relay protocol, version 1, over one TCP connection per side. The
// relay (`ferry rendezvous`, on its mailbox port) matches the two sides of
// a pairing by a token both derive from the pairing key, then forwards
// their datagrams, framed, and sees only what the transport sends anyway:
// authenticated control packets and QUIC packets.
//
//	client -> relay  hello:  "FRYR" | version (1) | token (32) | side (1: 0 dialer, 1 acceptor)
//	relay -> client  status: one byte, RelayWaiting at once, then RelayPaired
//	                 when the other side arrived; or a refusal, then close
//	both ways        frames: length (2, big-endian, 1..MaxRelayFrame) | datagram
//
// After pairing the relay forwards every frame unchanged to the other side.
// Either side closing, a malformed frame, the idle timeout or a limit ends
// the session for both.

// RelayMagic starts a relay hello; the rendezvous server tells relay
// connections from mailbox ones by it (a mailbox frame starts with a
// length, whose first byte is 0 for any frame the mailbox accepts).
const RelayMagic = "FRYR"

// RelayAddrMagic asks the relay which address it sees the connection come
// from, instead of a hello: the relay answers with that address
// (AppendRelayAddr) and closes. A TCP hole punch needs the public address
// of the very local port it punches from.
const RelayAddrMagic = "FRYA"

// IsRelayMagic reports whether the first bytes of a connection to the
// rendezvous port start the relay's protocol (a hello or an address query).
func IsRelayMagic(head []byte) bool {
	return string(head) == RelayMagic || string(head) == RelayAddrMagic
}

// relayAddrMaxLen is the longest address answer: family, IPv6, port.
const relayAddrMaxLen = 1 + 16 + 2

// AppendRelayAddr appends an address answer: family (4 or 6), IP, port.
func AppendRelayAddr(dst []byte, ap netip.AddrPort) []byte {
	a := ap.Addr().Unmap()
	if a.Is4() {
		ip := a.As4()
		dst = append(append(dst, 4), ip[:]...)
	} else {
		ip := a.As16()
		dst = append(append(dst, 6), ip[:]...)
	}
	return binary.BigEndian.AppendUint16(dst, ap.Port())
}

// ReadRelayAddr reads an address answer.
func ReadRelayAddr(r io.Reader) (netip.AddrPort, error) {
	var b [relayAddrMaxLen]byte
	if _, err := io.ReadFull(r, b[:1]); err != nil {
		return netip.AddrPort{}, err
	}
	n := 4
	switch b[0] {
	case 4:
	case 6:
		n = 16
	default:
		return netip.AddrPort{}, fmt.Errorf("%w: address family %d", ErrRelayFrame, b[0])
	}
	if _, err := io.ReadFull(r, b[1:1+n+2]); err != nil {
		return netip.AddrPort{}, err
	}
	ip, _ := netip.AddrFromSlice(b[1 : 1+n])
	if ip.Is4In6() {
		// AppendRelayAddr writes IPv4 as family 4: one address, one form.
		return netip.AddrPort{}, fmt.Errorf("%w: IPv4 address as family 6", ErrRelayFrame)
	}
	return netip.AddrPortFrom(ip, binary.BigEndian.Uint16(b[1+n:])), nil
}

// relayVersion is the protocol version in the hello.
const relayVersion = 1

// RelayTokenLen is the length of the pairing's relay token.
const RelayTokenLen = 32

// RelayHelloLen is the length of a relay hello.
const RelayHelloLen = len(RelayMagic) + 1 + RelayTokenLen + 1

// MaxRelayFrame bounds one relayed datagram: ferry's packets are at most
// 1452 bytes (QUIC) or MaxControlLen.
const MaxRelayFrame = 2048

// RelayStatus is the relay's one-byte answer to a hello.
type RelayStatus byte

// Relay statuses. Every value from RelayBusy on is a refusal: the relay
// closes the connection after sending it.
const (
	// RelayWaiting: the hello was accepted; the other side is not there yet.
	RelayWaiting RelayStatus = 0
	// RelayPaired: both sides are connected; frames flow from now on.
	RelayPaired RelayStatus = 1
	// RelayBusy: the relay carries as many sessions as it may.
	RelayBusy RelayStatus = 2
	// RelayTooManyFromAddr: this source address holds as many sessions as it may.
	RelayTooManyFromAddr RelayStatus = 3
	// RelaySideTaken: a connection for this token and side is already there.
	RelaySideTaken RelayStatus = 4
	// RelayBadHello: the hello was malformed or of an unknown version.
	RelayBadHello RelayStatus = 5
	// RelayDisabled: this server does not relay (`ferry rendezvous --no-relay`).
	RelayDisabled RelayStatus = 6
	// RelayTimeout: the other side did not arrive in time.
	RelayTimeout RelayStatus = 7
)

func (s RelayStatus) String() string {
	switch s {
	case RelayWaiting:
		return "waiting for the other side"
	case RelayPaired:
		return "paired"
	case RelayBusy:
		return "the relay is full"
	case RelayTooManyFromAddr:
		return "too many relayed sessions from this address"
	case RelaySideTaken:
		return "this pairing is already connected to the relay"
	case RelayBadHello:
		return "the relay did not understand the request"
	case RelayDisabled:
		return "the server does not relay"
	case RelayTimeout:
		return "the other side did not reach the relay in time"
	}
	return fmt.Sprintf("relay status %d", byte(s))
}

// RelayRefusedError is a refusal by the relay, with its reason.
type RelayRefusedError struct{ Status RelayStatus }

func (e *RelayRefusedError) Error() string { return "transport: relay refused: " + e.Status.String() }

// ErrRelayFrame: a relayed frame was empty or longer than MaxRelayFrame.
var ErrRelayFrame = errors.New("transport: malformed relay frame")

// AppendRelayHello appends the hello for token and side to dst.
func AppendRelayHello(dst []byte, token [RelayTokenLen]byte, side Role) []byte {
	dst = append(dst, RelayMagic...)
	dst = append(dst, relayVersion)
	dst = append(dst, token[:]...)
	return append(dst, byte(side))
}

// ParseRelayHello parses a hello. It fails on a wrong magic, version or side.
func ParseRelayHello(b []byte) (token [RelayTokenLen]byte, side Role, err error) {
	if len(b) != RelayHelloLen || string(b[:len(RelayMagic)]) != RelayMagic {
		return token, 0, fmt.Errorf("%w: not a relay hello", ErrRelayFrame)
	}
	if v := b[len(RelayMagic)]; v != relayVersion {
		return token, 0, fmt.Errorf("%w: version %d", ErrRelayFrame, v)
	}
	copy(token[:], b[len(RelayMagic)+1:])
	switch s := Role(b[RelayHelloLen-1]); s {
	case RoleDialer, RoleAcceptor:
		return token, s, nil
	default:
		return token, 0, fmt.Errorf("%w: side %d", ErrRelayFrame, byte(s))
	}
}

// WriteRelayFrame writes one framed datagram. A *bufio.Writer (what the
// relay and its clients use) takes the frame without an allocation; other
// writers get it in one Write.
func WriteRelayFrame(w io.Writer, b []byte) error {
	if len(b) == 0 || len(b) > MaxRelayFrame {
		return ErrRelayFrame
	}
	if bw, ok := w.(*bufio.Writer); ok {
		if err := bw.WriteByte(byte(len(b) >> 8)); err != nil {
			return err
		}
		if err := bw.WriteByte(byte(len(b))); err != nil {
			return err
		}
		_, err := bw.Write(b)
		return err
	}
	_, err := w.Write(AppendRelayFrame(make([]byte, 0, 2+len(b)), b))
	return err
}

// AppendRelayFrame appends the framed form of b to dst.
func AppendRelayFrame(dst, b []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(b)))
	return append(dst, b...)
}

// ReadRelayFrame reads one framed datagram into buf (at least MaxRelayFrame
// bytes) and returns its length.
func ReadRelayFrame(r io.Reader, buf []byte) (int, error) {
	if len(buf) < 2 {
		return 0, fmt.Errorf("%w: buffer of %d bytes", ErrRelayFrame, len(buf))
	}
	// The header goes into buf itself: a local array would escape to the
	// heap through the io.Reader, one allocation per frame.
	if _, err := io.ReadFull(r, buf[:2]); err != nil {
		return 0, err
	}
	n := int(binary.BigEndian.Uint16(buf[:2]))
	if n == 0 || n > MaxRelayFrame || n > len(buf) {
		return 0, fmt.Errorf("%w: length %d", ErrRelayFrame, n)
	}
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		return 0, err
	}
	return n, nil
}

// frameBuffered reports whether r holds a whole frame, so reading it will
// not block.
func frameBuffered(r *bufio.Reader) bool {
	if r.Buffered() < 2 {
		return false
	}
	h, _ := r.Peek(2)
	return r.Buffered() >= 2+int(binary.BigEndian.Uint16(h))
}
