//go:build !linux

package transfer

import (
	"io/fs"
	"os"
	"time"
)

// placeDirect reports false: without unnamed files a one-chunk file goes
// through the partial store like any other.
func placeDirect(f directFile) (bool, error) { return false, nil }

// createLinked reports false: the caller writes a named temporary file.
func createLinked(dest string, perm fs.FileMode, mtime time.Time, write func(*os.File) error) (bool, error) {
	return false, nil
}
