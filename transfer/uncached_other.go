//go:build !linux

package transfer

import "os"

// setUncached reports false: direct I/O is used on Linux only.
func setUncached(*os.File, bool) bool { return false }

// uncachedAligned reports false: nothing is written uncached here.
func uncachedAligned([]byte, int64) bool { return false }

// isUncachedRefused reports false: nothing is written uncached here.
func isUncachedRefused(error) bool { return false }
