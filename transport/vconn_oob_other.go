//go:build !linux

package transport

import (
	"net"
	"syscall"
)

// quicPacketConn returns the plain vconn: quic-go reads and writes it one
// packet at a time (ReadFrom, WriteTo). Off Linux, quic-go's OOB path would
// buy ferry nothing: there is no GSO, macOS reads one message per batch,
// Windows uses single reads and writes anyway, and ferry drops ECN marks
// because paths change under quic-go. Not offering SyscallConn also keeps
// quic-go from setting socket options (DF, ECN and packet-info reception)
// on the shared real socket, which ferry's carriers read and write for
// STUN and control packets as well.
func quicPacketConn(vc *vconn, _ syscall.RawConn) net.PacketConn { return vc }
