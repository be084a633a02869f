//go:build !unix

// Package fdlimit lets tests that open thousands of connections raise the
// process's file-descriptor limit, or skip when they cannot. Test-only.
package fdlimit

import "testing"

// Raise does nothing where there is no RLIMIT_NOFILE.
func Raise(testing.TB, uint64) {}
