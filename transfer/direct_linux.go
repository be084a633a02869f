//go:build linux

package transfer

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// placeDirect writes f.data into an unnamed file (O_TMPFILE) in f.dest's
// folder and links it at f.dest, failing if anything is there (see
// createLinked).
func placeDirect(f directFile) (bool, error) {
	return createLinked(f.dest, f.perm, f.mtime, func(w *os.File) error {
		_, err := w.Write(f.data)
		return err
	})
}

// createLinked creates the file dest with the content write gives it: it
// writes an unnamed file (O_TMPFILE) in dest's folder, sets its mode and
// modification time, syncs it and links it at dest, failing if anything
// is there. Nothing is left on disk if it fails or the process dies
// first. It reports false, having written nothing, where unnamed files are
// not supported (the caller then writes a named temporary file). The
// folder itself is not synced.
func createLinked(dest string, perm fs.FileMode, mtime time.Time, write func(*os.File) error) (bool, error) {
	dir := filepath.Dir(dest)
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL) {
			return false, nil
		}
		return false, ioErr("creating a file in", dir, err)
	}
	file := os.NewFile(uintptr(fd), dest)
	defer file.Close()
	// The unnamed file is reachable through /proc; without /proc it
	// cannot be linked, so check before writing.
	proc := "/proc/self/fd/" + strconv.Itoa(fd)
	if _, err := os.Lstat(proc); err != nil {
		return false, nil
	}
	if err := write(file); err != nil {
		return false, ioErr("writing", dest, err)
	}
	if err := file.Chmod(perm); err != nil {
		return false, ioErr("writing", dest, err)
	}
	ts := []unix.Timespec{unix.NsecToTimespec(mtime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, proc, ts, 0); err != nil {
		return false, ioErr("writing", dest, err)
	}
	if err := file.Sync(); err != nil {
		return false, ioErr("saving", dest, err)
	}
	if err := unix.Linkat(unix.AT_FDCWD, proc, unix.AT_FDCWD, dest, unix.AT_SYMLINK_FOLLOW); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return false, errDestExists(dest)
		}
		return false, ioErr("moving into place", dest, err)
	}
	return true, nil
}
