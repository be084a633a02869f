//go:build unix

package mailbox

import (
	"syscall"
	"testing"
)

// raiseFileLimit makes sure the process may hold need file descriptors,
// skipping the test when it cannot.
func raiseFileLimit(tb testing.TB, need uint64) {
	tb.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		tb.Skipf("getrlimit: %v", err)
	}
	if lim.Cur >= need {
		return
	}
	if lim.Max < need {
		tb.Skipf("RLIMIT_NOFILE hard limit %d < %d file descriptors needed", lim.Max, need)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		tb.Skipf("cannot raise RLIMIT_NOFILE to %d: %v", need, err)
	}
}
