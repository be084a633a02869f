//go:build linux

package transfer

import (
	"os"

	"golang.org/x/sys/unix"
)

// punchHole deallocates [off, off+n) of f, which then reads as zeros
// without occupying disk space; the file's size is unchanged. It fails on
// filesystems that cannot do it, and the caller writes the zeros instead.
func punchHole(f *os.File, off, n int64) error {
	return unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
}
