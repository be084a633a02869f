//go:build !linux

package transport

import (
	"errors"
	"net"
)

// UDP generic receive offload (UDP_GRO) exists only on Linux; elsewhere the
// carrier reads one datagram per entry as before (carrier_udp.go).

// groReader has no instances off Linux: newGROReader always returns nil.
type groReader struct{}

// newGROReader returns nil: this system has no UDP_GRO.
func newGROReader(*net.UDPConn) *groReader { return nil }

// ReadBatch is never reached, as there is no groReader; should it be, it
// fails.
func (*groReader) ReadBatch([]Datagram) (int, error) {
	return 0, errors.New("transport: UDP_GRO is Linux-only")
}
