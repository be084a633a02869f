//go:build unix

package e2e

import (
	"runtime"
	"syscall"
)

// maxRSS returns the finished process's peak resident set size in KiB, or 0
// if the system did not report it. Linux and the BSDs report KiB, macOS
// reports bytes.
func maxRSS(p *ferryProc) int64 {
	ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0
	}
	rss := int64(ru.Maxrss) // int32 on some 32-bit systems
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		rss /= 1024
	}
	return rss
}
