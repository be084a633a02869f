//go:build linux || darwin || freebsd || dragonfly

package transfer

import (
	"errors"
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"
)

// FreeSpace returns the bytes available to this (unprivileged) user on the
// filesystem holding dir. On systems where it is not implemented it returns
// -1 and no error.
func FreeSpace(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, Errorf(KindInternal, "", "free space of %q: %w", dir, &fs.PathError{Op: "statfs", Path: dir, Err: err})
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// isDiskFull reports whether err means the disk is full or the user's quota
// is exhausted.
func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
