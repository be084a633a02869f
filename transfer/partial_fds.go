package transfer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Descriptors of the partial store.
//
// The receiver opens a PartialFile for every file of an offer before any
// data flows, so a state must not hold descriptors just for being open. A
// state is in one of three conditions:
//
//   - new: no journal existed at Open; nothing is on disk and the files
//     are created by the first operation that needs them (WriteChunk, a
//     flush of pending records, Finalize);
//   - resident: its part file and journal are open, and it is on the
//     store's resident list;
//   - dormant: its files exist but are closed. Its bitmap and counters stay
//     in memory; the files are reopened, and checked to be the same files
//     with the expected sizes, when next needed.
//
// An operation that needs the files pins the state (pin), which makes it
// resident and keeps it so until unpin. The resident list is kept in
// least-recently-used order; when it grows beyond store.maxOpen, the least
// recently used states that are not pinned are taken off it and evicted:
// under the victim's life lock held for writing, so no write, flush or
// verification of it is in progress, its pending records are flushed (data
// fsync, then journal) and its files closed. A victim pinned again before
// its evictor gets the lock is back on the list and is left alone. Victims
// are evicted before the pinning operation opens its own files, so at most
// maxOpen states hold descriptors at once, plus one per operation in
// flight when more than maxOpen states are pinned together, plus one state
// briefly opened under store.mu (reading a journal in Open, or writing the
// last records of a dormant state in Close).
//
// Locks: store.lru is the innermost lock (store.mu, life, io, mu,
// store.lru). pin and unpin are called holding no lock but, possibly,
// store.mu; eviction takes the victim's life lock, never while holding
// another state's.

// pin makes the state resident, creating or reopening its files if needed,
// and keeps it resident until the matching unpin. It returns
// errPartialClosed for a closed state (the caller also checks closed under
// life, as a state may be closed while pinned).
func (st *partState) pin() error {
	s := st.store
	s.lru.Lock()
	if st.gone {
		s.lru.Unlock()
		return errPartialClosed
	}
	st.pins++
	if st.elem == nil {
		st.elem = s.resident.PushFront(st)
	} else {
		s.resident.MoveToFront(st.elem)
	}
	victims := s.trimLocked()
	s.lru.Unlock()
	for _, v := range victims {
		v.evict()
	}

	st.life.RLock()
	ready := st.closed || st.data != nil
	st.life.RUnlock()
	if ready {
		return nil
	}
	st.life.Lock()
	err := st.openLocked()
	st.life.Unlock()
	if err != nil {
		s.lru.Lock()
		st.pins--
		if st.pins == 0 && st.elem != nil {
			// Hold no place on the list without files.
			s.resident.Remove(st.elem)
			st.elem = nil
		}
		s.lru.Unlock()
		return err
	}
	return nil
}

// unpin ends a pin, evicting states if the list is over its bound. The
// caller holds no lock of this state.
func (st *partState) unpin() {
	s := st.store
	s.lru.Lock()
	st.pins--
	var victims []*partState
	if st.pins == 0 {
		victims = s.trimLocked()
	}
	s.lru.Unlock()
	for _, v := range victims {
		v.evict()
	}
}

// trimLocked takes the least recently used unpinned states off the
// resident list until it is within its bound, and returns them to be
// evicted. The caller holds s.lru.
func (s *PartialStore) trimLocked() []*partState {
	limit := max(s.maxOpen, 1)
	var victims []*partState
	for e := s.resident.Back(); e != nil && s.resident.Len() > limit; {
		prev := e.Prev()
		if v := e.Value.(*partState); v.pins == 0 {
			s.resident.Remove(e)
			v.elem = nil
			victims = append(victims, v)
		}
		e = prev
	}
	return victims
}

// evict flushes and closes the files of a state taken off the resident
// list, unless it was put back on it meanwhile. A failure is sticky: the
// state's next operation reports it. The caller holds no life lock.
func (st *partState) evict() {
	st.life.Lock()
	defer st.life.Unlock()
	s := st.store
	s.lru.Lock()
	back := st.elem != nil
	s.lru.Unlock()
	if back || st.data == nil {
		return
	}
	if err := st.releaseFilesLocked(true); err != nil {
		st.mu.Lock()
		if st.err == nil {
			st.err = err
		}
		st.mu.Unlock()
	}
}

// releaseFilesLocked makes the records durable (data fsync, then journal)
// and closes the files. With syncData (eviction: the state may be marked
// and written again after reopening) data written but not yet marked is
// synced too, so no write is left behind a closed descriptor.
// The files are closed even when the flush fails. The caller holds life
// for writing.
func (st *partState) releaseFilesLocked(syncData bool) error {
	if st.data == nil {
		return nil
	}
	st.mu.Lock()
	st.stopTimerLocked() // nothing is left pending for it
	st.mu.Unlock()
	mode := flushDurable
	if syncData {
		mode = flushAll
	}
	err := st.flushLocked(mode)
	if e := st.data.Close(); err == nil && e != nil {
		err = ioErr("closing", st.partPath, e)
	}
	if e := st.journal.Close(); err == nil && e != nil {
		err = ioErr("closing", st.jPath, e)
	}
	st.data, st.journal = nil, nil
	return err
}

// openLocked opens the files of a new or dormant state: a new state's are
// created, a dormant state's reopened. The caller holds life for writing.
func (st *partState) openLocked() error {
	if st.closed || st.data != nil {
		return nil
	}
	st.mu.Lock()
	err := st.err
	st.mu.Unlock()
	if err != nil {
		return err
	}
	if !st.created {
		return st.createLocked()
	}
	return st.reopenLocked()
}

// createLocked creates the journal (header only) and the part file (sparse,
// at full size) of a new state. The header is not synced: until the first
// flush syncs the journal, a journal lost or torn in a crash only makes
// the next run restart the file, which is always safe. On failure nothing
// is left behind. The caller holds life for writing.
func (st *partState) createLocked() error {
	j, err := os.OpenFile(st.jPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return ioErr("creating", st.jPath, err)
	}
	var d *os.File
	fail := func(err error) error {
		if d != nil {
			d.Close()
			os.Remove(st.partPath)
		}
		j.Close()
		os.Remove(st.jPath)
		return err
	}
	if _, err := j.WriteAt(st.header(), 0); err != nil {
		return fail(ioErr("writing", st.jPath, err))
	}
	_ = os.Chmod(st.partPath, 0o600) // a stale part file may be read-only
	d, err = os.OpenFile(st.partPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fail(ioErr("creating", st.partPath, err))
	}
	// First drop whatever a stale part file held, then preallocate.
	if err := d.Truncate(0); err != nil {
		return fail(ioErr("resetting", st.partPath, err))
	}
	if err := d.Truncate(st.size); err != nil {
		return fail(ioErr("preallocating", st.partPath, err))
	}
	st.data, st.journal, st.jlen = d, j, journalHeaderLen
	if err := st.noteFiles(); err != nil {
		st.data, st.journal = nil, nil
		return fail(err)
	}
	st.created = true
	return nil
}

// reopenLocked reopens the files of a dormant state after checking they
// are the files it closed, with the sizes it left them at. A file that
// vanished, was replaced or changed size makes a sticky error: the
// in-memory state no longer describes what is on disk. The caller holds
// life for writing.
func (st *partState) reopenLocked() error {
	d, err := os.OpenFile(st.partPath, os.O_RDWR, 0)
	if err != nil {
		return st.reopenErr(st.partPath, err)
	}
	j, err := os.OpenFile(st.jPath, os.O_RDWR, 0)
	if err != nil {
		d.Close()
		return st.reopenErr(st.jPath, err)
	}
	err = sameFile(d, st.partPath, st.dataFI, st.size)
	if err == nil {
		err = sameFile(j, st.jPath, st.jFI, st.jlen)
	}
	if err != nil {
		d.Close()
		j.Close()
		return st.changed(err)
	}
	st.data, st.journal = d, j
	return nil
}

// reopenErr classifies a failure to reopen path: a missing file means the
// state changed on disk (sticky); anything else (too many open files, a
// permission) is reported as is and the next use tries again.
func (st *partState) reopenErr(path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return st.changed(err)
	}
	return ioErr("reopening", path, err)
}

// changed records and returns the sticky error of a state whose files
// changed on disk while it was dormant.
func (st *partState) changed(cause error) error {
	err := Errorf(KindInternal, "run the same command again to receive it afresh",
		"partial data of %q (%s) was removed or changed while it was being received: %w", st.name, st.partPath, cause)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.err == nil {
		st.err = err
	}
	return st.err
}

// noteFiles remembers which files the open descriptors refer to, for
// reopenLocked. The caller holds life for writing and the files are open.
func (st *partState) noteFiles() error {
	dfi, err := st.data.Stat()
	if err != nil {
		return ioErr("reading", st.partPath, err)
	}
	jfi, err := st.journal.Stat()
	if err != nil {
		return ioErr("reading", st.jPath, err)
	}
	st.dataFI, st.jFI = dfi, jfi
	return nil
}

// checkFiles checks, without opening them, that the files of a dormant
// state are still there as it left them; a mismatch is sticky as in
// reopenLocked. The caller holds life for writing.
func (st *partState) checkFiles() error {
	for _, f := range []struct {
		path string
		want os.FileInfo
		size int64
	}{{st.partPath, st.dataFI, st.size}, {st.jPath, st.jFI, st.jlen}} {
		fi, err := os.Stat(f.path)
		if err != nil {
			return st.reopenErr(f.path, err)
		}
		if err := matchInfo(fi, f.path, f.want, f.size); err != nil {
			return st.changed(err)
		}
	}
	return nil
}

// sameFile checks that open file f is the file want describes, size bytes
// long.
func sameFile(f *os.File, path string, want os.FileInfo, size int64) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("reading %q: %w", path, err)
	}
	return matchInfo(fi, path, want, size)
}

// errFileChanged is wrapped by the errors of files found replaced or
// resized on disk.
var errFileChanged = errors.New("file changed on disk")

// matchInfo checks that fi is the file want describes, size bytes long.
func matchInfo(fi os.FileInfo, path string, want os.FileInfo, size int64) error {
	if want != nil && !os.SameFile(fi, want) {
		return fmt.Errorf("%q was replaced by another file: %w", path, errFileChanged)
	}
	if fi.Size() != size {
		return fmt.Errorf("%q is %d bytes, expected %d: %w", path, fi.Size(), size, errFileChanged)
	}
	return nil
}
