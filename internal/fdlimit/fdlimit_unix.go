//go:build unix

// Package fdlimit lets tests that open thousands of connections raise the
// process's file-descriptor limit, or skip when they cannot. Test-only.
package fdlimit

import (
	"syscall"
	"testing"
)

// Raise makes sure the process may hold need file descriptors, skipping tb
// when the hard limit is lower or cannot be raised.
func Raise(tb testing.TB, need uint64) {
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
