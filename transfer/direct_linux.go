//go:build linux

package transfer

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// placeDirect writes f.data into an unnamed file (O_TMPFILE) in f.dest's
// folder, sets its mode and modification time, syncs it and links it at
// f.dest, failing if anything is there. Nothing is left on disk if it
// fails or the process dies first. It reports false, having written
// nothing, where unnamed files are not supported (the caller then uses
// the partial store). The folder itself is not synced.
func placeDirect(f directFile) (bool, error) {
	dir := filepath.Dir(f.dest)
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL) {
			return false, nil
		}
		return false, ioErr("creating a file in", dir, err)
	}
	file := os.NewFile(uintptr(fd), f.dest)
	defer file.Close()
	// The unnamed file is reachable through /proc; without /proc it
	// cannot be linked, so check before writing.
	proc := "/proc/self/fd/" + strconv.Itoa(fd)
	if _, err := os.Lstat(proc); err != nil {
		return false, nil
	}
	if _, err := file.Write(f.data); err != nil {
		return false, ioErr("writing", f.dest, err)
	}
	if err := file.Chmod(f.perm); err != nil {
		return false, ioErr("writing", f.dest, err)
	}
	ts := []unix.Timespec{unix.NsecToTimespec(f.mtime.UnixNano()), unix.NsecToTimespec(f.mtime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, proc, ts, 0); err != nil {
		return false, ioErr("writing", f.dest, err)
	}
	if err := file.Sync(); err != nil {
		return false, ioErr("saving", f.dest, err)
	}
	if err := unix.Linkat(unix.AT_FDCWD, proc, unix.AT_FDCWD, f.dest, unix.AT_SYMLINK_FOLLOW); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return false, errDestExists(f.dest)
		}
		return false, ioErr("moving into place", f.dest, err)
	}
	return true, nil
}
