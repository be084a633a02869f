//go:build !unix

package e2e

// maxRSS returns 0: this system's process usage (Windows' Rusage holds
// only times) has no peak resident set size.
func maxRSS(*ferryProc) int64 { return 0 }
