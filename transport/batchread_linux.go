package transport

import (
	"net"

	"golang.org/x/net/ipv4"
)

// newBatchReader returns a reader that fills many datagrams per system call
// (recvmmsg). The ipv4 package's messages are family-independent, so it also
// reads IPv6 datagrams from a dual-stack socket.
func newBatchReader(udp *net.UDPConn) *ipv4.PacketConn { return ipv4.NewPacketConn(udp) }
