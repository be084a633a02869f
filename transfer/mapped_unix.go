//go:build unix

package transfer

import (
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps size bytes of f read-only, or returns nil.
func mapFile(f *os.File, size int64) []byte {
	if size <= 0 || int64(int(size)) != size {
		return nil
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil
	}
	return b
}

// unmapFile releases a mapping made by mapFile.
func unmapFile(b []byte) { _ = unix.Munmap(b) }

// releaseMapped drops a hashed range's pages from the mapping (MADV_DONTNEED
// on a shared file mapping leaves the page cache alone); the range is only
// ever read again through a new fault, which finds the same data.
func releaseMapped(b []byte) { _ = unix.Madvise(b, unix.MADV_DONTNEED) }
