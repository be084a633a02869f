//go:build !linux

package transport

import (
	"net"

	"golang.org/x/net/ipv4"
)

// newBatchReader returns nil: recvmmsg is Linux-only. On macOS and the BSDs
// x/net's ReadBatch reads one message per call, no better than
// ReadFromUDPAddrPort, and on Windows it is not implemented at all, so the
// carrier reads one datagram at a time.
func newBatchReader(*net.UDPConn) *ipv4.PacketConn { return nil }
