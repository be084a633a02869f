//go:build !unix

package discovery

import "syscall"

// reuseAddrPort is a no-op where SO_REUSEPORT does not exist.
func reuseAddrPort(_, _ string, _ syscall.RawConn) error { return nil }
