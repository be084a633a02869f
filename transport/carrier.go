package transport

import (
	"net/netip"
)

// PathKind says what carries a path's datagrams.
type PathKind int

// Path kinds: a local UDP socket, a punched TCP connection, a relay session.
const (
	PathNone PathKind = iota
	PathDirectUDP
	PathDirectTCP
	PathRelay
)

// rank orders path kinds by preference: direct UDP first, then direct
// TCP (head-of-line blocking under QUIC), then the relay (a detour through
// the server). Lower is better.
func (k PathKind) rank() int {
	switch k {
	case PathDirectUDP:
		return 0
	case PathDirectTCP:
		return 1
	case PathRelay:
		return 2
	}
	return 3
}

func (k PathKind) String() string {
	switch k {
	case PathDirectUDP:
		return "direct-udp"
	case PathDirectTCP:
		return "direct-tcp"
	case PathRelay:
		return "relay"
	}
	return "none"
}

// Datagram is one received datagram, filled in by Carrier.ReadBatch.
type Datagram struct {
	// Buf is the buffer to read into; N bytes of it are valid after a
	// read, unless the datagram is in a slab.
	Buf  []byte
	N    int
	From netip.AddrPort

	// slab, when a carrier sets it, holds the datagram instead of Buf:
	// view is the datagram, and the reader owns one reference to slab.
	slab *rxSlab
	view []byte
}

// payload returns the datagram read: view, or the first N bytes of Buf.
func (d *Datagram) payload() []byte {
	if d.slab != nil {
		return d.view
	}
	return d.Buf[:d.N]
}

// A Carrier moves ferry's datagrams (QUIC, control and STUN packets) between
// this process and remote addresses over one kind of path: a UDP socket today,
// a TCP connection or a relay later. The Socket owns every carrier and the one
// goroutine that reads it.
type Carrier interface {
	// Kind is the path kind this carrier provides.
	Kind() PathKind
	// LocalAddr is the local address datagrams leave from.
	LocalAddr() netip.AddrPort
	// ReadBatch blocks until at least one datagram arrives and fills ds[:n].
	// After Close it returns an error.
	ReadBatch(ds []Datagram) (n int, err error)
	// WriteTo sends b to the remote address. When segSize > 0, b is a batch of
	// segSize-byte datagrams (the last one may be shorter) built for UDP
	// segmentation offload; a carrier that cannot offload sends them one by one.
	WriteTo(b []byte, segSize int, to netip.AddrPort) error
	// Close releases the carrier and unblocks ReadBatch.
	Close() error
}

// splitSegments calls send for every segSize-byte datagram in a GSO batch.
func splitSegments(b []byte, segSize int, send func([]byte) error) error {
	if segSize <= 0 || segSize >= len(b) {
		return send(b)
	}
	for len(b) > 0 {
		n := min(segSize, len(b))
		if err := send(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
