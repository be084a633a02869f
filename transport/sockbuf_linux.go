package transport

import (
	"net"

	"golang.org/x/sys/unix"
)

// setSocketBuffers raises the socket buffers to socketBufferSize; as root it
// may exceed the system maximum (net.core.rmem_max) with SO_RCVBUFFORCE and
// SO_SNDBUFFORCE. Failure only costs throughput.
func setSocketBuffers(udp *net.UDPConn) {
	_ = udp.SetReadBuffer(socketBufferSize)
	_ = udp.SetWriteBuffer(socketBufferSize)
	if rc, err := udp.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, socketBufferSize)
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, socketBufferSize)
		})
	}
}
