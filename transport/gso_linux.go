package transport

import (
	"errors"
	"net"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// UDP generic segmentation offload (GSO) on Linux: one sendmsg carries a
// batch of equal-sized datagrams and a UDP_SEGMENT control message, and the
// kernel (or the NIC) cuts it into datagrams.

// gsoSupported asks the kernel whether this socket accepts UDP_SEGMENT.
func gsoSupported(udp *net.UDPConn) bool {
	rc, err := udp.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		_, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
	}); err != nil {
		return false
	}
	return serr == nil
}

// writeGSO sends b, a batch of segSize-byte datagrams (the last may be
// shorter), to to in one sendmsg with a UDP_SEGMENT control message.
func writeGSO(udp *net.UDPConn, b []byte, segSize int, to netip.AddrPort) error {
	var oob [32]byte
	n := putSegmentSizeCmsg(oob[:], uint16(segSize))
	_, _, err := udp.WriteMsgUDPAddrPort(b, oob[:n], to)
	return err
}

// isGSOError reports the kernel's refusal of segmentation offload, which
// quic-go must see so it can fall back to single datagrams.
func isGSOError(err error) bool {
	var serr *os.SyscallError
	return errors.As(err, &serr) && serr.Err == unix.EIO
}
