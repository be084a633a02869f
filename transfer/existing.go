package transfer

import (
	"os"
	"strings"
)

// Files already in place.
//
// Running send and receive again after an interruption must not receive
// again what is already there. Files still in progress are matched by
// content in the partial store; files an earlier run finished were moved
// out of it, into their destination. So when an offer's top-level file or
// folder already exists in the download folder and holds at least one of
// the offer's files exactly (same size and modification time, and every
// chunk matching the manifest's hash), the offer continues that earlier
// transfer: it is received into the same place, files already there are
// kept and not sent again, and a file in the way with other content is
// kept too, the new one saved beside it as "name (1).ext". Otherwise the
// new top-level entry is saved beside the existing one, as before.

// inPlace reports whether the regular file at path already holds entry
// fe exactly. Only files whose size and modification time match are read.
func inPlace(path string, fe *FileEntry, chunkSize int64) bool {
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != fe.Size || fi.ModTime().UnixNano() != fe.ModTime {
		return false
	}
	if fe.Size == 0 {
		return true
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, min(chunkSize, fe.Size))
	for c := range fe.ChunkCount(chunkSize) {
		b := buf[:fe.ChunkLen(c, chunkSize)]
		if _, err := f.ReadAt(b, int64(c)*chunkSize); err != nil {
			return false
		}
		if HashChunk(b) != fe.Chunks[c] {
			return false
		}
	}
	return true
}

// continuesTop reports whether the offer's entries under top-level name
// top, existing in out, continue an earlier transfer: at least one of
// them is in place, and every one has a safe path there. If so, the
// entries in place are recorded in found.
func (r *receiver) continuesTop(out, top string, found map[int]bool) bool {
	var here []int
	for i := range r.m.Files {
		fe := &r.m.Files[i]
		if t, _, _ := strings.Cut(fe.Path, "/"); t != top {
			continue
		}
		p, err := SafeJoin(out, fe.Path)
		if err != nil {
			return false // a link or a file in the way: keep apart
		}
		if !fe.Dir && inPlace(p, fe, r.m.ChunkSize) {
			here = append(here, i)
		}
	}
	for _, i := range here {
		found[i] = true
	}
	return len(here) > 0
}

// markInPlace records entry i as already in its destination: nothing of
// it is received, and it counts as resumed. Its partial handle is closed,
// so that another entry with the same content moves the shared part file
// instead of copying it; content no entry needs any more is discarded
// when the transfer completes.
func (r *receiver) markInPlace(i int) {
	fe := &r.m.Files[i]
	r.mu.Lock()
	defer r.mu.Unlock()
	r.placed[i] = true
	if p := r.partials[i]; p != nil {
		r.skipped += fe.Size - p.HaveBytes()
		for c := range r.counted[i] {
			r.counted[i][c] = true
		}
		r.missing[i] = 0
		_ = p.Close()
		r.partials[i] = nil
	}
}
