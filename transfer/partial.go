package transfer

import (
	"container/list"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// PartialDirName is the hidden folder, inside the download folder, that
// holds data being received.
const PartialDirName = ".ferry-partial"

// Journal layout: a fixed header, then one 4-byte little-endian chunk index
// per verified chunk.
const (
	journalMagic   = "FRYJ"
	journalVersion = 1
	// magic(4) version(4, LE) content id(32) chunk size(8, LE) chunk count(4, LE)
	journalHeaderLen = 4 + 4 + 32 + 8 + 4
	journalRecLen    = 4
)

// Journal policy: records are written after this many, or this long after
// the first of them, whichever comes first (a killed receiver resumes
// within about a batch of where it stopped), and made durable, data first,
// journalDurable after the first record written since the last durable
// sync (a power cut costs at most about that much of the transfer), by a
// timer, so no worker waits for it. Durable syncs are few because each is
// expensive: an fsync of a file being written with direct I/O flushes the
// disk's cache and holds up the writes beside it; one per batch cost the
// receiver 0.5-0.75 s of CPU per GiB, and one only at the end left all of
// the flush for the end (0.57 s). BENCHMARKS.md, "The journal's fsyncs".
const (
	journalBatch    = 16
	journalInterval = 250 * time.Millisecond
	journalDurable  = time.Second
)

const diskFullHint = "free some space and run the same command again: received data is kept and will be resumed"

// defaultMaxOpen bounds the part states of a store whose files are open at
// once (two descriptors each).
const defaultMaxOpen = 64

// PartialStore holds the receiver's resumable state in
// <download folder>/.ferry-partial: for each file being received,
// "<ContentID hex>.part" (the data, preallocated to the file's size, written
// at chunk offsets) and "<ContentID hex>.journal" (which chunks are
// verified). Files are named by content, so a transfer resumes whatever the
// files are called, and entries with identical content share one part file.
//
// Nothing is created on disk for a file until its first chunk is written,
// and at most a bounded number of part states keep their files open at a
// time (see partial_fds.go): the others are dormant, keep what they know in
// memory and reopen their files when needed, so a folder of any number of
// files can be received under an ordinary descriptor limit.
type PartialStore struct {
	dir string
	// batch, interval and durable are the journal policy (journalBatch,
	// journalInterval and journalDurable; tests change them).
	batch    int
	interval time.Duration
	durable  time.Duration
	// maxOpen bounds the states whose files are open at once
	// (defaultMaxOpen; tests change it before the first Open).
	maxOpen int
	// timerFlushed and durableFlushed, when set (tests), are called after
	// every flush started by the idle timer and by the durable timer, with
	// its result.
	timerFlushed, durableFlushed func(error)

	mu   sync.Mutex
	open map[Hash]*partState // states with open handles

	// lru guards resident and every state's elem, pins and gone. It is the
	// last lock in the order: nothing is acquired while it is held.
	lru      sync.Mutex
	resident list.List // *partState with open (or opening) files, most recently used first
}

// OpenPartialStore opens the partial store of outDir, which must exist,
// creating outDir/.ferry-partial (mode 0700) if needed.
func OpenPartialStore(outDir string) (*PartialStore, error) {
	fi, err := os.Stat(outDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, Errorf(KindNotFound, "create it or choose another folder", "the download folder %q does not exist", outDir)
	}
	if err != nil {
		return nil, Errorf(KindInternal, "", "cannot use download folder %q: %w", outDir, err)
	}
	if !fi.IsDir() {
		return nil, Errorf(KindBadPath, "choose a folder to save into", "%q is not a folder", outDir)
	}
	dir := filepath.Join(outDir, PartialDirName)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, ioErr("creating", dir, err)
	}
	fi, err = os.Lstat(dir)
	if err != nil {
		return nil, ioErr("opening", dir, err)
	}
	if !fi.IsDir() { // also refuses a symbolic link
		return nil, Errorf(KindBadPath, "remove or rename it", "%q is not a folder", dir)
	}
	return &PartialStore{dir: dir, open: map[Hash]*partState{}, batch: journalBatch, interval: journalInterval, durable: journalDurable, maxOpen: defaultMaxOpen}, nil
}

// Discard deletes the partial data of content id from disk unless a
// handle on it is open: for content that is no longer needed (every entry
// with it is in place).
func (s *PartialStore) Discard(id Hash) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, open := s.open[id]; open {
		return
	}
	// The journal goes first: a part file without one claims nothing.
	_ = os.Remove(filepath.Join(s.dir, id.String()+".journal"))
	_ = os.Remove(filepath.Join(s.dir, id.String()+".part"))
}

// Remove removes the store's folder if it is empty; partial data that is
// still there (to be resumed later) is kept, and that is not an error.
func (s *PartialStore) Remove() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ents, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return ioErr("reading", s.dir, err)
	}
	if len(ents) > 0 || len(s.open) > 0 {
		return nil
	}
	if err := os.Remove(s.dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return ioErr("removing", s.dir, err)
	}
	return nil
}

// Open opens the partial state of f for chunks of chunkSize bytes. When
// there is none, the new state lives in memory only: its part file and
// journal are created by the first WriteChunk (or Finalize), so opening and
// closing a file that receives nothing leaves nothing behind. An existing
// journal is read (its files are not kept open). A journal whose header
// does not match f (content id, chunk size, chunk count), or whose part
// file is missing or has the wrong size, is discarded and the file
// restarted from nothing. Opening a file with the same content as one
// already open returns another handle on the same state (see Finalize).
// Every handle must be closed.
func (s *PartialStore) Open(f *FileEntry, chunkSize int64) (*PartialFile, error) {
	switch {
	case f.Dir:
		return nil, Errorf(KindInternal, "", "partial store: %q is a folder", f.Path)
	case chunkSize <= 0 || f.Size < 0:
		return nil, Errorf(KindInternal, "", "partial store: bad size %d or chunk size %d for %q", f.Size, chunkSize, f.Path)
	case int64(len(f.Chunks)) != chunkCount(f.Size, chunkSize) || int64(len(f.Chunks)) > math.MaxUint32:
		return nil, Errorf(KindInternal, "", "partial store: %q has %d chunk hashes for %d bytes", f.Path, len(f.Chunks), f.Size)
	}
	p := &PartialFile{mode: f.Mode & 0o777, mtime: f.ModTime}
	if f.Size == 0 {
		p.st = &partState{chunkSize: chunkSize, refs: 1, active: 1}
		return p, nil
	}
	id := f.ContentID()
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.open[id]; st != nil {
		if st.chunkSize != chunkSize {
			return nil, Errorf(KindInternal, "", "partial store: %q is open with chunk size %d, not %d", f.Path, st.chunkSize, chunkSize)
		}
		st.refs++
		st.active++
		p.st = st
		return p, nil
	}
	st, err := s.load(id, f, chunkSize)
	if err != nil {
		return nil, err
	}
	s.open[id] = st
	p.st = st
	return p, nil
}

// load reads the journal of content id, if there is one, and leaves the
// state dormant (files closed); with no journal the state is new and
// nothing is created on disk yet.
func (s *PartialStore) load(id Hash, f *FileEntry, chunkSize int64) (*partState, error) {
	n := len(f.Chunks)
	st := &partState{
		store:     s,
		id:        id,
		name:      f.Path,
		size:      f.Size,
		chunkSize: chunkSize,
		chunks:    f.Chunks,
		partPath:  filepath.Join(s.dir, id.String()+".part"),
		jPath:     filepath.Join(s.dir, id.String()+".journal"),
		have:      make([]bool, n),
		refs:      1,
		active:    1,
	}
	j, err := os.OpenFile(st.jPath, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil // created on the first write
	}
	if err != nil {
		return nil, ioErr("opening", st.jPath, err)
	}
	_ = os.Chmod(st.partPath, 0o600) // a crash inside Finalize may have left it read-only
	data, err := os.OpenFile(st.partPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		j.Close()
		return nil, ioErr("opening", st.partPath, err)
	}
	st.journal, st.data = j, data
	err = st.loadJournal()
	if err == nil {
		err = st.noteFiles()
	}
	if e := data.Close(); err == nil && e != nil {
		err = ioErr("closing", st.partPath, e)
	}
	if e := j.Close(); err == nil && e != nil {
		err = ioErr("closing", st.jPath, e)
	}
	st.journal, st.data = nil, nil
	if err != nil {
		return nil, err
	}
	st.created = true
	return st, nil
}

// loadJournal reads the journal into st.have, or restarts the file when the
// journal cannot be trusted.
func (st *partState) loadJournal() error {
	raw, err := io.ReadAll(st.journal)
	if err != nil {
		return ioErr("reading", st.jPath, err)
	}
	dfi, err := st.data.Stat()
	if err != nil {
		return ioErr("reading", st.partPath, err)
	}
	hdr := st.header()
	if len(raw) >= journalHeaderLen && string(raw[:journalHeaderLen]) == string(hdr) && dfi.Size() == st.size {
		recs := raw[journalHeaderLen:]
		whole := len(recs) - len(recs)%journalRecLen
		for off := 0; off < whole; off += journalRecLen {
			i := binary.LittleEndian.Uint32(recs[off:])
			if int64(i) < int64(len(st.have)) && !st.have[i] {
				st.have[i] = true
				st.count++
				st.haveBytes += int64(st.chunkLen(int(i)))
			}
		}
		st.jlen = int64(journalHeaderLen + whole)
		if whole != len(recs) { // torn last record: cut it so appends stay aligned
			if err := st.journal.Truncate(st.jlen); err != nil {
				return ioErr("repairing", st.jPath, err)
			}
		}
		return nil
	}
	// Restart: first make the journal claim nothing, then reset the data.
	if err := st.journal.Truncate(0); err != nil {
		return ioErr("resetting", st.jPath, err)
	}
	if _, err := st.journal.WriteAt(hdr, 0); err != nil {
		return ioErr("writing", st.jPath, err)
	}
	if err := st.journal.Sync(); err != nil {
		return ioErr("writing", st.jPath, err)
	}
	st.jlen = journalHeaderLen
	if err := st.data.Truncate(0); err != nil {
		return ioErr("resetting", st.partPath, err)
	}
	if err := st.data.Truncate(st.size); err != nil {
		return ioErr("preallocating", st.partPath, err)
	}
	return nil
}

// partState is the shared state of one part file and its journal.
//
// A state is new (nothing on disk: created false), resident (its files
// open, in store.resident) or dormant (created, files closed); its in-memory
// bitmap and counters are kept in every case. See partial_fds.go.
type partState struct {
	store     *PartialStore // nil for empty files
	id        Hash
	name      string // the path of the entry that opened it, for messages
	size      int64
	chunkSize int64
	chunks    []Hash
	partPath  string
	jPath     string

	// life is held for reading while the files are used and for writing
	// while they are opened, closed, moved or verified. Lock order:
	// store.mu, life, io, mu, store.lru. No goroutine holds the life locks
	// of two states at once.
	life    sync.RWMutex
	closed  bool     // released for good (set under life and mu)
	created bool     // the files exist on disk; under life
	data    *os.File // the part file; nil unless resident; under life
	journal *os.File
	// dataFI and jFI are the files as first opened, to recognise them when
	// a dormant state reopens them; under life.
	dataFI, jFI os.FileInfo

	io   sync.Mutex // serializes journal writes and syncs
	jlen int64      // journal length; under io (or life held for writing)

	// uncached writes chunks with direct I/O while it can (uncached.go).
	uncached uncachedFile

	mu   sync.Mutex
	have []bool
	// fresh marks chunks this process verified in memory and wrote (see
	// verify): the write reported success, and reading them back moments
	// later would check little but our own arithmetic.
	fresh     []bool
	count     int
	haveBytes int64
	pending   []uint32    // verified, not yet in the journal
	dirty     bool        // data written since the data file was last synced
	unsynced  bool        // records written since the last durable sync
	timer     *time.Timer // writes pending records (store.interval)
	syncTimer *time.Timer // makes written records durable (store.durable)
	err       error       // sticky: a failed sync makes the state unusable

	refs   int // open handles; under store.mu
	active int // open handles not yet finalized; under store.mu

	// Residency, under store.lru.
	elem *list.Element // in store.resident
	pins int           // operations using the files: not evicted while > 0
	gone bool          // closed: never made resident again
}

func (st *partState) n() int { return len(st.chunks) }

func (st *partState) chunkLen(i int) int {
	return int(min(st.chunkSize, st.size-int64(i)*st.chunkSize))
}

func (st *partState) header() []byte {
	h := make([]byte, journalHeaderLen)
	copy(h, journalMagic)
	binary.LittleEndian.PutUint32(h[4:], journalVersion)
	copy(h[8:40], st.id[:])
	binary.LittleEndian.PutUint64(h[40:], uint64(st.chunkSize))
	binary.LittleEndian.PutUint32(h[48:], uint32(st.n()))
	return h
}

// flushMode says how far a flush goes.
type flushMode int

const (
	// flushWrite writes the pending records to the journal, without
	// syncing: a killed process keeps them, a power cut may not, and the
	// durable timer follows.
	flushWrite flushMode = iota
	// flushDurable also makes every record written so far durable: the
	// data file is synced first, so a durable record never claims data
	// that is not on disk.
	flushDurable
	// flushAll is flushDurable that also syncs data written but not yet
	// marked, even when no record is pending.
	flushAll
)

// flushLocked writes pending journal records and, as mode says, makes them
// durable. A record written without a sync may reach the disk before the
// data it claims does, should the power fail in between; that costs a
// chunk received again, never a wrong file, since chunks an earlier run
// left are hashed again before a file is finished (verify). The caller
// holds life (for reading or writing) and io, or life for writing, and the
// files are open.
func (st *partState) flushLocked(mode flushMode) error {
	st.mu.Lock()
	if st.err != nil {
		err := st.err
		st.mu.Unlock()
		return err
	}
	if !st.needsFlushLocked(mode) {
		st.mu.Unlock()
		return nil
	}
	durable := mode >= flushDurable
	recs := st.pending
	st.pending = nil
	syncJournal := durable && (len(recs) > 0 || st.unsynced)
	if durable {
		st.dirty = false
		st.stopSyncTimerLocked() // this sync covers what it waits for
	}
	st.mu.Unlock()
	var err error
	if durable {
		err = st.data.Sync()
	}
	if err == nil && len(recs) > 0 {
		buf := make([]byte, journalRecLen*len(recs))
		for k, i := range recs {
			binary.LittleEndian.PutUint32(buf[k*journalRecLen:], i)
		}
		_, err = st.journal.WriteAt(buf, st.jlen)
		st.jlen += int64(len(buf))
	}
	if err == nil && syncJournal {
		err = st.journal.Sync()
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if err != nil {
		st.err = ioErr("saving", st.partPath, err)
		return st.err
	}
	if durable {
		st.unsynced = false
	} else if len(recs) > 0 {
		st.unsynced = true
		st.armSyncTimerLocked()
	}
	return nil
}

// needsFlushLocked reports whether a flush in mode has anything to do:
// records to write, records to make durable, or data to sync. The caller
// holds mu.
func (st *partState) needsFlushLocked(mode flushMode) bool {
	return len(st.pending) > 0 || mode >= flushDurable && st.unsynced || mode == flushAll && st.dirty
}

// armSyncTimerLocked starts the durable timer unless it runs: records just
// written become durable store.durable from now. The caller holds mu.
func (st *partState) armSyncTimerLocked() {
	st.armFlushTimerLocked(&st.syncTimer, st.store.durable, flushDurable, &st.store.durableFlushed)
}

// stopSyncTimerLocked stops the durable timer. The caller holds mu.
func (st *partState) stopSyncTimerLocked() { stopFlushTimer(&st.syncTimer) }

// armFlushTimerLocked makes *slot a timer that flushes in mode after d,
// unless one is armed, and then calls *hook (tests) with the result. A
// dormant state's files are reopened for it. The caller holds mu.
func (st *partState) armFlushTimerLocked(slot **time.Timer, d time.Duration, mode flushMode, hook *func(error)) {
	if *slot != nil {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		st.mu.Lock()
		if *slot == t {
			*slot = nil
		}
		st.mu.Unlock()
		err := st.flush(mode) // a failure is sticky and reported by the next call
		if h := *hook; h != nil {
			h(err)
		}
	})
	*slot = t
}

// stopFlushTimer stops the timer in *slot, if any. The caller holds the
// state's mu.
func stopFlushTimer(slot **time.Timer) {
	if *slot != nil {
		(*slot).Stop()
		*slot = nil
	}
}

// flush is flushLocked for callers holding no lock but, possibly,
// store.mu. A state with nothing to flush (new, or dormant: eviction
// flushed it) is left alone; otherwise its files are reopened if needed.
func (st *partState) flush(mode flushMode) error {
	st.mu.Lock()
	closed, err := st.closed, st.err
	need := st.needsFlushLocked(mode)
	st.mu.Unlock()
	switch {
	case closed:
		return nil
	case err != nil:
		return err
	case !need:
		return nil
	}
	if err := st.pin(); err != nil {
		if errors.Is(err, errPartialClosed) {
			return nil
		}
		return err
	}
	defer st.unpin()
	st.life.RLock()
	defer st.life.RUnlock()
	if st.closed {
		return nil
	}
	st.io.Lock()
	defer st.io.Unlock()
	return st.flushLocked(mode)
}

// rewriteJournalLocked replaces the journal records with the chunks now in
// st.have. The caller holds life for writing and the files are open.
// Dropping records is always safe, so the journal is rewritten in place.
func (st *partState) rewriteJournalLocked() error {
	st.mu.Lock()
	st.pending = nil
	st.dirty = false
	st.unsynced = false
	st.stopSyncTimerLocked()
	recs := make([]byte, 0, st.count*journalRecLen)
	for i, ok := range st.have {
		if ok {
			recs = binary.LittleEndian.AppendUint32(recs, uint32(i))
		}
	}
	st.mu.Unlock()
	err := st.data.Sync()
	if err == nil {
		err = st.journal.Truncate(journalHeaderLen)
	}
	if err == nil {
		_, err = st.journal.WriteAt(recs, journalHeaderLen)
	}
	if err == nil {
		err = st.journal.Sync()
	}
	st.jlen = int64(journalHeaderLen + len(recs))
	if err != nil {
		st.mu.Lock()
		st.err = ioErr("saving", st.jPath, err)
		st.mu.Unlock()
		return st.err
	}
	return nil
}

// closeFilesLocked flushes and closes the files for good: the state is
// closed and leaves the resident list. A dormant state with records still
// pending reopens its files to write them (outside the resident bound;
// store.mu makes that one state at a time). The caller holds store.mu and
// life for writing.
func (st *partState) closeFilesLocked() error {
	if st.closed || st.store == nil {
		return nil
	}
	st.mu.Lock()
	st.stopTimerLocked()
	need := st.data == nil && len(st.pending) > 0 && st.err == nil
	st.mu.Unlock()
	var err error
	if need {
		err = st.openLocked()
	}
	if err == nil {
		err = st.releaseFilesLocked(false)
	}
	st.setClosedLocked(true)
	return err
}

// setClosedLocked marks the state closed (or usable again after a failed
// move) and, when closed, takes it off the resident list. The caller holds
// life for writing.
func (st *partState) setClosedLocked(closed bool) {
	st.mu.Lock()
	st.closed = closed
	st.mu.Unlock()
	s := st.store
	s.lru.Lock()
	st.gone = closed
	if closed && st.elem != nil {
		s.resident.Remove(st.elem)
		st.elem = nil
	}
	s.lru.Unlock()
}

// stopTimerLocked stops the idle flush timer. The caller holds mu.
func (st *partState) stopTimerLocked() { stopFlushTimer(&st.timer) }

// PartialFile is a handle on the partial state of one file being received.
// WriteChunk, MarkVerified and the query methods are safe for concurrent use
// from several goroutines; Finalize and Close must not overlap other calls
// on the same handle.
type PartialFile struct {
	st        *partState
	mode      uint32
	mtime     int64
	closed    atomic.Bool
	finalized atomic.Bool
}

var errPartialClosed = Errorf(KindInternal, "", "partial file is closed or finalized")

func (p *PartialFile) usable() error {
	if p.closed.Load() || p.finalized.Load() {
		return errPartialClosed
	}
	return nil
}

// Have reports whether chunk i has been verified.
func (p *PartialFile) Have(i int) bool {
	st := p.st
	st.mu.Lock()
	defer st.mu.Unlock()
	return i >= 0 && i < len(st.have) && st.have[i]
}

// HaveCount returns the number of verified chunks.
func (p *PartialFile) HaveCount() int {
	st := p.st
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.count
}

// HaveBytes returns the total length of the verified chunks.
func (p *PartialFile) HaveBytes() int64 {
	st := p.st
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.haveBytes
}

// Complete reports whether every chunk has been verified (always true for
// an empty file).
func (p *PartialFile) Complete() bool {
	st := p.st
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.count == len(st.have)
}

// WriteChunk writes chunk i (which must have exactly its chunk's length) at
// its offset in the part file, creating the part file and journal on the
// first write and reopening them if they were closed to save descriptors
// (an error if they were removed or changed meanwhile). It does not mark
// the chunk verified; call MarkVerified once its hash has been checked. A
// full disk or exhausted quota is an *Error of kind KindDiskFull wrapping
// the OS error.
func (p *PartialFile) WriteChunk(i int, data []byte) error {
	if err := p.usable(); err != nil {
		return err
	}
	st := p.st
	if i < 0 || i >= st.n() {
		return Errorf(KindInternal, "", "chunk %d out of range [0, %d)", i, st.n())
	}
	if len(data) != st.chunkLen(i) {
		return Errorf(KindInternal, "", "chunk %d is %d bytes, want %d", i, len(data), st.chunkLen(i))
	}
	if err := st.pin(); err != nil { // creates or reopens the files
		return err
	}
	defer st.unpin()
	st.life.RLock()
	defer st.life.RUnlock()
	if st.closed {
		return errPartialClosed
	}
	off := int64(i) * st.chunkSize
	// A chunk of zeros (disk images, preallocated files) becomes a hole:
	// no disk space, no write; the file stays sparse.
	if !isZero(data) || punchHole(st.data, off, int64(len(data))) != nil {
		direct := st.uncached.prepare(st.data, data, off)
		_, err := st.data.WriteAt(data, off)
		if err != nil && direct && isUncachedRefused(err) {
			// The file system takes no direct writes after all.
			st.uncached.stop()
			direct = false
			_, err = st.data.WriteAt(data, off)
		}
		if err != nil {
			return ioErr("writing", st.partPath, err)
		}
		if !direct {
			startWriteback(st.data, off, int64(len(data)))
		}
	}
	st.mu.Lock()
	st.dirty = true
	st.mu.Unlock()
	return nil
}

// MarkVerified records that chunk i, already written, matched its hash.
// Records reach the journal in batches, after 16 records or 250 ms after
// the first record of the batch (also with no further calls), and are made
// durable, the data file synced before the journal, within a second (see
// flushLocked for what a power cut between the two can cost). Marking a
// chunk twice is harmless.
func (p *PartialFile) MarkVerified(i int) error {
	if err := p.usable(); err != nil {
		return err
	}
	st := p.st
	if i < 0 || i >= st.n() {
		return Errorf(KindInternal, "", "chunk %d out of range [0, %d)", i, st.n())
	}
	st.mu.Lock()
	if st.err != nil {
		err := st.err
		st.mu.Unlock()
		return err
	}
	if st.have[i] {
		st.mu.Unlock()
		return nil
	}
	st.have[i] = true
	if st.fresh == nil {
		st.fresh = make([]bool, st.n())
	}
	st.fresh[i] = true
	st.count++
	st.haveBytes += int64(st.chunkLen(i))
	st.pending = append(st.pending, uint32(i))
	now := len(st.pending) >= st.store.batch
	if now {
		st.stopTimerLocked() // this flush covers what the idle timer waits for
	} else {
		st.armFlushTimerLocked(&st.timer, st.store.interval, flushWrite, &st.store.timerFlushed)
	}
	st.mu.Unlock()
	if now {
		return st.flush(flushWrite)
	}
	return nil
}

// Sync makes everything written and marked so far durable now: the data
// file is synced, then the journal. It does nothing when nothing was
// written or marked since the last sync.
func (p *PartialFile) Sync() error {
	if p.closed.Load() || p.st.store == nil {
		return nil
	}
	return p.st.flush(flushAll)
}

// BadChunksError lists the chunks of a file that Finalize found not to
// match their hashes (including chunks never received). They are no longer
// marked verified and must be received again.
type BadChunksError struct {
	Indices []int
}

// Error lists the bad chunk indices (the first 20 of them).
func (e *BadChunksError) Error() string {
	const show = 20
	var b strings.Builder
	fmt.Fprintf(&b, "%d chunk(s) failed verification and must be received again:", len(e.Indices))
	for k, i := range e.Indices {
		if k == show {
			fmt.Fprintf(&b, " ... (%d more)", len(e.Indices)-show)
			break
		}
		fmt.Fprintf(&b, " %d", i)
	}
	return b.String()
}

// Finalize verifies the part file against the manifest's chunk hashes,
// syncs it, sets its permission bits (group and other write
// permission removed) and modification time, and moves it to dest without
// ever replacing an existing file: if dest exists, the error wraps
// fs.ErrExist (kind KindBadPath) and the partial state is untouched, so the
// caller may retry with another name. The folder of dest must exist. The
// journal is then deleted.
//
// Verifying reads back every chunk except those this process verified in
// memory and then wrote (MarkVerified after WriteChunk): a cached write
// would be read back from the page cache as written, checking nothing the
// in-memory check did not, and the sync reports a failed write. Chunks an
// earlier run left (from the journal) and chunks never marked are read
// from the file and hashed. A chunk that does not match is unmarked (and
// the journal rewritten) and Finalize returns a *BadChunksError listing
// all such chunks. A chunk that was not marked but does match is marked.
//
// When other open handles share this content and have not been finalized
// yet, dest receives a copy and the part file stays for them; the last one
// moves it. An empty file needs no part file: dest is created exclusively.
// A file never written has its part file created here, so that its chunks
// are verified like any other's.
func (p *PartialFile) Finalize(dest string) error {
	moved := false
	err := p.finalize(dest, &moved)
	if moved {
		// Outside the store's lock, so that files being finalized at
		// once sync their folders in parallel.
		syncDir(filepath.Dir(dest))
	}
	return err
}

// finalize is Finalize but for the folder's sync, and sets *moved when the
// part file was moved to dest.
func (p *PartialFile) finalize(dest string, moved *bool) error {
	if err := p.usable(); err != nil {
		return err
	}
	st := p.st
	perm := fs.FileMode(p.mode) &^ 0o022
	mtime := time.Unix(0, p.mtime)
	if st.store == nil {
		if err := createEmpty(dest, perm, mtime); err != nil {
			return err
		}
		p.finalized.Store(true)
		return nil
	}
	if err := noFileAt(dest); err != nil {
		return err
	}
	// Pinned, the files stay open until Finalize returns (a new state's
	// files are created: a chunk of zeros may match without being written).
	if err := st.pin(); err != nil {
		return err
	}
	defer st.unpin() // after the locks below are released
	if err := p.verify(); err != nil {
		return err
	}

	s := st.store
	s.mu.Lock()
	defer s.mu.Unlock()
	st.life.Lock()
	defer st.life.Unlock()
	if st.closed {
		return errPartialClosed
	}
	if st.active > 1 {
		// Others still need the data: give dest a copy.
		if err := copyNoReplace(st.data, st.size, dest, perm, mtime); err != nil {
			return err
		}
		st.active--
		p.finalized.Store(true)
		return nil
	}
	if err := st.data.Chmod(perm); err != nil {
		return ioErr("finishing", st.partPath, err)
	}
	// verify synced the data; the journal is removed once the file is in
	// place, so its pending records are not written (two fsyncs saved per
	// file) unless the move fails.
	st.mu.Lock()
	moot := st.pending
	st.pending, st.dirty = nil, false
	st.mu.Unlock()
	if err := st.closeFilesLocked(); err != nil {
		return err
	}
	// keep leaves the state usable (dormant) after a failed move: the
	// files reopen on the next use, and are checked now.
	keep := func() error {
		_ = os.Chmod(st.partPath, 0o600) // undo a read-only perm
		if err := st.checkFiles(); err != nil {
			delete(s.open, st.id)
			return err
		}
		st.mu.Lock()
		st.pending = append(moot, st.pending...)
		st.mu.Unlock()
		st.setClosedLocked(false)
		return nil
	}
	failed := func(err error) error {
		if kerr := keep(); kerr != nil {
			return errors.Join(err, kerr)
		}
		return err
	}
	if err := os.Chtimes(st.partPath, time.Time{}, mtime); err != nil {
		return failed(ioErr("finishing", st.partPath, err))
	}
	if err := moveNoReplace(st.partPath, dest); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			// No link or rename here (another volume, a filesystem
			// without links): copy.
			d, oerr := os.Open(st.partPath)
			if oerr == nil {
				err = copyNoReplace(d, st.size, dest, perm, mtime)
				d.Close()
				if err == nil {
					os.Remove(st.partPath)
				}
			}
		}
		if err != nil {
			return failed(err)
		}
	}
	_ = os.Remove(st.jPath)
	st.active--
	delete(s.open, st.id)
	p.finalized.Store(true)
	*moved = true
	return nil
}

// verify re-hashes the part file's chunks, except those fresh from this
// process, unmarking chunks that do not match and marking those that do,
// then syncs the file. The caller has pinned the state.
func (p *PartialFile) verify() error {
	st := p.st
	st.life.Lock()
	defer st.life.Unlock()
	if st.closed {
		return errPartialClosed
	}
	// Reads below, and copies or moves after, want ordinary cached I/O.
	st.uncached.stop()
	// No journal flush first: the data is synced below, and records still
	// pending are either made moot by the move or written by the journal
	// rewrite (bad chunks) or a later flush (failed move).
	st.mu.Lock()
	err := st.err
	st.mu.Unlock()
	if err != nil {
		return err
	}
	var bad []int
	changed := false
	var buf []byte
	for i := range st.n() {
		st.mu.Lock()
		fresh := st.have[i] && st.fresh != nil && st.fresh[i]
		st.mu.Unlock()
		if fresh {
			continue
		}
		if buf == nil {
			buf = make([]byte, min(st.chunkSize, st.size))
		}
		b := buf[:st.chunkLen(i)]
		if _, err := st.data.ReadAt(b, int64(i)*st.chunkSize); err != nil {
			return ioErr("verifying", st.partPath, err)
		}
		ok := HashChunk(b) == st.chunks[i]
		st.mu.Lock()
		if ok != st.have[i] {
			changed = true
			st.have[i] = ok
			d := 1
			if !ok {
				d = -1
			}
			st.count += d
			st.haveBytes += int64(d * len(b))
		}
		st.mu.Unlock()
		if !ok {
			bad = append(bad, i)
		}
	}
	if changed {
		if err := st.rewriteJournalLocked(); err != nil {
			return err
		}
	}
	if len(bad) > 0 {
		return &BadChunksError{Indices: bad}
	}
	if err := st.data.Sync(); err != nil {
		return ioErr("saving", st.partPath, err)
	}
	return nil
}

// Close flushes the journal and releases the handle. Partial data stays on
// disk to be resumed; a file that was never written leaves nothing. Closing
// twice is harmless.
func (p *PartialFile) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	st := p.st
	if st.store == nil {
		return nil
	}
	s := st.store
	s.mu.Lock()
	defer s.mu.Unlock()
	st.refs--
	if !p.finalized.Load() {
		st.active--
	}
	if st.refs > 0 {
		return st.flush(flushDurable)
	}
	if s.open[st.id] == st {
		delete(s.open, st.id)
	}
	st.life.Lock()
	defer st.life.Unlock()
	return st.closeFilesLocked()
}

// noFileAt returns an error wrapping fs.ErrExist if something is at dest.
func noFileAt(dest string) error {
	if _, err := os.Lstat(dest); err == nil {
		return errDestExists(dest)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return ioErr("checking", dest, err)
	}
	return nil
}

func errDestExists(dest string) error {
	return Errorf(KindBadPath, "choose another name", "cannot save to %q: %w", dest, fs.ErrExist)
}

// moveNoReplace moves src to dst unless something is at dst (error wrapping
// fs.ErrExist). A hard link makes that atomic; where links are not
// supported it falls back to check-then-rename.
func moveNoReplace(src, dst string) error {
	err := os.Link(src, dst)
	if err == nil {
		_ = os.Remove(src)
		return nil
	}
	if errors.Is(err, fs.ErrExist) {
		return errDestExists(dst)
	}
	if err := noFileAt(dst); err != nil {
		return err
	}
	if err := os.Rename(src, dst); err != nil {
		return ioErr("moving into place", dst, err)
	}
	return nil
}

// copyNoReplace copies size bytes of src to a new file at dst with the
// given permissions and modification time, without replacing anything at
// dst. The copy is written to an unnamed file (createLinked) or, where
// there are none, a temporary file beside dst first, so dst never appears
// half-written.
func copyNoReplace(src *os.File, size int64, dst string, perm fs.FileMode, mtime time.Time) error {
	// Where it can, through an unnamed file: nothing is left beside dst
	// if the process dies halfway.
	ok, err := createLinked(dst, perm, mtime, func(w *os.File) error {
		_, err := io.Copy(w, io.NewSectionReader(src, 0, size))
		return err
	})
	if ok || err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".ferry-tmp-*")
	if err != nil {
		return ioErr("creating a file beside", dst, err)
	}
	name := tmp.Name()
	_, err = io.Copy(tmp, io.NewSectionReader(src, 0, size))
	if err == nil {
		err = tmp.Sync()
	}
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if e := tmp.Close(); err == nil {
		err = e
	}
	if err == nil {
		err = os.Chtimes(name, time.Time{}, mtime)
	}
	if err != nil {
		os.Remove(name)
		return ioErr("writing", dst, err)
	}
	if err := moveNoReplace(name, dst); err != nil {
		os.Remove(name)
		return err
	}
	return nil
}

// createEmpty creates an empty file at dst, failing if anything is there.
func createEmpty(dst string, perm fs.FileMode, mtime time.Time) error {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return errDestExists(dst)
	}
	if err != nil {
		return ioErr("creating", dst, err)
	}
	err = f.Chmod(perm)
	if err == nil {
		err = f.Sync()
	}
	if e := f.Close(); err == nil {
		err = e
	}
	if err == nil {
		err = os.Chtimes(dst, time.Time{}, mtime)
	}
	if err != nil {
		return ioErr("creating", dst, err)
	}
	return nil
}

// syncDir makes a rename in dir durable, where the OS supports it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// ioErr classifies a filesystem error: KindDiskFull for a full disk or
// exhausted quota, KindInternal otherwise. It wraps err.
func ioErr(op, path string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	if isDiskFull(err) {
		return Errorf(KindDiskFull, diskFullHint, "%s %q: %w", op, path, err)
	}
	return Errorf(KindInternal, "", "%s %q: %w", op, path, err)
}
