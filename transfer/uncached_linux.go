//go:build linux

package transfer

import (
	"errors"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// setUncached turns O_DIRECT on or off for f's open file description and
// reports whether it succeeded (file systems without direct I/O, such as
// tmpfs, refuse it).
func setUncached(f *os.File, on bool) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	_ = rc.Control(func(fd uintptr) {
		fl, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
		if err != nil {
			return
		}
		if on {
			fl |= unix.O_DIRECT
		} else {
			fl &^= unix.O_DIRECT
		}
		_, err = unix.FcntlInt(fd, unix.F_SETFL, fl)
		ok = err == nil
	})
	return ok
}

// uncachedAligned reports whether a write of b at off meets direct I/O's
// alignment: buffer address, offset and length all multiples of
// uncachedAlign.
func uncachedAligned(b []byte, off int64) bool {
	return len(b) > 0 && len(b)%uncachedAlign == 0 && off%uncachedAlign == 0 &&
		uintptr(unsafe.Pointer(unsafe.SliceData(b)))%uncachedAlign == 0
}

// isUncachedRefused reports a file system's refusal of a direct write
// (EINVAL: alignment or no direct I/O at all).
func isUncachedRefused(err error) bool { return errors.Is(err, unix.EINVAL) }
