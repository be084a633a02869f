//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package transport

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// reuseControl sets SO_REUSEADDR and SO_REUSEPORT before a socket is
// bound, so that a tcpPort's listener and its outgoing connections share
// one local address. Linux lets a socket bind a port a listener holds only
// with SO_REUSEPORT on both, and only for sockets of the same user (other
// users' programs cannot take over the port); BSD systems need both for
// two sockets on one address and port, and complete a simultaneous open
// on the outgoing connect, the listener taking SYNs that arrive between
// attempts.
func reuseControl(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		if serr == nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}
	})
	if err != nil {
		return err
	}
	return serr
}
