//go:build !linux

package transport

import "net"

// setSocketBuffers asks for socketBufferSize socket buffers, within the
// system's limits: only Linux can force a size past them. Failure only
// costs throughput.
func setSocketBuffers(udp *net.UDPConn) {
	_ = udp.SetReadBuffer(socketBufferSize)
	_ = udp.SetWriteBuffer(socketBufferSize)
}
