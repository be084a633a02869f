//go:build !linux && !darwin && !dragonfly && !freebsd && !netbsd && !openbsd

package transport

import (
	"net"
	"syscall"
)

// reuseControl sets SO_REUSEADDR before a socket is bound. These systems
// (Windows, Solaris and the rest) have no SO_REUSEPORT. On Windows
// SO_REUSEADDR alone lets the listener and the outgoing connections share
// the port; it also lets any other program bind the port while it is in
// use (SO_EXCLUSIVEADDRUSE would forbid that, and the sharing with it), an
// exposure limited to the punch, whose connections are authenticated
// anyway. Where SO_REUSEADDR does not allow the sharing, DialFrom fails
// with "address in use" and the port only accepts (see tcpPort).
func reuseControl(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = setsockoptInt(syscall.SetsockoptInt, fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// setsockoptInt calls set, the system's syscall.SetsockoptInt, with fd
// converted to the system's descriptor type (an int, or a Handle on
// Windows), so that one file serves both.
func setsockoptInt[FD ~int | ~uintptr](set func(FD, int, int, int) error, fd uintptr, level, opt, value int) error {
	return set(FD(fd), level, opt, value)
}

// tcpNetns stands for a network namespace, which this system does not
// have: a tcpPort's sockets are all in the one network stack.
type tcpNetns struct{}

// openPinned runs listen; there is no namespace to remember.
func openPinned(listen func() error) (*tcpNetns, error) { return nil, listen() }

// dial runs dial where it is.
func (*tcpNetns) dial(dial func() (net.Conn, error)) (net.Conn, error) { return dial() }

func (*tcpNetns) close() {}
