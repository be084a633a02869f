//go:build !(linux || darwin || freebsd || dragonfly)

package transfer

import (
	"errors"
	"runtime"
	"syscall"
)

// FreeSpace returns the bytes available to this user on the filesystem
// holding dir. It is not implemented on this system: it returns -1 and no
// error.
func FreeSpace(dir string) (int64, error) {
	return -1, nil
}

// isDiskFull reports whether err means the disk is full or the user's quota
// is exhausted.
func isDiskFull(err error) bool {
	if errors.Is(err, syscall.ENOSPC) {
		return true
	}
	var errno syscall.Errno
	if runtime.GOOS == "windows" && errors.As(err, &errno) {
		// ERROR_HANDLE_DISK_FULL, ERROR_DISK_FULL
		return errno == 39 || errno == 112
	}
	return false
}
