//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package transport

import "net"

// tcpNetns stands for a network namespace, which this system does not
// have: a tcpPort's sockets are all in the one network stack.
type tcpNetns struct{}

// openPinned runs listen; there is no namespace to remember.
func openPinned(listen func() error) (*tcpNetns, error) { return nil, listen() }

// dial runs dial where it is.
func (*tcpNetns) dial(dial func() (net.Conn, error)) (net.Conn, error) { return dial() }

func (*tcpNetns) close() {}
