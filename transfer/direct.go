package transfer

import (
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Direct placement of one-chunk files.
//
// A file that fits in one chunk gains nothing from the partial store: its
// only chunk is verified in memory, and a journal could only ever say that
// this one chunk arrived. For a folder of many small files the store's
// bookkeeping (a part file and a journal created, synced, linked and
// removed per file, all in one folder) costs far more than the data. So a
// verified one-chunk file is written straight into an unnamed file in its
// destination folder, synced, and linked into place (placeDirect, where
// the system supports unnamed files), and its folder is synced once at the
// end. An interruption leaves nothing behind: the file is sent again.

// directEligible reports, per file, whether it can be placed directly: one
// chunk, nothing held for it from an earlier run, and content no other
// entry of the offer shares (those share one part file).
func directEligible(m *Manifest, partials []*PartialFile, content []Hash) []bool {
	seen := make(map[Hash]int, len(m.Files))
	for i := range m.Files {
		if partials[i] != nil {
			seen[content[i]]++
		}
	}
	ok := make([]bool, len(m.Files))
	for i, fe := range m.Files {
		p := partials[i]
		ok[i] = p != nil && fe.ChunkCount(m.ChunkSize) == 1 && p.HaveCount() == 0 && seen[content[i]] == 1
	}
	return ok
}

// prepareDest makes dest's folder and, with overwrite, removes a file
// already at dest.
func prepareDest(dest string, overwrite bool) error {
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return ioErr("creating the folder for", dest, err)
	}
	if overwrite {
		if st, err := os.Lstat(dest); err == nil && !st.IsDir() {
			if err := os.Remove(dest); err != nil {
				return ioErr("replacing", dest, err)
			}
		}
	}
	return nil
}

// directFile describes a verified one-chunk file to place.
type directFile struct {
	dest  string
	perm  fs.FileMode
	mtime time.Time
	data  []byte
}
