//go:build !linux

package transport

import (
	"net"
	"net/netip"
)

// UDP segmentation offload (UDP_SEGMENT) exists only on Linux. Elsewhere
// quic-go never builds offload batches for ferry's virtual conns (they do not
// offer its OOB interface there, see vconn_oob_other.go), and a batch that
// reaches a carrier anyway is split into single datagrams.

// gsoSupported is false: this system has no UDP_SEGMENT.
func gsoSupported(*net.UDPConn) bool { return false }

// writeGSO is not reached while gsoSupported is false; should it be, it
// sends the batch one datagram at a time.
func writeGSO(udp *net.UDPConn, b []byte, segSize int, to netip.AddrPort) error {
	return splitSegments(b, segSize, func(d []byte) error {
		_, err := udp.WriteToUDPAddrPort(d, to)
		return err
	})
}

// isGSOError is false: without offload the kernel never refuses it.
func isGSOError(error) bool { return false }
