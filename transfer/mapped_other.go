//go:build !unix

package transfer

import "os"

// mapFile returns nil: files are read with pread here.
func mapFile(*os.File, int64) []byte { return nil }

// unmapFile is never called with a mapping here.
func unmapFile([]byte) {}

// releaseMapped is never called with a mapping here.
func releaseMapped([]byte) {}
