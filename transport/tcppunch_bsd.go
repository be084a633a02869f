//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package transport

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// reuseControl sets SO_REUSEADDR and SO_REUSEPORT before a socket is
// bound, so that a tcpPort's listener and its outgoing connections share
// one local address: BSD systems need both for two sockets on the same
// address and port. (On these systems a simultaneous open completes the
// outgoing connect; the listener takes SYNs that arrive between attempts.)
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

// tcpNetns stands for a network namespace, which this system does not
// have: a tcpPort's sockets are all in the one network stack.
type tcpNetns struct{}

// openPinned runs listen; there is no namespace to remember.
func openPinned(listen func() error) (*tcpNetns, error) { return nil, listen() }

// dial runs dial where it is.
func (*tcpNetns) dial(dial func() (net.Conn, error)) (net.Conn, error) { return dial() }

func (*tcpNetns) close() {}
